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
    "XEN_GUEST_AGENT_URL=${var.xen_guest_agent_url}",
    "BUILD_USER=${var.build_username}",
    "DEBIAN_FRONTEND=noninteractive",
    "TEMPLATE_FILES=/tmp/template-files",
  ]
  # The run id, creation and expiry ride in the names of the VDIs the plugin creates (the
  # installer ISO is named after the last part of its URL, query included), so concurrent runs
  # never share an ISO VDI, the plugin's cleanup never deletes another run's, and the janitor
  # (platforms/xcpng/cleanup.py) finds leftovers without the ledger. The ISO server ignores
  # the query; Packer caches the download by checksum, so the cache still hits.
  run_tags = "xcpng-golden-run-id=${var.run_id}&xcpng-golden-created=${var.run_created}&xcpng-golden-expires=${var.run_expires}"
  iso_urls = [for u in var.iso_urls : "${u}${length(split("?", u)) > 1 ? "&" : "?"}${local.run_tags}"]
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
    # anaconda fetches the kickstart from Packer's HTTP server (packer/http/el/ks.cfg).
    el = [
      "inst.ks=${local.http_base}/${var.install_config_path} ",
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
    # The kickstart's %pre reads template_build_* (and %post the guest tools source) from the
    # kernel command line (packer/http/el/ks.cfg).
    el = [
      "template_build_user=${var.build_username} ",
      "template_build_password=${var.build_password} ",
      "template_guest_tools=${var.guest_tools_source} ",
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

  iso_urls     = local.iso_urls
  iso_checksum = var.iso_checksum

  clone_template = var.xen_clone_template
  firmware       = var.firmware
  vm_name        = var.vm_name
  vm_description = "${var.os_name} golden template, run ${var.run_id}"
  # The same tags as every VM the harness creates (platforms/xcpng/ledger.py KEY_*).
  vm_other_config = {
    "xcpng-golden-run-id"  = var.run_id
    "xcpng-golden-created" = var.run_created
    "xcpng-golden-expires" = var.run_expires
  }
  vm_memory       = var.vm_memory_mb
  vcpus_max       = var.vm_cpus
  vcpus_atstartup = var.vm_cpus
  disk_name       = "${var.vm_name}-disk?${local.run_tags}"
  disk_size       = var.disk_size_mb
  # Attached as a CD from the start: the installer installs the guest agent from it
  # (packer/http/guest-tools.sh), so the first boot reports the VM's IP through XAPI.
  tools_iso_name = var.tools_iso_name

  # Packer's HTTP server runs on the runner; the build VM must reach this port range.
  http_directory = "${path.root}/../http"
  http_port_min  = var.http_port_min
  http_port_max  = var.http_port_max
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
  # How the plugin (vatesfr/packer-plugin-xenserver 0.11.4) finds the VM, and why so:
  # - "auto": the first IP comes from the installer's request to Packer's HTTP server, later
  #   ones from the guest agent's metrics; each new one replaces the last (plugin PR #62).
  #   The installed system may take another DHCP lease than the installer had (plugin issue
  #   #61), so the installer installs the guest agent (packer/http/guest-tools.sh) and the
  #   first boot reports the new address; without it Packer waits out ssh_wait_timeout on
  #   the old one;
  # - the installer's IP counts once the preseed is fetched, so install_timeout and
  #   ssh_wait_timeout cover the whole install;
  # - sshd is not up until the installed system boots: many handshake attempts.
  ip_getter              = "auto"
  dhcp_wait              = "30s"
  install_timeout        = var.install_timeout
  ssh_wait_timeout       = var.ssh_wait_timeout
  ssh_handshake_attempts = 1000

  # No shutdown_command, on purpose. The plugin sends it over a *new* SSH login tunnelled
  # through dom0 of the VM's host (step_shutdown.go), which fails when dom0 has no route to
  # the VM network; by then 90-seal.sh has also removed the build user it would log in as.
  # Any failure there makes the plugin hard-stop the VM. Without a command the plugin calls
  # VM.clean_shutdown: XAPI asks the guest kernel through xenstore (control/shutdown), which
  # needs no SSH, no route and no account, and returns once the VM is halted. The seal does
  # not depend on that stop being clean: it is complete, and synced, before the last
  # provisioner returns.

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
    execute_command  = "chmod +x '{{ .Path }}'; {{ .Vars }} sudo -n -E bash '{{ .Path }}'"
    environment_vars = local.script_env
    scripts          = local.scripts
  }
}
