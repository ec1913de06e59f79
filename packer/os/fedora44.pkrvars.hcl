# Fedora 44: the values that differ per OS. The catalog applies this file to every template
# folder whose `supported_families` contains os_family (packer/xcpng only: packer/local builds
# Debian). Installed by anaconda with the family's one kickstart, packer/http/el/ks.cfg.
#
# Verified here (search/fetch tools, 2026-11-30), and what a runner must confirm:
#   - Fedora-Server-netinst-x86_64-44-1.7.iso, Fedora-Server-44-1.7-x86_64-CHECKSUM and the boot
#     keys: chef/bento os_pkrvars/fedora/fedora-44-x86_64.pkrvars.hcl (2026-06-26). Release
#     folders do not change. Fedora 44 is the newest release any source shows as released;
#     Fedora 45 may be out by now (pykickstart 3.78 already has F45/F46 syntax; only branched
#     nightlies of 45 were seen): if so, add fedora45.pkrvars.hcl (one var file, same kickstart);
#   - the installation source: the Everything tree of the release (bento uses the Server tree,
#     whose package set may lack cloud-init): the release folder layout, not fetched here;
#   - xe-guest-utilities-latest in Fedora 44: NOT verified (the package page seen lists
#     Fedora 41, 42 and Rawhide);
#   - the boot keys on XCP-ng's VNC console (chef/bento types them on other hypervisors): only
#     a build on a pool proves them.
os_name      = "fedora44"
os_family    = "el"
os_version   = "44"
disk_size_mb = 10240

# Server netinstall ISO of the 44 release, checked against the release's CHECKSUM.
iso_urls = [
  "https://download.fedoraproject.org/pub/fedora/linux/releases/44/Server/x86_64/iso/Fedora-Server-netinst-x86_64-44-1.7.iso",
]
iso_checksum = "file:https://download.fedoraproject.org/pub/fedora/linux/releases/44/Server/x86_64/iso/Fedora-Server-44-1.7-x86_64-CHECKSUM"

# The XCP-ng template the build VM is cloned from: XCP-ng's generic UEFI Linux template
# (guest-templates-json SOURCES/generic-linux-uefi.json); there is no Fedora template.
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
  "<wait><up>e<wait><down><down><end>",
  " inst.repo=https://download.fedoraproject.org/pub/fedora/linux/releases/44/Everything/x86_64/os/ ",
]
boot_command_suffix = ["<F10><wait>"]

vm_memory_mb = 2048
vm_cpus      = 2

# xe-guest-utilities-latest from Fedora's own repositories, installed by the kickstart's %post
# so XCP-ng sees the VM's IP from its first boot; 40-xen-guest-tools.sh then finds it and
# enables it.
guest_tools_source = "package"

# CloudStack's OS type (its listOsTypes description) the registration looks up; a cloud without
# this type refuses the registration in one line (docs/cloudstack.md).
cloudstack_os_type = "Fedora Linux (64 bit)"
