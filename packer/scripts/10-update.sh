#!/usr/bin/env bash
# Bring the installed system up to date so the template does not ship known-fixed bugs.
# Env: UPDATE_PACKAGES=0 skips the upgrade (loudly), e.g. for an offline rebuild.
set -euo pipefail

# The template passes the OS (script_env); nothing is guessed from /etc/os-release.
if [[ ! "${OS_FAMILY:-}" =~ ^(debian|el)$ ]]; then
  echo "10-update.sh: OS_FAMILY='${OS_FAMILY:-}' (set by the template's script_env); expected debian or el" >&2
  exit 1
fi

if [[ "${UPDATE_PACKAGES:-1}" == "0" ]]; then
  echo "WARNING: 10-update.sh: UPDATE_PACKAGES=0, the template is NOT updated" >&2
  exit 0
fi

case "$OS_FAMILY" in
  debian)
    export DEBIAN_FRONTEND=noninteractive
    # Ubuntu's first boot may run unattended-upgrades: wait for the dpkg lock, do not fail.
    apt=(apt-get -y -q -o DPkg::Lock::Timeout=600)
    "${apt[@]}" update
    "${apt[@]}" -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dist-upgrade
    "${apt[@]}" autoremove --purge
    ;;
  el)
    dnf -y -q upgrade --refresh
    dnf -y -q autoremove
    ;;
esac
echo "10-update.sh: ${OS_NAME:-$OS_FAMILY} ${OS_VERSION:-} updated"
