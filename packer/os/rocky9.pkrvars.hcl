# Rocky Linux 9: the values that differ per OS. The catalog applies this file to every template
# folder whose `supported_families` contains os_family (packer/xcpng only: packer/local builds
# Debian). Installed by anaconda with the family's one kickstart, packer/http/el/ks.cfg.
#
# Verified here (search/fetch tools, 2026-11-30), and what a runner must confirm:
#   - the file names Rocky-9.8-x86_64-boot.iso and CHECKSUM, the BaseOS repository and the boot
#     keys: chef/bento os_pkrvars/rockylinux/rockylinux-9-x86_64.pkrvars.hcl (2026-06-26);
#   - the pinned 9.8/ folder: third-party files; boot ISO sha256
#     d6eeefdc8437c593d41a3150fcca4a734c55642ed472eecdda99720bb1370881 (third party). Rocky's
#     CHECKSUM is not signed, and a third-party report says its 9.8 *minimal* entry was wrong:
#     confirm the boot entry on a runner with
#       curl -s https://download.rockylinux.org/pub/rocky/9.8/isos/x86_64/CHECKSUM | grep boot.iso
#   - once 9.9 ships, 9.8 moves to https://dl.rockylinux.org/vault/rocky/9.8/isos/x86_64/
#     (pattern: image-builder qemu-rockylinux-9.json uses vault/rocky/9.4);
#   - the boot keys on XCP-ng's VNC console (chef/bento types them on other hypervisors): only
#     a build on a pool proves them.
os_name      = "rocky9"
os_family    = "el"
os_version   = "9"
disk_size_mb = 10240

# Boot ISO pinned to the 9.8 folder, checked against the CHECKSUM beside it.
iso_urls = [
  "https://download.rockylinux.org/pub/rocky/9.8/isos/x86_64/Rocky-9.8-x86_64-boot.iso",
]
iso_checksum = "file:https://download.rockylinux.org/pub/rocky/9.8/isos/x86_64/CHECKSUM"

# The XCP-ng template the build VM is cloned from: a stock template
# (guest-templates-json SOURCES/rocky-9.json, derived from base-el-7, BIOS); firmware below
# switches it to UEFI.
xen_clone_template = "Rocky Linux 9"

# Served by Packer's HTTP server from packer/http/; the kickstart reads the rest from the
# kernel command line (its header lists the arguments).
install_config_path = "el/ks.cfg"

# UEFI for every EL template, so every release boots the same way, through the ISO's GRUB
# menu: <up> selects the install entry (the default entry tests the media first), e opens it,
# <down> <down> <end> reach the end of the linux line, where the package repository is typed
# (the template adds the kickstart's address). The template then types the build account and the guest
# tools source (template_build_user=, template_build_password=, template_guest_tools=; never
# in a file) and boot_command_suffix boots the edited entry.
firmware  = "uefi"
boot_wait = "10s"
boot_command = [
  "<wait><up><wait>e<wait><down><wait><down><wait><end><wait>",
  " inst.repo=https://download.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os/ ",
]
boot_command_suffix = ["<wait><leftCtrlOn><wait>x<wait><leftCtrlOff>"]

# EL 9 is built for x86-64-v2 (SSE4.2, POPCNT, ...): preflight checks the pool's CPUs.
x86_64_level = 2

vm_memory_mb = 2048
vm_cpus      = 2

# EPEL's xe-guest-utilities-latest, installed by the kickstart's %post so XCP-ng sees the VM's
# IP from its first boot; 40-xen-guest-tools.sh then finds it and enables it.
guest_tools_source = "package"

# CloudStack's OS type (its listOsTypes description) the registration looks up; a cloud without
# this type refuses the registration in one line (docs/cloudstack.md).
cloudstack_os_type = "Rocky Linux 9"
