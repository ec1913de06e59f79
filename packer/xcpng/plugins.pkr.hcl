# Kept in its own file: Debian's packer 1.6.6 (used by the local build and the tests) rejects
# a required_plugins block, and it never loads this folder. Production runs `packer init`.
packer {
  required_version = ">= 1.7.0" # packer init and required_plugins
  required_plugins {
    xenserver = {
      source  = "github.com/vatesfr/xenserver"
      version = "= 0.11.4"
    }
  }
}
