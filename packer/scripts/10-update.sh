#!/usr/bin/env bash
# Bring the installed system up to date so the template does not ship known-fixed bugs.
# Env: UPDATE_PACKAGES=0 skips the upgrade (loudly), e.g. for an offline rebuild.
set -euo pipefail

# shellcheck source=/dev/null
. /etc/os-release
family=unknown
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "* | *" ubuntu "*) family=debian ;;
  *" rhel "* | *" fedora "* | *" centos "*) family=el ;;
esac

if [[ "${UPDATE_PACKAGES:-1}" == "0" ]]; then
  echo "WARNING: 10-update.sh: UPDATE_PACKAGES=0, the template is NOT updated" >&2
  exit 0
fi

case "$family" in
  debian)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dist-upgrade
    apt-get -y -q autoremove --purge
    ;;
  el)
    dnf -y -q upgrade --refresh
    dnf -y -q autoremove
    ;;
  *)
    echo "10-update.sh: unsupported OS ID=${ID:-?} ID_LIKE=${ID_LIKE:-?} (expected a Debian or EL family)" >&2
    exit 1
    ;;
esac
echo "10-update.sh: $family system updated"
