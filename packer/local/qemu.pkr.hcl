# Local build: Debian's packer 1.6.6 and its qemu builder, starting from the base disk that
# platforms/local/basedisk.py made from an mmdebstrap root (Debian's installer cannot run on
# these machines), then the same provisioning scripts as the production template.
#
# The output is one raw disk, <output_directory>/<vm_name>.raw, bootable by BIOS and UEFI alike
# (GPT: a BIOS boot partition with GRUB's core.img, an ESP with a standalone GRUB, the ext4 root
# last), which the runner finds in the machine-readable `artifact,0,file,...` line. The build
# itself boots by UEFI (OVMF).

locals {
  # Run as root with the variables the scripts read; the same list as packer/xcpng.
  script_env = [
    "OS_NAME=${var.os_name}",
    "OS_FAMILY=${var.os_family}",
    "OS_VERSION=${var.os_version}",
    "GUEST_TOOLS_SOURCE=${var.local_guest_tools_source}",
    "BUILD_USER=${var.ssh_username}",
    "DEBIAN_FRONTEND=noninteractive",
    "TEMPLATE_FILES=/tmp/template-files",
  ]
  scripts = [
    "${path.root}/../scripts/10-update.sh",
    "${path.root}/../scripts/20-ssh-hardening.sh",
    "${path.root}/../scripts/30-system-hardening.sh",
    "${path.root}/../scripts/40-xen-guest-tools.sh",
    "${path.root}/../scripts/50-cloud-init.sh",
    "${path.root}/../scripts/60-network.sh",
    "${path.root}/../scripts/90-seal.sh",
  ]
}

source "qemu" "local" {
  vm_name          = "${var.vm_name}.raw"
  output_directory = var.output_directory

  # Start from the cached base disk (qcow2), converted into a fresh raw output disk.
  disk_image       = true
  iso_url          = var.base_image
  iso_checksum     = var.base_image_checksum
  use_backing_file = false
  skip_resize_disk = true # the base disk already has its final size and partition table
  format           = "raw"

  headless         = true
  vnc_bind_address = "127.0.0.1"
  accelerator      = var.qemu_accelerator
  machine_type     = "q35"
  memory           = var.vm_memory_mb
  cpus             = var.vm_cpus
  net_device       = "virtio-net"
  disk_interface   = "virtio"

  # 1.6.6 has no firmware option: UEFI through pflash. A -drive in qemuargs replaces all of
  # the builder's drives, so the output disk is listed here too. SSH is forwarded to
  # 127.0.0.1 only (the builder's default binds every address).
  qemuargs = [
    ["-cpu", var.qemu_cpu],
    ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=${var.ovmf_code}"],
    ["-drive", "if=pflash,format=raw,unit=1,file=${var.ovmf_vars}"],
    ["-drive", "file={{ .OutputDir }}/{{ .Name }},if=virtio,cache=writeback,discard=unmap,format=raw"],
    ["-drive", "file=${var.build_seed_image},if=virtio,format=raw,readonly=on"],
    ["-netdev", "user,id=user.0,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"],
    ["-device", "virtio-rng-pci"],
    ["-serial", "file:${var.serial_log}"],
  ]

  communicator         = "ssh"
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = var.ssh_timeout
  # QEMU's user network accepts the TCP connection before the guest's sshd runs, so every
  # early attempt is a failed handshake: allow many.
  ssh_handshake_attempts = 500

  # 90-seal.sh has removed the build user (and its sudo) by now; this runs over the session
  # Packer keeps open, returns at once, and a runtime unit 90-seal.sh set up powers off.
  shutdown_command = "touch /run/template-seal/poweroff"
  shutdown_timeout = "10m"
}

build {
  sources = ["source.qemu.local"]

  # The build seed's cloud-init must be done (user, network) before the scripts run.
  provisioner "shell" {
    inline = ["cloud-init status --wait >/dev/null || true", "echo build VM ready: $(uname -r)"]
  }

  # Data the scripts install (packer/files: sysctl.d, ...), where TEMPLATE_FILES points; the
  # seal removes it with the rest of /tmp.
  provisioner "shell" {
    inline = ["rm -rf /tmp/template-files", "mkdir -p /tmp/template-files"]
  }
  provisioner "file" {
    source      = "${path.root}/../files/"
    destination = "/tmp/template-files"
  }

  provisioner "shell" {
    execute_command  = "chmod +x '{{ .Path }}'; {{ .Vars }} sudo -E bash '{{ .Path }}'"
    environment_vars = local.script_env
    scripts          = local.scripts
  }
}
