#!/usr/bin/env bash
# Configure cloud-init so each clone takes its identity from a NoCloud seed (local, XCP-ng
# cloud-config drive), a ConfigDrive (XCP-ng, CloudStack's config drive) or CloudStack's virtual
# router, and remove installer leftovers that would override it.
# validations/test_cloud_init.py checks the result; docs/cloudstack.md explains the CloudStack part.
set -euo pipefail

# The template passes the OS (script_env); nothing is guessed from /etc/os-release.
if [[ ! "${OS_FAMILY:-}" =~ ^(debian|el)$ ]]; then
  echo "50-cloud-init.sh: OS_FAMILY='${OS_FAMILY:-}' (set by the template's script_env); expected debian or el" >&2
  exit 1
fi

# Ubuntu's installer leaves cloud-init installed (and configured for itself, see below);
# Debian's preseed and the local base disk install it; install it where it is missing.
if ! command -v cloud-init >/dev/null; then
  case "$OS_FAMILY" in
    debian) DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 install cloud-init cloud-guest-utils ;;
    el) dnf -y -q install cloud-init cloud-utils-growpart ;;
  esac
fi
# cloud-init's CloudStack datasource asks the virtual router's password server with wget up to
# cloud-init 25.1 (Debian 12's 22.4, Debian 13's 25.1, EL 9's 23.4): without it every CloudStack
# boot logs a traceback. The answer is "no password" for these key-only templates (registered
# with passwordenabled=false), and sshd refuses passwords anyway (01-template-hardening.conf).
if ! command -v wget >/dev/null; then
  case "$OS_FAMILY" in
    debian) DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 install wget ;;
    el) dnf -y -q install wget ;;
  esac
fi

# cloud-init's locale module runs update-locale on every new instance; without the locales
# package (minimal Debian roots) it fails and marks each clone's first boot as an error.
# Configure the locale now, so the clone's boot finds it done.
LOCALE=${TEMPLATE_LOCALE:-en_US.UTF-8}
if [[ "$OS_FAMILY" == debian ]]; then
  if ! dpkg-query -W -f='${Status}' locales 2>/dev/null | grep -q 'install ok installed'; then
    DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 install locales
  fi
  if ! grep -qxF "LANG=$LOCALE" /etc/default/locale 2>/dev/null; then
    sed -i "s/^# *\($LOCALE\)/\1/" /etc/locale.gen
    grep -q "^$LOCALE" /etc/locale.gen || echo "$LOCALE ${LOCALE#*.}" >>/etc/locale.gen
    locale-gen
    update-locale "LANG=$LOCALE"
  fi
fi

# Installer leftovers: they disable cloud-init, its networking, or pin the installer's datasource.
rm -f /etc/cloud/cloud-init.disabled \
  /etc/cloud/cloud.cfg.d/99-installer.cfg \
  /etc/cloud/cloud.cfg.d/90-installer-network.cfg \
  /etc/cloud/cloud.cfg.d/subiquity-disable-cloudinit-networking.cfg \
  /etc/cloud/cloud.cfg.d/curtin-preserve-sources.cfg \
  /etc/cloud/cloud.cfg.d/99-disable-network-config.cfg

install -d -m 0755 /etc/cloud/cloud.cfg.d
# Sorts after Debian's 90_dpkg.cfg, so this list is the one that counts. NoCloud and ConfigDrive
# are found from a local disk before any network; CloudStack (the virtual router's metadata
# service, found through the DHCP server) is tried only when neither is there. Its wait is bounded
# so that a boot with no datasource at all ends in about half a minute, not cloud-init's default
# two minutes.
cat >/etc/cloud/cloud.cfg.d/95-template-datasources.cfg <<'CONF'
# Managed by packer/scripts/50-cloud-init.sh
datasource_list: [ NoCloud, ConfigDrive, CloudStack ]
datasource:
  CloudStack:
    max_wait: 30
    timeout: 10
CONF
# ds-identify (cloud-init's systemd generator) recognises CloudStack only by a DMI product name
# starting with "CloudStack", which CloudStack's KVM hosts set and XenServer/XCP-ng hosts do not:
# with its default policy (notfound=disabled) an instance on a CloudStack network with no config
# drive would run without cloud-init. This policy keeps what ds-identify finds on a local disk
# (a NoCloud or ConfigDrive boot is narrowed to that one, no network probe, no delay) and lets
# cloud-init search the list itself when nothing was found.
cat >/etc/cloud/ds-identify.cfg <<'CONF'
# Managed by packer/scripts/50-cloud-init.sh
policy: search,found=all,maybe=all,notfound=enabled
CONF
chmod 0644 /etc/cloud/ds-identify.cfg
cat >/etc/cloud/cloud.cfg.d/95-template-settings.cfg <<'CONF'
# Managed by packer/scripts/50-cloud-init.sh
# A new instance gets new host keys and no password login; the image ships none.
ssh_deletekeys: true
ssh_genkeytypes: [ ed25519, ecdsa, rsa ]
ssh_pwauth: false
disable_root: true
preserve_hostname: false
# The clone's own name resolves (/etc/hosts from cloud-init's template): without it sudo warns
# "unable to resolve host" on every call.
manage_etc_hosts: true
CONF
chmod 0644 /etc/cloud/cloud.cfg.d/95-template-*.cfg

# Enable whichever generation of units this cloud-init ships: cloud-init.service in older
# releases, cloud-init-main.service plus cloud-init-network.service in newer ones (Debian 13's
# 25.1), which have no alias for the old name.
for unit in cloud-init-local.service cloud-init.service cloud-init-main.service \
  cloud-init-network.service cloud-config.service cloud-final.service; do
  if [[ -n "$(systemctl list-unit-files --no-legend "$unit" 2>/dev/null)" ]] &&
    ! systemctl is-enabled --quiet "$unit"; then
    systemctl enable "$unit"
  fi
done

cloud-init --version
echo "50-cloud-init.sh: datasources NoCloud, ConfigDrive, CloudStack"
