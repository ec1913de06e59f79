# Debian 13 "trixie" (stable since August 2025). Same installer file as Debian 12; what
# differs is here.
os_name      = "debian13"
os_family    = "debian"
os_version   = "13"
disk_size_mb = 8192

# Production install media: 13.7, the newest trixie point release whose netinst ISO could be
# substantiated (its name and sha256 appear in several third-party sources; the sha256 below
# comes from one of them). Debian's registry already announces 13.8 (dists/trixie/InRelease,
# 21 Nov 2026), but no 13.8 ISO or checksum was found. A superseded point release moves from
# debian-cd/ to the archive, so both places are listed. Confirm on a runner:
#   curl -s https://cdimage.debian.org/cdimage/archive/13.7.0/amd64/iso-cd/SHA256SUMS | grep netinst
# and move to 13.8 once its SHA256SUMS is at hand (the template's updates run anyway).
iso_urls = [
  "https://cdimage.debian.org/cdimage/archive/13.7.0/amd64/iso-cd/debian-13.7.0-amd64-netinst.iso",
  "https://cdimage.debian.org/debian-cd/13.7.0/amd64/iso-cd/debian-13.7.0-amd64-netinst.iso",
]
iso_checksum = "sha256:a7ef94ac2fb9a7fec454552abd629b7cc9d5155c886165a45649f5ce6167e355"

# XCP-ng's own Debian 13 template (xcp-ng-rpms/guest-templates-json SOURCES/debian-13.json,
# derived from base-linux-uefi): boot by UEFI, as its template does.
xen_clone_template = "Debian Trixie 13"

install_config_path = "debian/preseed.cfg"

# UEFI: the ISO boots GRUB; "c" opens its command line, where the installer's kernel is loaded
# with the template's arguments (no cursor counting in a menu entry, unlike editing it).
firmware  = "uefi"
boot_wait = "10s"
boot_command = [
  "<wait>c<wait>",
  "linux /install.amd/vmlinuz auto=true priority=critical ",
]
boot_command_suffix = [
  "--- quiet<enter><wait>",
  "initrd /install.amd/initrd.gz<enter><wait>",
  "boot<enter>",
]

vm_memory_mb = 2048
vm_cpus      = 2

# No Xen guest agent package in trixie either: the XCP-ng tools ISO, as for Debian 12.
guest_tools_source = "iso"

local_base_suite     = "trixie"
local_kernel_package = "linux-image-amd64"

# CloudStack's OS type (its listOsTypes description) the registration looks up; a cloud without
# this type refuses the registration in one line (docs/cloudstack.md).
cloudstack_os_type = "Debian GNU/Linux 13 (64-bit)"
