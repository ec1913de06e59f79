#!/usr/bin/env bash
# The network renderer policy: one network stack per family, the one cloud-init renders each
# clone's network into. validations/test_network.py holds the booted image to it.
#
#   debian (Debian, Ubuntu): cloud-init writes netplan YAML and netplan hands it to
#     systemd-networkd. A networkd fallback (DHCP on any Ethernet link) serves a clone booted
#     without a seed, where cloud-init renders nothing. No ifupdown: Debian's installer leaves
#     an ifupdown stanza for the build VM's interface, which would run a second DHCP client
#     beside networkd on every clone.
#   el: NetworkManager, cloud-init's network-manager renderer (the EL family's own default).
#
# Nothing is restarted: the build's own network (and Packer's SSH session) stays as it is; the
# policy takes effect on the next boot, the clone's first.
set -euo pipefail

die() {
  echo "60-network.sh: $*" >&2
  exit 1
}
if [[ ! "${OS_FAMILY:-}" =~ ^(debian|el)$ ]]; then
  die "OS_FAMILY='${OS_FAMILY:-}' (set by the template's script_env); expected debian or el"
fi

enabled() { [[ "$(systemctl is-enabled "$1" 2>/dev/null || true)" == enabled ]]; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

renderer_config() { # $1 = cloud-init renderer
  install -d -m 0755 /etc/cloud/cloud.cfg.d
  cat >/etc/cloud/cloud.cfg.d/95-template-network.cfg <<CONF
# Managed by packer/scripts/60-network.sh: cloud-init renders the network with $1 only.
system_info:
  network:
    renderers: [ $1 ]
    activators: [ $1 ]
CONF
  chmod 0644 /etc/cloud/cloud.cfg.d/95-template-network.cfg
}

# systemd-resolved resolves names only: its LLMNR and mDNS responders would listen on
# 0.0.0.0:5355 and 5353 on every clone (validations: system-listeners).
resolver_quiet() {
  install -d -m 0755 /etc/systemd/resolved.conf.d
  cat >/etc/systemd/resolved.conf.d/60-template.conf <<'CONF'
# Managed by packer/scripts/60-network.sh: no LLMNR or mDNS responder on the clone.
[Resolve]
LLMNR=no
MulticastDNS=no
CONF
  chmod 0644 /etc/systemd/resolved.conf.d/60-template.conf
}

debian_family() {
  local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600)
  local want=()
  command -v netplan >/dev/null || want+=(netplan.io)
  installed systemd-resolved || [[ -e /lib/systemd/systemd-resolved || -e /usr/lib/systemd/systemd-resolved ]] ||
    want+=(systemd-resolved)
  if ((${#want[@]})); then DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${want[@]}"; fi

  renderer_config netplan
  cat >/etc/systemd/network/99-template-fallback.network <<'UNIT'
# Managed by packer/scripts/60-network.sh. networkd applies the first matching file by name:
# netplan's /run/systemd/network/10-netplan-*.network files (from cloud-init) win; this one
# only serves a clone that booted without any seed.
[Match]
Type=ether
Name=en* eth*

[Network]
DHCP=yes
UNIT
  chmod 0644 /etc/systemd/network/99-template-fallback.network
  systemctl enable systemd-networkd.service systemd-resolved.service
  resolver_quiet
  # Names resolve through systemd-resolved, which networkd feeds (a plain file would keep the
  # build network's servers in every clone).
  if [[ "$(readlink /etc/resolv.conf || true)" != *run/systemd/resolve/* ]]; then
    ln -sfn ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
  fi

  # ifupdown: purged (its scripts stop nothing, so the build's address stays); its
  # configuration, which purge keeps, is reduced to the loopback.
  if installed ifupdown; then
    systemctl disable networking.service >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" purge ifupdown
  fi
  if [[ -e /etc/network/interfaces ]]; then
    printf '%s\n' '# Managed by packer/scripts/60-network.sh: netplan and systemd-networkd configure' \
      '# the network (cloud-init renders it); no interface is configured here.' \
      'auto lo' 'iface lo inet loopback' >/etc/network/interfaces
  fi
  rm -f /etc/network/interfaces.d/*
  # Netplan files an installer wrote for the build VM's interface (Ubuntu's subiquity; cloud-init's
  # own 50-cloud-init.yaml is removed when the image is sealed).
  rm -f /etc/netplan/00-installer-config*.yaml
  if enabled NetworkManager.service; then systemctl disable NetworkManager.service; fi
}

el_family() {
  rpm -q NetworkManager >/dev/null 2>&1 || dnf -y -q install NetworkManager
  renderer_config network-manager
  systemctl enable NetworkManager.service
  # Fedora resolves through systemd-resolved; EL 9 and 10 do not ship it by default.
  if [[ -n "$(systemctl list-unit-files --no-legend systemd-resolved.service 2>/dev/null)" ]]; then
    resolver_quiet
  fi
}

case "$OS_FAMILY" in
  debian) debian_family ;;
  el) el_family ;;
esac
echo "60-network.sh: ${OS_NAME:-$OS_FAMILY}: network policy of the $OS_FAMILY family applied"
