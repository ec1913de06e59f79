# Rocky Linux 10: the values that differ per OS. The catalog applies this file to every template
# folder whose `supported_families` contains os_family (packer/xcpng only: packer/local builds
# Debian). Installed by anaconda with the family's one kickstart, packer/http/el/ks.cfg.
#
# Verified here (search/fetch tools, 2026-11-30), and what a runner must confirm:
#   - the file names Rocky-10.2-x86_64-boot.iso and CHECKSUM, the BaseOS repository and the
#     boot keys: chef/bento os_pkrvars/rockylinux/rockylinux-10-x86_64.pkrvars.hcl (2026-06-26);
#   - boot ISO sha256 bf3a75907948563d0c11f3d1b8546ee9216e18a3ea2dc0a67eb4c45452e210f9: two
#     independent third-party files agree; the pinned 10.2/ folder is the same pattern as 9.8:
#       curl -s https://download.rockylinux.org/pub/rocky/10.2/isos/x86_64/CHECKSUM | grep boot.iso
#   - once 10.3 ships, 10.2 moves to https://dl.rockylinux.org/vault/rocky/10.2/isos/x86_64/;
#   - xe-guest-utilities-latest in EPEL 10: NOT verified (see almalinux10.pkrvars.hcl);
#   - the boot keys on XCP-ng's VNC console (chef/bento types them on other hypervisors): only
#     a build on a pool proves them.
os_name      = "rocky10"
os_family    = "el"
os_version   = "10"
disk_size_mb = 10240

# Boot ISO pinned to the 10.2 folder, checked against the CHECKSUM beside it.
iso_urls = [
  "https://download.rockylinux.org/pub/rocky/10.2/isos/x86_64/Rocky-10.2-x86_64-boot.iso",
]
iso_checksum = "file:https://download.rockylinux.org/pub/rocky/10.2/isos/x86_64/CHECKSUM"

# The XCP-ng template the build VM is cloned from: XCP-ng's generic UEFI Linux template
# (guest-templates-json SOURCES/generic-linux-uefi.json); "Rocky Linux 10" (rocky-10.json) has
# the same base but only pools with a recent guest-templates-json have it.
xen_clone_template = "Generic Linux UEFI"

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
  "<wait><up><wait>e<wait><down><down><end><wait>",
  " inst.repo=https://download.rockylinux.org/pub/rocky/10/BaseOS/x86_64/os/ ",
]
boot_command_suffix = ["<leftCtrlOn>x<leftCtrlOff>"]

# EL 10 is built for x86-64-v3 (AVX2, BMI1/2, FMA, MOVBE, ...): preflight refuses a pool
# whose CPUs lack it (the installer would stop before fetching the kickstart).
x86_64_level = 3

vm_memory_mb = 2048
vm_cpus      = 2

# EPEL's xe-guest-utilities-latest, installed by the kickstart's %post so XCP-ng sees the VM's
# IP from its first boot; 40-xen-guest-tools.sh then finds it and enables it.
guest_tools_source = "package"

# CloudStack's OS type (its listOsTypes description) the registration looks up; a cloud without
# this type refuses the registration in one line (docs/cloudstack.md).
cloudstack_os_type = "Rocky Linux 10"
