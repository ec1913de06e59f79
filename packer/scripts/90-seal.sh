#!/usr/bin/env bash
# Seal the template: remove everything that identifies this build or could let someone in,
# so every clone starts as a new machine. validations/test_hygiene.py reads the artifact
# offline and fails on any leftover.
#
# Env: BUILD_USER = the account Packer is logged in as (required; "none" when there is none).
#
# Everything happens here, in the last provisioner, and is synced to disk before it returns:
# nothing waits for the power-off. However the VM then stops (XAPI's clean shutdown, Packer's
# local shutdown_command, or a forced stop by the plugin), the disk holds a sealed system.
#
# The build account goes in this order, so that no trace or hash of it remains: lock it,
# delete it (account, group, home with authorized_keys, sudoers entries), then remove the
# backups shadow-utils keep of the files it was in (/etc/shadow- and the like), which still
# list it. Packer's session stays open while its account goes away: a logged-in session is not
# checked again, and this script already runs as root.
#
# What still needs the account after this script is the power-off. On the local QEMU build
# Packer sends its shutdown_command over the session it keeps open, as the (now nameless) build
# uid, without sudo: touching /run/template-seal/poweroff starts a runtime-only unit that
# powers off once the command has returned. On XCP-ng the plugin uses VM.clean_shutdown.
set -euo pipefail

BUILD_USER=${BUILD_USER:-}
if [[ -z "$BUILD_USER" ]]; then
  echo "90-seal.sh: BUILD_USER is not set; set it to the user Packer logs in as (or 'none')" >&2
  exit 1
fi
if [[ "$BUILD_USER" == root ]]; then
  echo "90-seal.sh: BUILD_USER=root cannot be removed; build with an unprivileged user" >&2
  exit 1
fi
if [[ "$BUILD_USER" != none ]] && ! getent passwd "$BUILD_USER" >/dev/null; then
  echo "90-seal.sh: BUILD_USER=$BUILD_USER does not exist; set it to the user Packer logs in as" >&2
  exit 1
fi

# Let the build boot's cloud-init finish before its state is removed (2 = recoverable errors).
# Once sealed there is no state left and `status --wait` would wait forever: skip it then.
if command -v cloud-init >/dev/null && [[ -e /var/lib/cloud/instance ]]; then
  timeout 900 cloud-init status --wait >/dev/null || true
fi

# --- the power-off trigger, in /run only (never in the image) -------------------------------
# The local build's shutdown_command touches the request file as the build uid; the unit powers
# off after that command returned, so Packer's session never drops mid-command.
TRIGGER=/run/template-seal
mkdir -p "$TRIGGER"
chmod 0700 "$TRIGGER"
if [[ "$BUILD_USER" != none ]]; then chown "$(id -u "$BUILD_USER")" "$TRIGGER"; fi
cat >/run/systemd/system/template-seal-poweroff.path <<UNIT
[Unit]
Description=Power off the sealed build VM when Packer asks (90-seal.sh)
[Path]
PathExists=$TRIGGER/poweroff
UNIT
cat >/run/systemd/system/template-seal-poweroff.service <<'UNIT'
[Unit]
Description=Power off the sealed build VM (90-seal.sh)
[Service]
Type=oneshot
ExecStart=/bin/sleep 2
ExecStart=/bin/systemctl --no-block poweroff
UNIT
systemctl daemon-reload
systemctl start template-seal-poweroff.path

# --- the build account: lock, delete, then the backups that still name it -------------------
if [[ "$BUILD_USER" != none ]]; then
  home=$(getent passwd "$BUILD_USER" | cut -d: -f6)
  usermod --lock --expiredate 1 "$BUILD_USER"
  # Sudoers entries naming the build user: drop-ins (cloud-init's 90-cloud-init-users too)
  # and lines in /etc/sudoers. Our own session keeps its root shell; nothing asks sudo again.
  for f in /etc/sudoers.d/*; do
    if [[ -f "$f" ]] && grep -qwF -- "$BUILD_USER" "$f"; then rm -f -- "$f"; fi
  done
  sed -i "/^[[:space:]]*${BUILD_USER}[[:space:]]/d" /etc/sudoers
  visudo -c -q
  # -f: Packer's own session still runs as this user; it is not killed, it ends with the build.
  userdel -f -r "$BUILD_USER" 2>/dev/null || true
  if getent passwd "$BUILD_USER" >/dev/null; then userdel -f "$BUILD_USER"; fi
  if [[ -n "$home" && "$home" != / && -d "$home" ]]; then rm -rf -- "$home"; fi
  if getent group "$BUILD_USER" >/dev/null; then groupdel "$BUILD_USER"; fi
fi

# Every other password in /etc/shadow locked.
while IFS=: read -r name hash _; do
  if [[ -z "$hash" ]]; then
    usermod -p '*' "$name"
  elif [[ "$hash" != '!'* && "$hash" != '*'* ]]; then
    usermod -L "$name"
  fi
done </etc/shadow

# Last of all account changes: every usermod/userdel above saved the previous file as a
# backup, which still holds the build account (and its password hash).
rm -f /etc/passwd- /etc/shadow- /etc/group- /etc/gshadow- /etc/subuid- /etc/subgid-

# root's keys (cloud-init's disable_root copies the build key there) and history.
rm -f /root/.ssh/authorized_keys
for home in /root /home/*; do
  [[ -d "$home" ]] || continue
  rm -f "$home"/.bash_history "$home"/.zsh_history "$home"/.python_history "$home"/.lesshst \
    "$home"/.viminfo "$home"/.wget-hsts "$home"/.sudo_as_admin_successful
done

# Identity: machine-id, host keys and hostname are made again on the clone's first boot. sshd
# keeps the keys of connections already open (Packer's), new ones are refused from here on.
: >/etc/machine-id
echo localhost >/etc/hostname
if [[ -e /var/lib/dbus/machine-id && ! -L /var/lib/dbus/machine-id ]]; then
  rm -f /var/lib/dbus/machine-id
  ln -s /etc/machine-id /var/lib/dbus/machine-id
fi
rm -f /etc/ssh/ssh_host_*
# Per-machine secrets every clone would otherwise share (systemd's guidance for image builders):
# the random seed and the credential secret are made again on the clone's first boot. The seed
# service saves a new seed when it stops, so it is stopped first: at power-off it is inactive.
systemctl stop systemd-random-seed.service 2>/dev/null || true
rm -f /var/lib/systemd/random-seed /var/lib/urandom/random-seed /var/lib/systemd/credential.secret

# cloud-init state, seed and rendered network; the clone is a new instance.
if command -v cloud-init >/dev/null; then cloud-init clean --logs --seed >/dev/null 2>&1 || true; fi
rm -rf /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data /var/lib/cloud/sem \
  /var/lib/cloud/seed /var/log/cloud-init.log /var/log/cloud-init-output.log
rm -f /etc/network/interfaces.d/50-cloud-init /etc/netplan/50-cloud-init.yaml \
  /etc/NetworkManager/system-connections/cloud-init-*

# DHCP leases and persistent interface names.
rm -f /var/lib/dhcp/*.leases /var/lib/dhclient/*.lease* /var/lib/NetworkManager/*.lease \
  /var/lib/systemd/network/*.lease
rm -f /etc/udev/rules.d/70-persistent-net.rules /etc/udev/rules.d/75-persistent-net-generator.rules

# Installer files that hold password hashes, and installer logs.
rm -rf /var/log/installer /var/log/anaconda
rm -f /root/anaconda-ks.cfg /root/original-ks.cfg /root/install.log /root/install.log.syslog \
  /root/preseed.cfg

# Package caches.
if command -v apt-get >/dev/null; then
  apt-get clean
  rm -rf /var/lib/apt/lists/*
fi
if command -v dnf >/dev/null; then dnf clean all >/dev/null; fi
rm -rf /var/cache/dnf/* /var/cache/yum/*

# EL: the network identity of the build VM (anaconda's connection profile for its NIC, NM's
# secret key that seeds stable IPv6 and DHCP identifiers) and the installer's script logs; then
# every place the kickstart and the scripts wrote gets the label its SELinux policy wants (the
# same list as validations/test_el_security.py LABELLED, which checks it offline).
if [[ "${OS_FAMILY:-}" == el ]]; then
  rm -f /etc/NetworkManager/system-connections/* /var/lib/NetworkManager/secret_key \
    /var/lib/NetworkManager/timestamps /tmp/ks-script-*
  find /etc/sysconfig/network-scripts -maxdepth 1 -name 'ifcfg-*' ! -name ifcfg-lo -delete 2>/dev/null || true
  el_labelled=(
    /etc/ssh /etc/crypto-policies /etc/sysconfig/sshd /etc/sysctl.d /etc/selinux/config
    /etc/firewalld /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/sudoers /etc/sudoers.d
    /etc/cloud /etc/systemd/system /etc/machine-id /etc/hostname /etc/NetworkManager
    /etc/yum.repos.d /etc/default/grub /boot/loader/entries /var/lib/dbus /root
  )
  for path in "${el_labelled[@]}"; do
    if [[ -e "$path" || -L "$path" ]]; then restorecon -R "$path"; fi
  done
  rm -f /.autorelabel
fi

# Crash dumps, logs (kept as empty files so services that expect them still start), temp files.
rm -rf /var/crash/* /var/lib/systemd/coredump/*
# journald keeps its file open, in a folder named after the build's machine-id: from now on it
# writes to /run (until the clone's first boot), then the persistent journal is removed.
journalctl --relinquish-var >/dev/null 2>&1 || true
rm -rf /var/log/journal/*
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' -o -name '*-????????' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
# Packer's script (this one) is open and runs on from memory; Packer removes it with -f.
rm -rf /tmp/* /var/tmp/*

sync
echo "90-seal.sh: sealed; the build user ${BUILD_USER} is gone and the disk is synced"
