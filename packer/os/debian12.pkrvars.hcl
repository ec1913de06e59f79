# Debian 12 (bookworm): the values that differ per OS. The catalog applies this file to every
# template folder whose `supported_families` contains os_family (packer/local, packer/xcpng).
os_name      = "debian12"
os_family    = "debian"
os_version   = "12"
disk_size_mb = 8192

# Production install media, pinned to one point release; its SHA256SUMS never changes once
# the release is in the archive. The local build does not use them (no installer here).
iso_url      = "https://cdimage.debian.org/cdimage/archive/12.11.0/amd64/iso-cd/debian-12.11.0-amd64-netinst.iso"
iso_checksum = "file:https://cdimage.debian.org/cdimage/archive/12.11.0/amd64/iso-cd/SHA256SUMS"

# The XCP-ng template the VM is cloned from (its name in a stock XCP-ng 8.2/8.3 pool).
xen_clone_template = "Debian Bookworm 12"

# Served by Packer's HTTP server from packer/http/.
install_config_path = "debian12/preseed.cfg"

# Keys typed at the installer's boot prompt (BIOS isolinux: <esc> gives "boot:"). The
# template appends the build account's credentials (from variables, never in a file), then
# boot_command_suffix. The preseed answers everything else.
firmware  = "bios"
boot_wait = "10s"
boot_command = [
  "<wait><esc><wait>",
  "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/debian12/preseed.cfg ",
  "netcfg/get_hostname=debian12 netcfg/get_domain=localdomain ",
]
boot_command_suffix = ["<enter>"]

vm_memory_mb = 2048
vm_cpus      = 2
# Production installs the XCP-ng guest tools from the tools ISO mounted by the plugin.
guest_tools_source = "iso"
