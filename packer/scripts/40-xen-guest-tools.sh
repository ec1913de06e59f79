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

# shellcheck source=/dev/null
. /etc/os-release
family=unknown
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "* | *" ubuntu "*) family=debian ;;
  *" rhel "* | *" fedora "* | *" centos "*) family=el ;;
esac

die() {
  echo "40-xen-guest-tools.sh: $*" >&2
  exit 1
}

unit_exists() { [[ -n "$(systemctl list-unit-files --no-legend "$1" 2>/dev/null)" ]]; }

pkg_install() {
  if [[ "$family" == debian ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get -y -q install "$@"
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

install_package() {
  case "$ID" in
    ubuntu) pkg_install xe-guest-utilities ;;
    debian) die "GUEST_TOOLS_SOURCE=package: Debian has no guest-tools package; use iso or xen-guest-agent" ;;
    *)
      if [[ "$family" == el ]]; then
        if [[ "$ID" != fedora ]] && ! rpm -q epel-release >/dev/null 2>&1; then pkg_install epel-release; fi
        pkg_install xe-guest-utilities-latest
      else
        die "GUEST_TOOLS_SOURCE=package: unsupported OS ID=$ID"
      fi
      ;;
  esac
}

packaged() {
  if [[ "$family" == debian ]]; then
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
    die "GUEST_TOOLS_SOURCE=xen-guest-agent: ${PRETTY_NAME:-this OS} has no xen-guest-agent package; set XEN_GUEST_AGENT_URL (xen_guest_agent_url) to a .deb/.rpm of it, or use guest_tools_source = \"iso\""
  fi
}

case "$SOURCE" in
  iso) unit_exists xe-linux-distribution.service || install_from_iso ;;
  package) unit_exists xe-linux-distribution.service || install_package ;;
  xen-guest-agent) unit_exists xen-guest-agent.service || install_xen_guest_agent ;;
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

# Exactly one agent: enable the one this source provides, disable any other.
case "$SOURCE" in
  xen-guest-agent) wanted=xen-guest-agent.service ;;
  *) wanted=xe-linux-distribution.service ;;
esac
unit_exists "$wanted" || die "$SOURCE was installed but $wanted does not exist"
systemctl is-enabled --quiet "$wanted" || systemctl enable "$wanted"
for unit in "${AGENTS[@]}"; do
  if [[ "$unit" != "$wanted" ]] && unit_exists "$unit" && systemctl is-enabled --quiet "$unit"; then
    systemctl disable "$unit"
  fi
done
echo "40-xen-guest-tools.sh: $wanted installed and enabled (source: $SOURCE)"
