#!/usr/bin/env bash
# Seal the template: remove everything that identifies this build or could let someone in,
# so every clone starts as a new machine. validations/test_hygiene.py reads the artifact
# offline and fails on any leftover.
#
# Env: BUILD_USER = the account Packer is logged in as (required; "none" when there is none).
#
# Packer is still logged in as BUILD_USER and still needs sudo for its shutdown_command, so the
# removal of that user (account, home with authorized_keys, sudoers entries) and the last
# sweep of logs and temp files happen in a one-shot unit when the build VM powers off. The
# rest is done now, so a failure shows in the build log.
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

FINAL=/usr/local/sbin/template-seal-final
UNIT=/etc/systemd/system/template-seal-final.service

# --- the part that runs at power-off (and is also run now, except the user removal) -------
cat >"$FINAL" <<'SCRIPT'
#!/usr/bin/env bash
# Installed by packer/scripts/90-seal.sh; runs once, when the build VM powers off, then removes itself.
set -euo pipefail
BUILD_USER=${1:-none}
MODE=${2:-final}

if [[ "$MODE" == final && "$BUILD_USER" != none ]] && getent passwd "$BUILD_USER" >/dev/null; then
  home=$(getent passwd "$BUILD_USER" | cut -d: -f6)
  pkill -KILL -u "$BUILD_USER" || true
  userdel -f -r "$BUILD_USER" 2>/dev/null || userdel -f "$BUILD_USER"
  if [[ -n "$home" && "$home" != / && -d "$home" ]]; then rm -rf -- "$home"; fi
  getent group "$BUILD_USER" >/dev/null && groupdel "$BUILD_USER" 2>/dev/null || true
fi
if [[ "$MODE" == final && "$BUILD_USER" != none ]]; then
  # Sudoers entries naming the build user: drop-ins (cloud-init's 90-cloud-init-users too)
  # and lines in /etc/sudoers.
  for f in /etc/sudoers.d/*; do
    if [[ -f "$f" ]] && grep -qwF -- "$BUILD_USER" "$f"; then rm -f -- "$f"; fi
  done
  sed -i "/^[[:space:]]*${BUILD_USER}[[:space:]]/d" /etc/sudoers
  visudo -c -q
fi

# Every password in /etc/shadow locked. The build user's is left to the final run: Packer
# may still be using it.
while IFS=: read -r name hash _; do
  if [[ "$MODE" != final && "$name" == "$BUILD_USER" ]]; then continue; fi
  if [[ -z "$hash" ]]; then
    usermod -p '*' "$name"
  elif [[ "$hash" != '!'* && "$hash" != '*'* ]]; then
    usermod -L "$name"
  fi
done </etc/shadow

# root's keys (cloud-init's disable_root copies the build key there) and history.
rm -f /root/.ssh/authorized_keys
for home in /root /home/*; do
  [[ -d "$home" ]] || continue
  rm -f "$home"/.bash_history "$home"/.zsh_history "$home"/.python_history "$home"/.lesshst \
    "$home"/.viminfo "$home"/.wget-hsts "$home"/.sudo_as_admin_successful
done

# Identity: machine-id, host keys and hostname are made again on the clone's first boot.
: >/etc/machine-id
echo localhost >/etc/hostname
if [[ -e /var/lib/dbus/machine-id && ! -L /var/lib/dbus/machine-id ]]; then
  rm -f /var/lib/dbus/machine-id
  ln -s /etc/machine-id /var/lib/dbus/machine-id
fi
# Host keys only at power-off: sshd loads them for every new connection, and Packer may open one.
if [[ "$MODE" == final ]]; then rm -f /etc/ssh/ssh_host_*; fi

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
# journald keeps its file open (and names its folder after the build's machine-id): at power-off
# it is told to write to /run from now on, then the persistent journal is removed.
if [[ "$MODE" == final ]]; then journalctl --relinquish-var >/dev/null 2>&1 || true; fi
rm -rf /var/log/journal/*
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' -o -name '*-????????' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
if [[ "$MODE" == final ]]; then
  rm -rf /tmp/* /var/tmp/*
  systemctl disable template-seal-final.service >/dev/null 2>&1 || true
  rm -f /etc/systemd/system/template-seal-final.service "$0"
fi
SCRIPT
chmod 0700 "$FINAL"

cat >"$UNIT" <<UNITFILE
[Unit]
Description=Seal the template at power-off (remove build user $BUILD_USER, last leftovers)
DefaultDependencies=no
After=local-fs.target
Before=network-pre.target shutdown.target
Wants=network-pre.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=$FINAL $BUILD_USER final
StandardOutput=journal+console
TimeoutStopSec=120

[Install]
WantedBy=multi-user.target
UNITFILE
chmod 0644 "$UNIT"
systemctl daemon-reload
systemctl enable --now template-seal-final.service

# Let the build boot's cloud-init finish before its state is removed (2 = recoverable errors).
# Once sealed there is no state left and `status --wait` would wait forever: skip it then.
if command -v cloud-init >/dev/null && [[ -e /var/lib/cloud/instance ]]; then
  timeout 900 cloud-init status --wait >/dev/null || true
fi

# Run the sweep now too (without the user removal), so a broken step fails the build here.
"$FINAL" "$BUILD_USER" now
echo "90-seal.sh: sealed; build user $BUILD_USER is removed when the VM powers off"
