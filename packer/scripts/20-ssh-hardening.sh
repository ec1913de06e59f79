#!/usr/bin/env bash
# Harden sshd through one drop-in that sorts first in sshd_config.d, because sshd keeps the
# FIRST value it reads: a later drop-in (cloud-init's 50-cloud-init.conf) then cannot weaken
# it. On EL the algorithms are left to the system crypto policy, narrowed by a sub-policy (the
# EL block below). The policy below is what validations/test_ssh.py checks on the effective
# configuration (sshd -T), and what tests/unit/test_ssh_agreement.py compares with the OpenSSH
# client the checks use.
set -euo pipefail

DROPIN=/etc/ssh/sshd_config.d/01-template-hardening.conf
MIN_MODULI_BITS=3071 # moduli lists size-1: 3071 means a 3072-bit group

# The policy: strong algorithms only, in order of preference.
CIPHERS="chacha20-poly1305@openssh.com aes256-gcm@openssh.com aes128-gcm@openssh.com aes256-ctr aes192-ctr aes128-ctr"
KEX="sntrup761x25519-sha512@openssh.com mlkem768x25519-sha256 curve25519-sha256 curve25519-sha256@libssh.org diffie-hellman-group-exchange-sha256"
MACS="hmac-sha2-512-etm@openssh.com hmac-sha2-256-etm@openssh.com umac-128-etm@openssh.com"

# Keep only what this OpenSSH build knows: an unknown name stops sshd from starting
# (e.g. sntrup761 on EL8's OpenSSH 8.0).
supported() { # $1 = ssh -Q query type, rest = wanted names; prints a comma list
  local kind=$1 known name out=()
  shift
  known=$(ssh -Q "$kind" 2>/dev/null || true)
  for name in "$@"; do
    if [[ -z "$known" ]] || grep -qxF "$name" <<<"$known"; then out+=("$name"); fi
  done
  if ((${#out[@]} == 0)); then
    echo "20-ssh-hardening.sh: this OpenSSH supports none of: $*" >&2
    exit 1
  fi
  local IFS=,
  echo "${out[*]}"
}

# shellcheck disable=SC2086 # word splitting of the lists is intended
ciphers=$(supported cipher $CIPHERS)
# shellcheck disable=SC2086
kex=$(supported kex $KEX)
# shellcheck disable=SC2086
macs=$(supported mac $MACS)

install -d -m 0755 -o root -g root /etc/ssh/sshd_config.d
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<CONF
# Managed by packer/scripts/20-ssh-hardening.sh: sorts first, so it wins over later drop-ins.
PermitRootLogin no
PasswordAuthentication no
PermitEmptyPasswords no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
HostbasedAuthentication no
IgnoreRhosts yes
PermitUserEnvironment no
X11Forwarding no
AllowAgentForwarding no
PermitTunnel no
GatewayPorts no
MaxAuthTries 3
MaxSessions 10
LoginGraceTime 30
ClientAliveInterval 300
ClientAliveCountMax 2
LogLevel VERBOSE
Ciphers $ciphers
KexAlgorithms $kex
MACs $macs
CONF
# EL: sshd's algorithms come from the system-wide crypto policy, which 50-redhat.conf includes
# (/etc/crypto-policies/back-ends/opensshserver.config). The hardening narrows that policy with
# a sub-policy instead of overriding it from a drop-in, so update-crypto-policies stays the one
# place that sets them (and FIPS or a stricter base policy still apply). The sub-policy only
# removes algorithms, with patterns that match in every crypto-policies release of EL 9.4+,
# EL 10 and Fedora; etm@SSH needs EL 9.4 or later.
if [[ "${OS_FAMILY:-}" == el ]]; then
  sed -i -E '/^(Ciphers|KexAlgorithms|MACs) /d' "$tmp"
  install -d -m 0755 /etc/crypto-policies/policies/modules
  cat >/etc/crypto-policies/policies/modules/TEMPLATE-SSH.pmod <<'PMOD'
# Managed by packer/scripts/20-ssh-hardening.sh: the template's SSH policy, scoped to SSH
# (OpenSSH and libssh); every other back-end keeps the base policy.
# %suppress_experimental_value_warnings=true
# No CBC ciphers.
cipher@SSH = -*-CBC
# MACs: SHA-2 and UMAC-128 only, encrypt-then-MAC only.
mac@SSH = -HMAC-SHA1 -HMAC-MD5 -UMAC-64
etm@SSH = DISABLE_NON_ETM
# Key exchange: no group on a NIST or Brainpool prime curve (ecdh-sha2-nistp*, and the
# P-256/P-384 ML-KEM hybrids), no finite-field group under 3072 bits (group14).
group@SSH = -*P[0-9]* -FFDHE-[12]*
hash@SSH = -SHA1 -MD5
sign@SSH = -*-SHA1
# %suppress_experimental_value_warnings=false
PMOD
  chmod 0644 /etc/crypto-policies/policies/modules/TEMPLATE-SSH.pmod
  policy=$(update-crypto-policies --show)
  base=${policy%%:*}
  if [[ "$base" == LEGACY ]]; then base=DEFAULT; fi
  update-crypto-policies --no-reload --set "$base:TEMPLATE-SSH"
  # Host keys belong to root:ssh_keys 0640, as sshd-keygen makes them (the seal removes these;
  # the clone's are made by sshd-keygen or cloud-init, which do the same).
  if getent group ssh_keys >/dev/null; then
    for key in /etc/ssh/ssh_host_*_key; do
      if [[ -f "$key" ]]; then
        chown root:ssh_keys "$key"
        chmod 0640 "$key"
      fi
    done
  fi
fi
install -m 0600 -o root -g root "$tmp" "$DROPIN"

# Every supported release reads drop-ins only through an Include at the top of sshd_config;
# add it where it is missing (EL8), so the drop-in is never silently ignored.
if ! grep -qiE '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf' /etc/ssh/sshd_config; then
  sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config
fi

# EL8 passes the system crypto policy on sshd's command line ($CRYPTO_POLICY: -oCiphers=...),
# which beats every config file; an empty CRYPTO_POLICY in /etc/sysconfig/sshd turns that off.
if [[ -f /etc/sysconfig/sshd ]] && grep -qs 'CRYPTO_POLICY' /usr/lib/systemd/system/sshd.service; then
  if ! grep -qx 'CRYPTO_POLICY=' /etc/sysconfig/sshd; then
    sed -i '/^CRYPTO_POLICY=/d' /etc/sysconfig/sshd
    echo 'CRYPTO_POLICY=' >>/etc/sysconfig/sshd
  fi
fi

# No Diffie-Hellman group under MIN_MODULI_BITS for diffie-hellman-group-exchange.
if [[ -f /etc/ssh/moduli ]]; then
  awk -v min="$MIN_MODULI_BITS" '/^#/ || $5 >= min' /etc/ssh/moduli >"$tmp"
  if ! grep -qv '^#' "$tmp"; then
    echo "20-ssh-hardening.sh: /etc/ssh/moduli has no group of ${MIN_MODULI_BITS}+ bits" >&2
    exit 1
  fi
  install -m 0644 -o root -g root "$tmp" /etc/ssh/moduli
fi

# Ownership and modes: root-owned, nothing group/other writable, server config not readable.
chown root:root /etc/ssh /etc/ssh/sshd_config
chmod 0755 /etc/ssh
chmod 0600 /etc/ssh/sshd_config
find /etc/ssh/sshd_config.d -maxdepth 1 -type f -name '*.conf' -exec chown root:root {} + -exec chmod 0600 {} +

# Ubuntu 22.10 and later start sshd through ssh.socket: systemd listens on the port a
# generator derives from sshd_config at boot, and sshd starts with the first connection. Then
# `sshd -T` does not say where sshd listens, and on a clone the first connection can come
# before cloud-init has made the new host keys (ssh.service's `sshd -t` then fails and the
# socket gives up). Every template of the family therefore runs sshd as a daemon reading
# sshd_config, as Debian does: Ubuntu's documented way back. Nothing is restarted now.
if [[ "$(systemctl is-enabled ssh.socket 2>/dev/null || true)" == enabled ]]; then
  systemctl disable ssh.socket
  rm -f /etc/systemd/system/ssh.service.d/00-socket.conf /etc/systemd/system/ssh.socket.d/addresses.conf
  systemctl daemon-reload
  systemctl enable ssh.service
  echo "20-ssh-hardening.sh: ssh.socket disabled, ssh.service enabled (sshd reads sshd_config)"
fi

# Validate now: a config sshd refuses would leave the template unreachable. sshd is not
# reloaded here; the policy applies from the next boot (the clone), so the build's own SSH
# session is never cut by a client that the new policy would refuse.
mkdir -p /run/sshd
hostkey_args=()
if ! compgen -G '/etc/ssh/ssh_host_*_key' >/dev/null; then # sealed already: test with a throwaway key
  ssh-keygen -q -t ed25519 -N '' -f "$tmp.key"
  hostkey_args=(-h "$tmp.key")
  trap 'rm -f "$tmp" "$tmp.key" "$tmp.key.pub"' EXIT
fi
sshd -t "${hostkey_args[@]}"
echo "20-ssh-hardening.sh: policy written to $DROPIN (ciphers=$ciphers kex=$kex macs=$macs)"
