# Ubuntu 24.04 LTS "noble". Installed by subiquity from the live-server ISO with the one autoinstall
# file every Ubuntu release shares (packer/http/ubuntu/user-data); only the values below differ.
os_name      = "ubuntu2404"
os_family    = "debian"
os_version   = "24.04"
disk_size_mb = 10240

# 24.04.5: its sha256 below agrees in four independent third-party sources; chef/bento and
# image-builder still pin 24.04.4 (sha256:e907d92eeec9df64163a7e454cbc8d7755e8ddc7ed42f99dbc80c40f1a138433,
# verified there). Confirm on a runner:
#   curl -s https://releases.ubuntu.com/24.04.5/SHA256SUMS | grep live-server
iso_urls = [
  "https://releases.ubuntu.com/24.04.5/ubuntu-24.04.5-live-server-amd64.iso",
  "https://old-releases.ubuntu.com/releases/24.04.5/ubuntu-24.04.5-live-server-amd64.iso",
]
iso_checksum = "sha256:97f3d7ffb032c3eb3b23d2c8be9cc76e60c2c1f2c0146ba5ba9fe01cafae0fd8"

# XCP-ng's generic UEFI Linux template (xcp-ng-rpms/guest-templates-json
# SOURCES/generic-linux-uefi.json): no Ubuntu-specific template could be confirmed here.
xen_clone_template = "Generic Linux UEFI"

# user-data and meta-data are served over HTTP as a NoCloud seed; the folder (ubuntu) names the
# installer family, whose kernel arguments and credentials the template adds.
install_config_path = "ubuntu/user-data"

# UEFI: the ISO boots GRUB; "c" opens its command line and the template's arguments go before
# "---" (what follows "---" is copied into the installed system's kernel command line).
firmware  = "uefi"
boot_wait = "10s" # as Debian 13: 5 s can land before GRUB reads keys
boot_command = [
  "<wait>c<wait>",
  "linux /casper/vmlinuz ",
]
boot_command_suffix = [
  "---<enter><wait>",
  "initrd /casper/initrd<enter><wait>",
  "boot<enter>",
]

vm_memory_mb = 4096 # the live installer runs from RAM
vm_cpus      = 2

# xe-guest-utilities from universe (xe-daemon.service); universe is enabled by default.
guest_tools_source = "package"

# No local_base_suite / local_kernel_package: the local platform builds Debian suites only,
# so the catalog refuses ubuntu on --platform local (check an artifact with --xva instead).

# CloudStack's OS type (its listOsTypes description) the registration looks up; a cloud without
# this type refuses the registration in one line (docs/cloudstack.md).
cloudstack_os_type = "Ubuntu 24.04 LTS"
