# Production template: one xenserver-iso source for every OS; what differs per OS comes from
# packer/os/<os_name>.pkrvars.hcl (the chef/bento layout). Runs the same provisioning scripts
# as packer/local and exports an XVA: <output_directory>/<vm_name>.xva.

locals {
  # The scripts get the OS from here instead of guessing it from /etc/os-release.
  script_env = [
    "OS_NAME=${var.os_name}",
    "OS_FAMILY=${var.os_family}",
    "OS_VERSION=${var.os_version}",
    "GUEST_TOOLS_SOURCE=${var.guest_tools_source}",
    "BUILD_USER=${var.build_username}",
    "DEBIAN_FRONTEND=noninteractive",
  ]
  scripts = [
    "${path.root}/../scripts/10-update.sh",
    "${path.root}/../scripts/20-ssh-hardening.sh",
    "${path.root}/../scripts/30-system-hardening.sh",
    "${path.root}/../scripts/40-xen-guest-tools.sh",
    "${path.root}/../scripts/50-cloud-init.sh",
    "${path.root}/../scripts/90-seal.sh",
  ]
  # The build account's credentials are typed at the boot prompt, never written in a file:
  # debian-installer reads its own questions; the EL kickstart's %pre reads template_build_*
  # (and %post the guest tools source) from the kernel command line (packer/http/el/ks.cfg).
  boot_credentials = var.os_family == "el" ? [
    "template_build_user=${var.build_username} ",
    "template_build_password=${var.build_password} ",
    "template_guest_tools=${var.guest_tools_source} ",
    ] : [
    "passwd/username=${var.build_username} ",
    "passwd/user-password=${var.build_password} ",
    "passwd/user-password-again=${var.build_password} ",
  ]
}

source "xenserver-iso" "template" {
  remote_host     = var.remote_host
  remote_username = var.remote_username
  remote_password = var.remote_password
  sr_name         = var.sr_name
  sr_iso_name     = var.sr_iso_name
  network_names   = [var.network_name]

  iso_url      = var.iso_url
  iso_checksum = var.iso_checksum

  clone_template  = var.xen_clone_template
  firmware        = var.firmware
  vm_name         = var.vm_name
  vm_description  = "${var.os_name} golden template, run ${var.run_id}"
  vm_memory       = var.vm_memory_mb
  vcpus_max       = var.vm_cpus
  vcpus_atstartup = var.vm_cpus
  disk_size       = var.disk_size_mb
  tools_iso_name  = var.tools_iso_name

  http_directory = "${path.root}/../http"
  boot_wait      = var.boot_wait
  boot_command   = concat(var.boot_command, local.boot_credentials, var.boot_command_suffix)

  communicator = "ssh"
  ssh_username = var.build_username
  ssh_password = var.build_password
  # Known issues of the plugin, reflected here:
  # - the IP is found through the HTTP server or the guest tools ("auto"); before the tools
  #   are installed only the HTTP request gives it, so the wait must cover the whole
  #   install (stuck at "Wait for VM's IP" without tools, xenserver #38);
  # - "Error detecting local IP: ssh: handshake failed" while sshd is not up yet (#30, #99,
  #   #163): many handshake attempts; a long ssh_wait_timeout (Ubuntu needed it, #25).
  ip_getter              = "auto"
  dhcp_wait              = "30s"
  install_timeout        = var.install_timeout
  ssh_wait_timeout       = var.ssh_wait_timeout
  ssh_handshake_attempts = 1000

  # 90-seal.sh leaves sudo working until power-off, where its unit removes the build user.
  shutdown_command = "sudo -n systemctl poweroff"

  format           = "xva"
  output_directory = var.output_directory
  # Never leave a VM behind after a failed or cancelled build (leaked VMs, plugin #11).
  keep_vm = "never"
}

build {
  sources = ["source.xenserver-iso.template"]

  provisioner "shell" {
    inline = ["sudo -n cloud-init status --wait >/dev/null || true"]
  }

  provisioner "shell" {
    execute_command  = "chmod +x '{{ .Path }}'; {{ .Vars }} sudo -n -E bash '{{ .Path }}'"
    environment_vars = local.script_env
    scripts          = local.scripts
  }
}
