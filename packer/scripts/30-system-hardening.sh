#!/usr/bin/env bash
# Harden the kernel and file permissions and remove legacy cleartext network services, the
# linux-baseline controls that fit a template. validations/test_system.py checks the result.
set -euo pipefail

# The template passes the OS (script_env); nothing is guessed from /etc/os-release.
if [[ ! "${OS_FAMILY:-}" =~ ^(debian|el)$ ]]; then
  echo "30-system-hardening.sh: OS_FAMILY='${OS_FAMILY:-}' (set by the template's script_env); expected debian or el" >&2
  exit 1
fi

# Kernel parameters: packer/files/sysctl.d/ (uploaded by the template's file provisioner to
# TEMPLATE_FILES), the one list the clone is checked against.
files=${TEMPLATE_FILES:-/tmp/template-files}
if [[ ! -f "$files/sysctl.d/90-template-hardening.conf" ]]; then
  echo "30-system-hardening.sh: $files/sysctl.d/90-template-hardening.conf is missing (the template's file provisioner uploads packer/files there)" >&2
  exit 1
fi
install -m 0644 -o root -g root "$files/sysctl.d/90-template-hardening.conf" /etc/sysctl.d/
# Apply now where possible (systemd-sysctl understands the globs); the file is what matters for
# the clone's boots.
sysctl_bin=$(command -v systemd-sysctl || echo /lib/systemd/systemd-sysctl)
"$sysctl_bin" /etc/sysctl.d/90-template-hardening.conf >/dev/null 2>&1 ||
  echo "WARNING: 30-system-hardening.sh: some sysctl keys could not be applied now" >&2

# Legacy cleartext services: none may be installed.
case "$OS_FAMILY" in
  debian)
    legacy=(telnetd inetutils-telnetd telnetd-ssl rsh-server rsh-redone-server tftpd tftpd-hpa
      atftpd xinetd openbsd-inetd inetutils-inetd nis talkd rwho rwhod)
    present=()
    for p in "${legacy[@]}"; do
      if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        present+=("$p")
      fi
    done
    if ((${#present[@]})); then
      DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 purge "${present[@]}"
    fi
    shadow_group=shadow shadow_mode=0640

    # Time sync: a clone needs a right clock (TLS, logs, tokens). A minimal base has no
    # daemon; Debian's own is systemd-timesyncd (a package of its own since bookworm).
    timesync=(systemd-timesyncd chrony ntpsec ntp openntpd)
    states=$(dpkg-query -W -f='${Status}\n' "${timesync[@]}" 2>/dev/null || true) # 1: one unknown
    if ! grep -q 'install ok installed' <<<"$states"; then
      DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 install systemd-timesyncd
    fi
    if dpkg-query -W -f='${Status}' systemd-timesyncd 2>/dev/null | grep -q 'install ok installed'; then
      systemctl enable systemd-timesyncd.service
    fi

    # Mandatory access control: AppArmor (Debian's kernel enables the LSM; the package loads
    # the profiles at boot). Ubuntu has it already; EL's parity is SELinux enforcing below.
    if ! dpkg-query -W -f='${Status}' apparmor 2>/dev/null | grep -q 'install ok installed'; then
      DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 install apparmor
    fi
    systemctl enable apparmor.service
    ;;
  el)
    legacy=(telnet-server rsh-server tftp-server xinetd ypserv ypbind talk-server)
    present=()
    for p in "${legacy[@]}"; do
      if rpm -q "$p" >/dev/null 2>&1; then present+=("$p"); fi
    done
    if ((${#present[@]})); then dnf -y -q remove "${present[@]}"; fi

    # SELinux enforcing on every boot of the clone: the config file, and no kernel argument
    # that turns it off or to permissive. A build that runs without SELinux cannot vouch for
    # the labels of what it wrote, so it stops here.
    if [[ "$(getenforce 2>/dev/null || echo Disabled)" == Disabled ]]; then
      echo "30-system-hardening.sh: SELinux is disabled in the build VM; install with 'selinux --enforcing' (packer/http/el/ks.cfg)" >&2
      exit 1
    fi
    sed -i -E 's/^SELINUX=.*/SELINUX=enforcing/' /etc/selinux/config
    if command -v grubby >/dev/null && grubby --info=ALL | grep -qE '^args=.*[" ](selinux|enforcing)='; then
      grubby --update-kernel=ALL --remove-args="selinux enforcing"
    fi

    # firewalld in the documented state (README "EL family"): enabled, default zone public,
    # which lets in SSH and DHCPv6 replies only; no other firewall service beside it.
    rpm -q firewalld >/dev/null 2>&1 || dnf -y -q install firewalld
    mkdir -p /etc/firewalld/zones
    cat >/etc/firewalld/zones/public.xml <<'ZONE'
<?xml version="1.0" encoding="utf-8"?>
<zone>
  <short>Public</short>
  <description>Managed by packer/scripts/30-system-hardening.sh: SSH and DHCPv6 replies only. Open more per clone (cloud-init runcmd: firewall-cmd --permanent).</description>
  <service name="ssh"/>
  <service name="dhcpv6-client"/>
</zone>
ZONE
    chmod 0644 /etc/firewalld/zones/public.xml
    if grep -q '^DefaultZone=' /etc/firewalld/firewalld.conf; then
      sed -i 's/^DefaultZone=.*/DefaultZone=public/' /etc/firewalld/firewalld.conf
    else
      echo 'DefaultZone=public' >>/etc/firewalld/firewalld.conf
    fi
    for unit in iptables.service ip6tables.service nftables.service; do
      if systemctl is-enabled --quiet "$unit" 2>/dev/null; then systemctl disable "$unit"; fi
    done
    systemctl unmask firewalld.service >/dev/null 2>&1 || true
    systemctl enable firewalld.service
    shadow_group=root shadow_mode=0000
    ;;
esac

# Account databases: owned by root, shadow files unreadable by others.
chown root:root /etc/passwd /etc/group
chmod 0644 /etc/passwd /etc/group
for f in /etc/shadow /etc/gshadow; do
  if [[ -e "$f" ]]; then
    chown "root:$shadow_group" "$f"
    chmod "$shadow_mode" "$f"
  fi
done

# Host-based trust files have no place in a template.
rm -f /etc/hosts.equiv /etc/shosts.equiv /root/.rhosts /root/.shosts /root/.netrc

echo "30-system-hardening.sh: ${OS_NAME:-$OS_FAMILY} hardened"
