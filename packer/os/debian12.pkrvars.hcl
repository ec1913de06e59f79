# Debian 12 "bookworm" (oldstable). One var file per OS: the catalog applies it to every template
# folder whose `supported_families` lists os_family (packer/local, packer/xcpng), and the
# shared templates take everything OS-specific from here.
os_name      = "debian12"
os_family    = "debian"
os_version   = "12"
disk_size_mb = 8192

# Production install media: the last bookworm point release, 12.15 (Debian's registry:
# dists/bookworm/InRelease "Version: 12.15", 11 Jul 2026). Oldstable images live in the
# archive, where a point release's folder never changes; Packer checks the ISO against the
# SHA256SUMS published beside it. Third-party sources give its netinst sha256 as
# cd4462c06aa8892e692c0c4b9c17802f38c8ab8690e85cbfb5ccaa5956e9af17 (one source): confirm
# on a runner with `curl -s <iso_checksum URL> | grep netinst` before pinning it literally.
iso_urls = [
  "https://cdimage.debian.org/cdimage/archive/12.15.0/amd64/iso-cd/debian-12.15.0-amd64-netinst.iso",
]
iso_checksum = "file:https://cdimage.debian.org/cdimage/archive/12.15.0/amd64/iso-cd/SHA256SUMS"

# The XCP-ng template the build VM is cloned from (a stock XCP-ng 8.2/8.3 template).
xen_clone_template = "Debian Bookworm 12"

# The installer file, under packer/http/. Its folder names the installer family (debian =
# debian-installer preseed), which decides the kernel arguments and the build account's
# credentials the template types after boot_command (packer/xcpng/xenserver.pkr.hcl).
install_config_path = "debian/preseed.cfg"

# BIOS: the ISO's isolinux menu; <esc> gives its "boot:" prompt, where the "auto" entry runs
# the installer with auto=true priority=critical.
firmware            = "bios"
boot_wait           = "10s"
boot_command        = ["<wait><esc><wait>", "auto "]
boot_command_suffix = ["<enter>"]

vm_memory_mb = 2048
vm_cpus      = 2

# Production installs the XCP-ng guest tools from the tools ISO the plugin attaches (Debian
# packages no Xen guest agent: not in bookworm, trixie, sid or forky).
guest_tools_source = "iso"

# The local platform (packer/local) builds this OS from an mmdebstrap root of this suite
# with this kernel package (Debian's installer cannot run there).
local_base_suite     = "bookworm"
local_kernel_package = "linux-image-amd64"

# CloudStack's OS type (its listOsTypes description) the registration looks up; a cloud without
# this type refuses the registration in one line (docs/cloudstack.md).
cloudstack_os_type = "Debian GNU/Linux 12 (64-bit)"
