#!/usr/bin/env bash
# Install exactly one Xen guest agent, from the source the template names, so XCP-ng sees the
# VM's IP and OS and can shut it down cleanly. validations/test_guest_tools.py checks that
# exactly one agent is installed and enabled.
# Env: GUEST_TOOLS_SOURCE = iso | package | xen-guest-agent | none
#   iso             the XCP-ng guest-tools ISO attached as a CD (Linux/install.sh)
#   package         the family package (EL: EPEL xe-guest-utilities-latest; Ubuntu: xe-guest-utilities)
#   xen-guest-agent the Rust agent: XEN_GUEST_AGENT_URL (a .deb/.rpm, fetched with curl, which
#                   is installed first if missing), else the distribution's package if it has
#                   one (Debian 12/13 have none: use iso there, or give the URL)
#   none            no agent: allowed only for local (QEMU) builds, announced loudly
set -euo pipefail

SOURCE=${GUEST_TOOLS_SOURCE:-}
AGENTS=(xe-linux-distribution.service xe-daemon.service xen-guest-agent.service)

die() {
  echo "40-xen-guest-tools.sh: $*" >&2
  exit 1
}

unit_exists() { [[ -n "$(systemctl list-unit-files --no-legend "$1" 2>/dev/null)" ]]; }

# The first of the XenServer-tools units that exists (the tools ISO and EPEL ship
# xe-linux-distribution.service; Ubuntu's xe-guest-utilities ships xe-daemon.service).
xe_unit() {
  local unit
  for unit in xe-linux-distribution.service xe-daemon.service; do
    if unit_exists "$unit"; then
      echo "$unit"
      return 0
    fi
  done
  return 1
}

pkg_install() {
  if [[ "$OS_FAMILY" == debian ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 install "$@"
  else
    dnf -y -q install "$@"
  fi
}

install_from_iso() {
  local dev mnt
  mnt=$(mktemp -d)
  for dev in /dev/sr0 /dev/sr1 /dev/cdrom /dev/xvdd; do
    [[ -b "$dev" ]] || continue
    if mount -o ro "$dev" "$mnt" 2>/dev/null; then
      if [[ -x "$mnt/Linux/install.sh" || -f "$mnt/Linux/install.sh" ]]; then
        bash "$mnt/Linux/install.sh" -n
        umount "$mnt"
        rmdir "$mnt"
        return 0
      fi
      umount "$mnt"
    fi
  done
  rmdir "$mnt"
  die "GUEST_TOOLS_SOURCE=iso but no CD with Linux/install.sh was found; attach the guest-tools ISO (tools_iso_name) or choose another source"
}

# The family's package, where the OS's repositories have one: Ubuntu's universe has
# xe-guest-utilities, Debian has none; EL has xe-guest-utilities-latest in EPEL (Fedora in
# its own repositories).
install_package() {
  case "$OS_FAMILY" in
    debian)
      apt-cache show xe-guest-utilities >/dev/null 2>&1 ||
        die "GUEST_TOOLS_SOURCE=package: ${OS_NAME:-this OS} has no xe-guest-utilities package (Debian has none); use iso or xen-guest-agent"
      pkg_install xe-guest-utilities
      ;;
    el)
      if ! dnf -q list xe-guest-utilities-latest >/dev/null 2>&1; then pkg_install epel-release; fi
      pkg_install xe-guest-utilities-latest
      ;;
  esac
}

packaged() {
  if [[ "$OS_FAMILY" == debian ]]; then
    [[ "$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')" =~ ^[^\(] ]]
  else
    dnf -q list --available "$1" >/dev/null 2>&1
  fi
}

install_xen_guest_agent() {
  local url=${XEN_GUEST_AGENT_URL:-} tmp ext
  if [[ -n "$url" ]]; then
    ext=${url##*.}
    [[ "$ext" == deb || "$ext" == rpm ]] || die "XEN_GUEST_AGENT_URL must name a .deb or .rpm, got $url"
    command -v curl >/dev/null || pkg_install curl
    tmp=$(mktemp -d)
    curl -fsSL --retry 3 -o "$tmp/xen-guest-agent.$ext" "$url" ||
      die "cannot download XEN_GUEST_AGENT_URL=$url"
    pkg_install "$tmp/xen-guest-agent.$ext"
    rm -rf "$tmp"
  elif packaged xen-guest-agent; then
    pkg_install xen-guest-agent
  else
    die "GUEST_TOOLS_SOURCE=xen-guest-agent: ${OS_NAME:-this OS} has no xen-guest-agent package; set XEN_GUEST_AGENT_URL (xen_guest_agent_url) to a .deb/.rpm of it, or use guest_tools_source = \"iso\""
  fi
}

case "$SOURCE" in
  iso | package | xen-guest-agent) ;;
  none)
    {
      echo "######################################################################"
      echo "# WARNING: GUEST_TOOLS_SOURCE=none: NO Xen guest agent is installed. #"
      echo "# XCP-ng will not see this VM's IP or OS. Acceptable for local QEMU  #"
      echo "# builds only; validations fail it on XCP-ng.                        #"
      echo "######################################################################"
    } >&2
    exit 0
    ;;
  "") die "GUEST_TOOLS_SOURCE is not set; set it to iso, package, xen-guest-agent or none" ;;
  *) die "unknown GUEST_TOOLS_SOURCE=$SOURCE; expected iso, package, xen-guest-agent or none" ;;
esac
# The template passes the OS (script_env); nothing is guessed from /etc/os-release.
if [[ ! "${OS_FAMILY:-}" =~ ^(debian|el)$ ]]; then
  die "OS_FAMILY='${OS_FAMILY:-}' (set by the template's script_env); expected debian or el"
fi

case "$SOURCE" in
  iso) xe_unit >/dev/null || install_from_iso ;;
  package) xe_unit >/dev/null || install_package ;;
  xen-guest-agent) unit_exists xen-guest-agent.service || install_xen_guest_agent ;;
esac

# Exactly one agent: enable the one this source provides, disable any other.
case "$SOURCE" in
  xen-guest-agent) wanted=xen-guest-agent.service ;;
  *) wanted=$(xe_unit) || die "$SOURCE was installed but neither xe-linux-distribution.service nor xe-daemon.service exists" ;;
esac
unit_exists "$wanted" || die "$SOURCE was installed but $wanted does not exist"
systemctl is-enabled --quiet "$wanted" || systemctl enable "$wanted"
for unit in "${AGENTS[@]}"; do
  if [[ "$unit" != "$wanted" ]] && unit_exists "$unit" && systemctl is-enabled --quiet "$unit"; then
    systemctl disable "$unit"
  fi
done
echo "40-xen-guest-tools.sh: $wanted installed and enabled (source: $SOURCE)"
