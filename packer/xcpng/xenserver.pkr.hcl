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
    "${path.root}/../scripts/60-network.sh",
    "${path.root}/../scripts/90-seal.sh",
  ]

  # The installer family is the packer/http/ folder of the OS's installer file: "debian"
  # (debian-installer, preseed) or "ubuntu" (subiquity, autoinstall as a NoCloud seed). Each
  # family has its kernel arguments and its way to receive the build account below; a var
  # file only names the file and the keys that reach its boot loader's prompt.
  installer  = split("/", var.install_config_path)[0]
  http_base  = "http://{{ .HTTPIP }}:{{ .HTTPPort }}"
  seed_url   = "${local.http_base}/${dirname(var.install_config_path)}/"
  preseed_at = "${local.http_base}/${var.install_config_path}"
  installer_args = {
    debian = [
      "url=${local.preseed_at} ",
      "netcfg/get_hostname=${var.os_name} netcfg/get_domain=localdomain ",
      "debian-installer/locale=en_US.UTF-8 keyboard-configuration/xkb-keymap=us ",
    ]
    # `autoinstall` skips subiquity's confirmation before it wipes the disk; `;` is escaped for
    # GRUB. The datasource name nocloud-net is deprecated since cloud-init 24.1 but still read;
    # chef/bento uses it from 22.04 to 26.04, so one spelling serves every release.
    ubuntu = [
      "autoinstall ds=nocloud-net\\;s=${local.seed_url} ",
    ]
  }
}

# The build account's credentials, typed at the boot prompt and never written in a file.
# build_password is restricted to characters that survive VNC typing and need no quoting (see
# its validation).
local "boot_credentials" {
  sensitive = true
  expression = {
    debian = [
      "passwd/username=${var.build_username} ",
      "passwd/user-password=${var.build_password} ",
      "passwd/user-password-again=${var.build_password} ",
    ]
    # subiquity wants a crypted hash: bcrypt ($2a$, which libxcrypt accepts), single-quoted
    # because GRUB expands `$`. The user-data's early-commands copy both into /autoinstall.yaml.
    ubuntu = [
      "template_build_user=${var.build_username} ",
      "template_build_hash='${bcrypt(var.build_password)}' ",
    ]
  }
}

source "xenserver-iso" "template" {
  remote_host     = var.remote_host
  remote_username = var.remote_username
  remote_password = var.remote_password
  sr_name         = var.sr_name
  sr_iso_name     = var.sr_iso_name
  network_names   = [var.network_name]

  iso_urls     = var.iso_urls
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
  boot_command = concat(
    var.boot_command,
    local.installer_args[local.installer],
    local.boot_credentials[local.installer],
    var.boot_command_suffix,
  )

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
