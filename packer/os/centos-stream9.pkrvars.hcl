# CentOS Stream 9: the values that differ per OS. The catalog applies this file to every template
# folder whose `supported_families` contains os_family (packer/xcpng only: packer/local builds
# Debian). Installed by anaconda with the family's one kickstart, packer/http/el/ks.cfg.
#
# Verified here (search/fetch tools, 2026-11-30), and what a runner must confirm:
#   - CentOS-Stream-9-latest-x86_64-boot.iso, its .SHA256SUM and the BaseOS repository: chef/bento
#     os_pkrvars/centos/centos-stream-9-x86_64.pkrvars.hcl (2026-06-26). Stream is a rolling
#     release: there is no point release to pin, and dated composes (image-builder pins
#     CentOS-Stream-9-20260706.0-x86_64-dvd1.iso) leave the mirror after an unknown time, so the
#     moving `latest` name is used, checked against its own SHA256SUM at every download. The
#     inputs digest does not change when the ISO does: rebuild with --rebuild to pick it up.
#     If Packer says the checksum file has no entry for the ISO, the file names the dated
#     compose: put that dated name in iso_urls (confirm with
#       curl -s https://mirror.stream.centos.org/9-stream/BaseOS/x86_64/iso/CentOS-Stream-9-latest-x86_64-boot.iso.SHA256SUM)
#   - the boot keys: bento types the isolinux (BIOS) form for Stream 9 and the GRUB form used
#     here under UEFI (its utm_boot_command);
#   - the boot keys on XCP-ng's VNC console (chef/bento types them on other hypervisors): only
#     a build on a pool proves them.
os_name      = "centos-stream9"
os_family    = "el"
os_version   = "9"
disk_size_mb = 10240

# Boot ISO (moving `latest` name, see above) and its own checksum file.
iso_urls = [
  "https://mirror.stream.centos.org/9-stream/BaseOS/x86_64/iso/CentOS-Stream-9-latest-x86_64-boot.iso",
]
iso_checksum = "file:https://mirror.stream.centos.org/9-stream/BaseOS/x86_64/iso/CentOS-Stream-9-latest-x86_64-boot.iso.SHA256SUM"

# The XCP-ng template the build VM is cloned from: a stock template
# (guest-templates-json SOURCES/centos-stream-9.json, derived from base-el-7, BIOS); firmware
# below switches it to UEFI.
xen_clone_template = "CentOS Stream 9"

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
  " inst.repo=https://mirror.stream.centos.org/9-stream/BaseOS/x86_64/os/ ",
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
cloudstack_os_type = "CentOS Stream 9"
