"""An EL-shaped root filesystem made of files, for the offline checks (no EL VM boots here).

`make_good_tree` lays files out as an AlmaLinux 9 install finished by the kickstart and the
provisioning scripts lays them out: os-release, SELinux config and policy files, file_contexts,
crypto-policies with the template's sub-policy applied (its OpenSSH back-end is what
crypto-policies' own generator makes of packer/scripts/20-ssh-hardening.sh's module, kept in
tests/data/el/crypto-policies), sshd with Red Hat's 50-redhat.conf, firewalld, NetworkManager,
cloud-init, systemd enablement links, accounts. SELinux labels are `security.selinux`
extended attributes, written from a hand-made table of what an EL install carries (never from
validations/selinux.py, which the checks use to compute what they want).

`EL_DEFECTS` are single defects; each must fail exactly the checks it names. Print the table:

    .venv/bin/python -m tests.support.el_tree
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.rpmdb import shadow_utils

DATA = Path(__file__).resolve().parents[1] / "data" / "el" / "crypto-policies"
PAM_DATA = Path(__file__).resolve().parents[1] / "data" / "pam" / "el9"
BACKEND_TEMPLATE_SSH = DATA / "opensshserver-DEFAULT-TEMPLATE-SSH.txt"

# Labels as an EL 9 targeted policy puts them (user:role:type:level).
ETC = "system_u:object_r:etc_t:s0"
UNIT = "system_u:object_r:systemd_unit_file_t:s0"
LABELS = {
    "etc": ETC,
    "unit": UNIT,
    "sshd_key": "system_u:object_r:sshd_key_t:s0",
    "system_conf": "system_u:object_r:system_conf_t:s0",
    "selinux_config": "system_u:object_r:selinux_config_t:s0",
    "firewalld_etc": "system_u:object_r:firewalld_etc_rw_t:s0",
    "passwd": "system_u:object_r:passwd_file_t:s0",
    "shadow": "system_u:object_r:shadow_t:s0",
    "machineid": "system_u:object_r:machineid_t:s0",
    "hostname": "system_u:object_r:hostname_etc_t:s0",
    "nm_etc": "system_u:object_r:NetworkManager_etc_t:s0",
    "nm_etc_rw": "system_u:object_r:NetworkManager_etc_rw_t:s0",
    "bootloader_etc": "system_u:object_r:bootloader_etc_t:s0",
    "boot": "system_u:object_r:boot_t:s0",
    "dbus_lib": "system_u:object_r:system_dbusd_var_lib_t:s0",
    "admin_home": "system_u:object_r:admin_home_t:s0",
    "user_tmp": "unconfined_u:object_r:user_tmp_t:s0",
}

# A slice of the targeted policy's compiled file_contexts, in its order (general before
# specific), with the rules of fedora-selinux/selinux-policy's .fc files for these paths.
FILE_CONTEXTS = """\
/.*	system_u:object_r:default_t:s0
/boot/.*	system_u:object_r:boot_t:s0
/etc/.*	system_u:object_r:etc_t:s0
/root(/.*)?	system_u:object_r:admin_home_t:s0
/var/lib/dbus(/.*)?	system_u:object_r:system_dbusd_var_lib_t:s0
/usr/lib/systemd/system(/.*)?	system_u:object_r:systemd_unit_file_t:s0
/etc/NetworkManager(/.*)?	system_u:object_r:NetworkManager_etc_t:s0
/etc/firewalld(/.*)?	system_u:object_r:firewalld_etc_rw_t:s0
/etc/selinux(/.*)?	system_u:object_r:selinux_config_t:s0
/etc/sysctl\\.d(/.*)?	system_u:object_r:system_conf_t:s0
/etc/yum\\.repos\\.d(/.*)?	system_u:object_r:system_conf_t:s0
/etc/.*hostname.*	--	system_u:object_r:hostname_etc_t:s0
/etc/gshadow.*	--	system_u:object_r:shadow_t:s0
/etc/shadow.*	--	system_u:object_r:shadow_t:s0
/etc/group[-\\+]?	--	system_u:object_r:passwd_file_t:s0
/etc/passwd[-\\+]?	--	system_u:object_r:passwd_file_t:s0
/etc/ssh/ssh_host.*_key	--	system_u:object_r:sshd_key_t:s0
/etc/ssh/ssh_host.*_key\\.pub	--	system_u:object_r:sshd_key_t:s0
/etc/NetworkManager/system-connections(/.*)?	system_u:object_r:NetworkManager_etc_rw_t:s0
/etc/selinux/([^/]*/)?contexts(/.*)?	system_u:object_r:default_context_t:s0
/etc/selinux/([^/]*/)?contexts/files(/.*)?	system_u:object_r:file_context_t:s0
/etc/selinux/([^/]*/)?policy(/.*)?	system_u:object_r:semanage_store_t:s0
/usr/lib/systemd/system/firewalld.*	--	system_u:object_r:firewalld_unit_file_t:s0
/usr/lib/systemd/system/sshd.*	--	system_u:object_r:sshd_unit_file_t:s0
/\\.autorelabel	--	system_u:object_r:etc_runtime_t:s0
/etc/default/grub	--	system_u:object_r:bootloader_etc_t:s0
/etc/machine-id	--	system_u:object_r:machineid_t:s0
/etc	system_u:object_r:etc_t:s0
/boot	system_u:object_r:boot_t:s0
"""
# Path aliases (file_contexts.subs_dist): /etc/systemd/system is labelled as the unit folder.
SUBS_DIST = """\
/etc/systemd/system /usr/lib/systemd/system
/var/roothome /root
/run /var/run
"""

OS_RELEASE = """\
NAME="AlmaLinux"
VERSION="9.8 (Olive Jaguarundi)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.8"
PLATFORM_ID="platform:el9"
PRETTY_NAME="AlmaLinux 9.8 (Olive Jaguarundi)"
"""
SSHD_CONFIG = """\
# The sshd_config of openssh-server on EL 9 (comments shortened).
Include /etc/ssh/sshd_config.d/*.conf
AuthorizedKeysFile	.ssh/authorized_keys
Subsystem	sftp	/usr/libexec/openssh/sftp-server
"""
REDHAT_DROPIN = """\
Include /etc/crypto-policies/back-ends/opensshserver.config
SyslogFacility AUTHPRIV
ChallengeResponseAuthentication no
GSSAPIAuthentication yes
GSSAPICleanupCredentials no
UsePAM yes
X11Forwarding yes
PrintMotd no
"""
HARDENING_DROPIN = """\
# Managed by packer/scripts/20-ssh-hardening.sh: sorts first, so it wins over later drop-ins.
PermitRootLogin no
PasswordAuthentication no
PermitEmptyPasswords no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
X11Forwarding no
MaxAuthTries 3
LoginGraceTime 30
LogLevel VERBOSE
"""
DEFAULT_BACKEND = """\
Ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr,aes128-gcm@openssh.com,aes128-ctr
MACs hmac-sha2-256-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha1,umac-128@openssh.com,hmac-sha2-512
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512
RequiredRSASize 2048
"""
LEGACY_BACKEND = """\
Ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr,aes256-cbc,aes128-gcm@openssh.com,aes128-ctr,aes128-cbc,3des-cbc
MACs hmac-sha2-256-etm@openssh.com,hmac-sha1-etm@openssh.com,hmac-sha2-256,hmac-sha1
KexAlgorithms curve25519-sha256,diffie-hellman-group14-sha1,diffie-hellman-group1-sha1
RequiredRSASize 1024
"""
PUBLIC_ZONE = """\
<?xml version="1.0" encoding="utf-8"?>
<zone>
  <short>Public</short>
  <description>Managed by packer/scripts/30-system-hardening.sh: SSH and DHCPv6 replies only.</description>
  <service name="ssh"/>
  <service name="dhcpv6-client"/>
</zone>
"""
SHIPPED_PUBLIC_ZONE = PUBLIC_ZONE.replace(
    '<service name="dhcpv6-client"/>',
    '<service name="dhcpv6-client"/>\n  <service name="cockpit"/>',
)
PASSWD = """\
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
nobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin
systemd-network:x:192:192:systemd Network Management:/:/usr/sbin/nologin
sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/usr/sbin/nologin
chrony:x:997:995:chrony system user:/var/lib/chrony:/sbin/nologin
"""
GROUP = """\
root:x:0:
bin:x:1:
wheel:x:10:
nobody:x:65534:
sshd:x:74:
ssh_keys:x:996:
chrony:x:995:
"""
SHADOW = """\
root:!*:20400:0:99999:7:::
bin:*:20400:0:99999:7:::
daemon:*:20400:0:99999:7:::
nobody:*:20400:0:99999:7:::
systemd-network:!*:20400::::::
sshd:!*:20400::::::
chrony:!*:20400::::::
"""
SUDOERS = """\
## Sudoers allows particular users to run various commands as root (EL 9, comments shortened)
Defaults   !visiblepw
Defaults    always_set_home
Defaults    env_reset
Defaults    secure_path = /sbin:/bin:/usr/sbin:/usr/bin
root	ALL=(ALL) 	ALL
%wheel	ALL=(ALL)	ALL
#includedir /etc/sudoers.d
"""
CLOUD_CFG = """\
users:
 - default
disable_root: 1
ssh_pwauth:   0
mount_default_fields: [~, ~, 'auto', 'defaults,nofail,x-systemd.requires=cloud-init.service', '0', '2']
cloud_init_modules:
 - migrator
 - bootcmd
 - write-files
 - growpart
 - resizefs
system_info:
  distro: rhel
  network:
    renderers: ['sysconfig', 'eni', 'netplan', 'network-manager', 'networkd']
"""
BLS_ENTRY = """\
title AlmaLinux (5.14.0-611.el9.x86_64) 9.8 (Olive Jaguarundi)
version 5.14.0-611.el9.x86_64
linux /boot/vmlinuz-5.14.0-611.el9.x86_64
initrd /boot/initramfs-5.14.0-611.el9.x86_64.img $tuned_initrd
options root=UUID=3b1f0c4e-6a4b-4c7e-9a43-0c1d2e3f4a5b ro console=tty0 console=ttyS0,115200n8
grub_users $grub_users
grub_arg --unrestricted
grub_class almalinux
"""
DEFAULT_GRUB = """\
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR="$(sed 's, release .*$,,g' /etc/system-release)"
GRUB_DEFAULT=saved
GRUB_DISABLE_SUBMENU=true
GRUB_TERMINAL_OUTPUT="console"
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_DISABLE_RECOVERY="true"
GRUB_ENABLE_BLSCFG=true
"""
SYSTEM_UNITS = (
    "sshd.service",
    "firewalld.service",
    "chronyd.service",
    "NetworkManager.service",
    "nftables.service",
    "xe-linux-distribution.service",
    "cloud-init.service",
    "cloud-init-local.service",
    "cloud-config.service",
    "cloud-final.service",
)
ENABLED = {
    "multi-user.target.wants": (
        "sshd.service",
        "firewalld.service",
        "chronyd.service",
        "NetworkManager.service",
        "xe-linux-distribution.service",
        "cloud-init.target",
    ),
    "cloud-init.target.wants": (
        "cloud-init.service",
        "cloud-init-local.service",
        "cloud-config.service",
        "cloud-final.service",
    ),
}


class Tree:
    """Writes files under a root, each with its owner, mode and SELinux label."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @staticmethod
    def set_label(host: Path, label: str | None) -> None:
        if label is None:
            with contextlib.suppress(OSError):
                os.removexattr(host, "security.selinux", follow_symlinks=False)
            return
        os.setxattr(host, "security.selinux", label.encode() + b"\0", follow_symlinks=False)

    def dir(self, path: str, label: str | None = None, mode: int = 0o755) -> None:
        host = self.host(path)
        host.mkdir(parents=True, exist_ok=True)
        host.chmod(mode)
        if label:
            self.set_label(host, label)

    def file(
        self,
        path: str,
        text: str,
        label: str | None = None,
        mode: int = 0o644,
        gid: int = 0,
    ) -> None:
        host = self.host(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_text(text)
        host.chmod(mode)
        if os.geteuid() == 0:
            os.chown(host, 0, gid)
        if label:
            self.set_label(host, label)

    def link(self, path: str, target: str, label: str | None = None) -> None:
        host = self.host(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        if host.is_symlink() or host.exists():
            host.unlink()
        host.symlink_to(target)
        if label:
            self.set_label(host, label)

    def label_of(self, path: str, label: str | None) -> None:
        self.set_label(self.host(path), label)


def _template_settings() -> str:
    """The settings drop-in exactly as packer/scripts/50-cloud-init.sh writes it."""
    script = (Path(__file__).resolve().parents[2] / "packer/scripts/50-cloud-init.sh").read_text()
    start = "cat >/etc/cloud/cloud.cfg.d/95-template-settings.cfg <<'CONF'\n"
    return script.split(start, 1)[1].split("CONF\n", 1)[0]


def make_good_tree(root: Path) -> Path:
    """The root of a sealed AlmaLinux 9 template as the build leaves it; returns `root`."""
    t = Tree(root)
    L = LABELS
    # Identity
    t.file("/usr/lib/os-release", OS_RELEASE)
    t.link("/etc/os-release", "../usr/lib/os-release", ETC)
    t.file("/etc/almalinux-release", "AlmaLinux release 9.8 (Olive Jaguarundi)\n", ETC)
    # The kernel's module lists (guest-xen-drivers): RHEL 9 builds both Xen front ends as modules
    kernel = "/usr/lib/modules/5.14.0-611.el9_7.x86_64"
    t.file(
        f"{kernel}/modules.dep",
        "kernel/drivers/net/xen-netfront.ko.xz:\nkernel/drivers/block/xen-blkfront.ko.xz:\n",
    )
    t.file(f"{kernel}/modules.builtin", "kernel/drivers/xen/xenbus/xenbus.ko\n")
    t.link("/etc/redhat-release", "almalinux-release", ETC)
    t.link("/etc/system-release", "almalinux-release", ETC)
    t.dir("/etc", ETC)
    t.file("/etc/machine-id", "", L["machineid"], mode=0o444)
    t.file("/etc/hostname", "localhost\n", L["hostname"])
    t.dir("/var/lib/dbus", L["dbus_lib"])
    t.link("/var/lib/dbus/machine-id", "/etc/machine-id", L["dbus_lib"])
    # SELinux
    t.file(
        "/etc/selinux/config",
        "# This file controls the state of SELinux on the system.\n"
        "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
        L["selinux_config"],
    )
    t.file("/etc/selinux/targeted/policy/policy.33", "(binary policy)\n")
    files = "/etc/selinux/targeted/contexts/files"
    t.file(f"{files}/file_contexts", FILE_CONTEXTS)
    t.file(f"{files}/file_contexts.subs_dist", SUBS_DIST)
    t.file(
        f"{files}/file_contexts.homedirs",
        "/home/[^/]+	-d	unconfined_u:object_r:user_home_dir_t:s0\n",
    )
    # Boot: one BLS entry, grub defaults
    t.dir("/boot", L["boot"])
    t.dir("/boot/loader", L["boot"])
    t.dir("/boot/loader/entries", L["boot"])
    entry = "/boot/loader/entries/0123456789abcdef0123456789abcdef-5.14.0-611.el9.x86_64.conf"
    t.file(entry, BLS_ENTRY, L["boot"])
    t.file("/etc/default/grub", DEFAULT_GRUB, L["bootloader_etc"])
    t.file(
        "/etc/kernel/cmdline", "root=UUID=3b1f0c4e-6a4b-4c7e-9a43-0c1d2e3f4a5b ro console=tty0\n"
    )
    # crypto-policies: DEFAULT plus the template's SSH sub-policy, applied
    t.dir("/etc/crypto-policies", ETC)
    t.file("/etc/crypto-policies/config", "DEFAULT:TEMPLATE-SSH\n", ETC)
    t.dir("/etc/crypto-policies/state", ETC)
    t.file("/etc/crypto-policies/state/current", "DEFAULT:TEMPLATE-SSH\n", ETC)
    t.dir("/etc/crypto-policies/policies", ETC)
    t.dir("/etc/crypto-policies/policies/modules", ETC)
    t.file(
        "/etc/crypto-policies/policies/modules/TEMPLATE-SSH.pmod",
        (DATA / "TEMPLATE-SSH.pmod").read_text(),
        ETC,
    )
    t.dir("/etc/crypto-policies/back-ends", ETC)
    t.file(
        "/etc/crypto-policies/back-ends/opensshserver.config",
        BACKEND_TEMPLATE_SSH.read_text(),
        ETC,
    )
    # OpenSSL: EL 9's openssl.cnf hands the system section to the policy's back end
    t.file(
        "/etc/pki/tls/openssl.cnf",
        "openssl_conf = openssl_init\n.include /etc/pki/tls/openssl.d\n[openssl_init]\n"
        "providers = provider_sect\nssl_conf = ssl_module\nalg_section = evp_properties\n"
        "[ssl_module]\nsystem_default = crypto_policy\n[evp_properties]\n[crypto_policy]\n"
        ".include = /etc/crypto-policies/back-ends/opensslcnf.config\n"
        "[provider_sect]\ndefault = default_sect\n[default_sect]\nactivate = 1\n",
        ETC,
    )
    t.file("/etc/crypto-policies/back-ends/opensslcnf.config", OPENSSL_DEFAULT, ETC)
    t.file("/usr/share/crypto-policies/policies/DEFAULT.pol", "mac = AEAD HMAC-SHA2-256\n")
    t.file("/usr/share/crypto-policies/policies/LEGACY.pol", "mac = AEAD HMAC-SHA1\n")
    t.file("/usr/share/crypto-policies/DEFAULT/opensshserver.txt", DEFAULT_BACKEND)
    t.file("/usr/share/crypto-policies/LEGACY/opensshserver.txt", LEGACY_BACKEND)
    # sshd: Red Hat's drop-in includes the back-end; the template's drop-in sets no algorithm
    t.dir("/etc/ssh", ETC)
    t.file("/etc/ssh/sshd_config", SSHD_CONFIG, ETC, mode=0o600)
    t.dir("/etc/ssh/sshd_config.d", ETC, mode=0o700)
    t.file("/etc/ssh/sshd_config.d/50-redhat.conf", REDHAT_DROPIN, ETC, mode=0o600)
    t.file("/etc/ssh/sshd_config.d/01-template-hardening.conf", HARDENING_DROPIN, ETC, 0o600)
    t.file("/etc/ssh/moduli", "20230101000000 2 6 100 3071 2 " + "C" * 768 + "\n", ETC)
    t.file("/etc/ssh/ssh_config", "Include /etc/ssh/ssh_config.d/*.conf\n", ETC)
    t.file("/etc/sysconfig/sshd", "# Configuration file for the sshd service.\n", ETC)
    # System hardening
    t.dir("/etc/sysctl.d", L["system_conf"])
    t.file("/etc/sysctl.d/90-template-hardening.conf", "kernel.sysrq = 0\n", L["system_conf"])
    t.dir("/etc/yum.repos.d", L["system_conf"])
    t.file("/etc/yum.repos.d/almalinux-baseos.repo", "[baseos]\nname=BaseOS\n", L["system_conf"])
    t.file("/etc/yum.repos.d/epel.repo", "[epel]\nname=EPEL 9\n", L["system_conf"])
    # Accounts
    t.file("/etc/passwd", PASSWD, L["passwd"])
    t.file("/etc/group", GROUP, L["passwd"])
    t.file("/etc/shadow", SHADOW, L["shadow"], mode=0o000)
    t.file("/etc/gshadow", "root:::\nwheel:::\nssh_keys:!::\n", L["shadow"], mode=0o000)
    t.file("/etc/sudoers", SUDOERS, ETC, mode=0o440)
    t.dir("/etc/sudoers.d", ETC, mode=0o750)
    t.dir("/root", L["admin_home"], mode=0o550)
    t.file("/root/.bashrc", "# .bashrc\n", L["admin_home"])
    t.dir("/home")
    # firewalld: enabled, default zone public with SSH only
    t.dir("/etc/firewalld", L["firewalld_etc"], mode=0o750)
    t.file(
        "/etc/firewalld/firewalld.conf",
        "# firewalld config file\nDefaultZone=public\nFirewallBackend=nftables\n",
        L["firewalld_etc"],
    )
    t.dir("/etc/firewalld/zones", L["firewalld_etc"], mode=0o750)
    t.file("/etc/firewalld/zones/public.xml", PUBLIC_ZONE, L["firewalld_etc"])
    t.file("/usr/lib/firewalld/zones/public.xml", SHIPPED_PUBLIC_ZONE)
    # NetworkManager: no profile of the build VM left
    t.dir("/etc/NetworkManager", L["nm_etc"])
    t.file("/etc/NetworkManager/NetworkManager.conf", "[main]\n", L["nm_etc"])
    t.dir("/etc/NetworkManager/system-connections", L["nm_etc_rw"], mode=0o700)
    t.dir("/var/lib/NetworkManager")
    # cloud-init
    t.file("/usr/bin/cloud-init", "#!/usr/bin/python3\n", mode=0o755)
    t.dir("/etc/cloud", ETC)
    t.file("/etc/cloud/cloud.cfg", CLOUD_CFG, ETC)
    t.dir("/etc/cloud/cloud.cfg.d", ETC)
    t.file(
        "/etc/cloud/cloud.cfg.d/95-template-datasources.cfg",
        "# Managed by packer/scripts/50-cloud-init.sh\n"
        "datasource_list: [ NoCloud, ConfigDrive, CloudStack ]\n"
        "datasource:\n  CloudStack:\n    max_wait: 30\n    timeout: 10\n",
        ETC,
    )
    t.file(
        "/etc/cloud/ds-identify.cfg", "policy: search,found=all,maybe=all,notfound=enabled\n", ETC
    )
    t.file("/etc/cloud/cloud.cfg.d/95-template-settings.cfg", _template_settings(), ETC)
    t.file("/etc/cloud/cloud.cfg.d/05_logging.cfg", "_log: []\n", ETC)
    t.dir("/var/lib/cloud")
    # systemd: units and what the build enabled
    for unit in SYSTEM_UNITS:
        t.file(f"/usr/lib/systemd/system/{unit}", "[Unit]\n")
    t.file("/usr/lib/systemd/system/cloud-init.target", "[Unit]\n")
    t.dir("/etc/systemd/system", UNIT)
    for wants, units in ENABLED.items():
        t.dir(f"/etc/systemd/system/{wants}", UNIT)
        for unit in units:
            t.link(f"/etc/systemd/system/{wants}/{unit}", f"/usr/lib/systemd/system/{unit}", UNIT)
    # PAM as authselect's sssd profile renders it with without-nullok (30-system-hardening.sh)
    t.dir("/etc/pam.d", ETC)
    for service in sorted(PAM_DATA.iterdir()):
        t.file(f"/etc/pam.d/{service.name}", service.read_text().replace(" nullok", ""), ETC)
    # ca-certificates as update-ca-trust leaves it
    from tests.support import castore

    castore.el_store(root)
    # Logs, caches, state: present and empty
    t.file("/var/log/messages", "")
    t.file("/var/log/dnf.log", "")
    t.dir("/var/log/journal")
    t.dir("/var/cache/dnf")
    t.dir("/var/lib/dhclient")
    # rpm's database: shadow-utils and its files as installed (system-package-integrity)
    t.file("/usr/bin/passwd", "passwd", mode=0o755)
    t.file("/usr/bin/chage", "chage", mode=0o755)
    t.file("/etc/login.defs", "defs", ETC)
    _rpmdb(root, [shadow_utils()])
    return root


def _rpmdb(root: Path, headers: list[bytes]) -> None:
    """/var/lib/rpm/rpmdb.sqlite as rpm 4.16+ writes it (the table the checks read)."""
    import sqlite3

    folder = root / "var/lib/rpm"
    folder.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(folder / "rpmdb.sqlite")
    con.execute(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
    )
    con.executemany("INSERT INTO Packages (blob) VALUES (?)", [(h,) for h in headers])
    con.commit()
    con.close()


def remove_label(path: str) -> Callable[[Tree], None]:
    return lambda t: t.label_of(path, None)


def _set_selinux_mode(t: Tree) -> None:
    t.file(
        "/etc/selinux/config",
        "SELINUX=permissive\nSELINUXTYPE=targeted\n",
        LABELS["selinux_config"],
    )


def _selinux_off_on_cmdline(t: Tree) -> None:
    entries = t.host("/boot/loader/entries")
    (entry,) = entries.iterdir()
    entry.write_text(entry.read_text().replace(" ro console", " ro selinux=0 console"))


def _dropin_from_tmp(t: Tree) -> None:
    t.label_of("/etc/ssh/sshd_config.d/01-template-hardening.conf", LABELS["user_tmp"])


def _autorelabel(t: Tree) -> None:
    t.file("/.autorelabel", "")


def _legacy_policy(t: Tree) -> None:
    for path in ("/etc/crypto-policies/config", "/etc/crypto-policies/state/current"):
        t.file(path, "LEGACY\n", ETC)
    t.link(
        "/etc/crypto-policies/back-ends/opensshserver.config",
        "/usr/share/crypto-policies/LEGACY/opensshserver.txt",
        ETC,
    )


def _sub_policy_not_applied(t: Tree) -> None:
    # The config names the sub-policy, but update-crypto-policies never ran: DEFAULT's back-end.
    t.file("/etc/crypto-policies/state/current", "DEFAULT\n", ETC)
    t.link(
        "/etc/crypto-policies/back-ends/opensshserver.config",
        "/usr/share/crypto-policies/DEFAULT/opensshserver.txt",
        ETC,
    )


def _dropin_fights_policy(t: Tree) -> None:
    t.file(
        "/etc/ssh/sshd_config.d/01-template-hardening.conf",
        HARDENING_DROPIN + "Ciphers aes256-gcm@openssh.com,aes128-gcm@openssh.com\n"
        "MACs hmac-sha2-512-etm@openssh.com\n",
        ETC,
        mode=0o600,
    )


def _crypto_opt_out(t: Tree) -> None:
    t.file("/etc/sysconfig/sshd", "CRYPTO_POLICY=\n", ETC)


def _firewalld_disabled(t: Tree) -> None:
    t.host("/etc/systemd/system/multi-user.target.wants/firewalld.service").unlink()


def _zone_opens_port(t: Tree) -> None:
    t.file(
        "/etc/firewalld/zones/public.xml",
        PUBLIC_ZONE.replace("</zone>", '  <port protocol="tcp" port="8080"/>\n</zone>'),
        LABELS["firewalld_etc"],
    )


def _shipped_zone(t: Tree) -> None:
    # The template's zone file is gone: firewalld falls back to the shipped one (cockpit).
    t.host("/etc/firewalld/zones/public.xml").unlink()


def _nftables_too(t: Tree) -> None:
    t.link(
        "/etc/systemd/system/multi-user.target.wants/nftables.service",
        "/usr/lib/systemd/system/nftables.service",
        UNIT,
    )


def _nm_profile(t: Tree) -> None:
    t.file(
        "/etc/NetworkManager/system-connections/eth0.nmconnection",
        "[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\n[ipv4]\nmethod=auto\n",
        LABELS["nm_etc_rw"],
        mode=0o600,
    )


def _nm_secret(t: Tree) -> None:
    t.file("/var/lib/NetworkManager/secret_key", "0123456789abcdef" * 4, mode=0o600)


def _ifcfg(t: Tree) -> None:
    t.file(
        "/etc/sysconfig/network-scripts/ifcfg-eth0",
        'DEVICE=eth0\nBOOTPROTO=dhcp\nHWADDR="ca:fe:00:00:00:01"\n',
        ETC,
    )


def _ca_anchor(t: Tree) -> None:
    from tests.support import castore

    pem = castore.certificate("Corp_Root_CA_EL")
    t.file("/etc/pki/ca-trust/source/anchors/corp-root.pem", pem.decode())
    bundle = t.host("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem")
    bundle.write_bytes(bundle.read_bytes() + pem)


def _pam_nullok(t: Tree) -> None:
    path = t.host("/etc/pam.d/system-auth")
    path.write_text(path.read_text().replace("pam_unix.so\n", "pam_unix.so nullok\n", 1))


@dataclass(frozen=True)
class ElDefect:
    name: str
    description: str
    apply: Callable[[Tree], None]
    fails: frozenset[str]


def _d(name: str, description: str, apply: Callable[[Tree], None], *fails: str) -> ElDefect:
    return ElDefect(name, description, apply, frozenset(fails))


# crypto-policies' OpenSSL back end as `update-crypto-policies --set DEFAULT` (EL 9) and
# `--set LEGACY` write it (cipher lists shortened; the settings the check reads are whole)
OPENSSL_DEFAULT = (
    "CipherString = @SECLEVEL=2:kEECDH:kRSA:kEDH:kPSK:kDHEPSK:kECDHEPSK:kRSAPSK:-aDSS:-3DES:"
    "!DES:!RC4:!RC2:!IDEA:-SEED:!eNULL:!aNULL:!MD5:-SHA384:-CAMELLIA:-ARIA:-AESCCM8\n"
    "Ciphersuites = TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256\n"
    "TLS.MinProtocol = TLSv1.2\nTLS.MaxProtocol = TLSv1.3\n"
    "DTLS.MinProtocol = DTLSv1.2\nDTLS.MaxProtocol = DTLSv1.2\n"
)
OPENSSL_LEGACY = OPENSSL_DEFAULT.replace("@SECLEVEL=2", "@SECLEVEL=1").replace(
    "TLS.MinProtocol = TLSv1.2", "TLS.MinProtocol = TLSv1"
)


def _crypto_policy_legacy(t: Tree) -> None:
    t.file("/etc/crypto-policies/back-ends/opensslcnf.config", OPENSSL_LEGACY, ETC)


def _package_file_changed(t: Tree) -> None:
    t.file("/usr/bin/chage", "#!/bin/sh\nexit 0\n", mode=0o755)


EL_DEFECTS: tuple[ElDefect, ...] = (
    _d("package-file-changed", "shadow-utils' /usr/bin/chage replaced by a script",
       _package_file_changed, "system-package-integrity"),
    _d("openssl-backend-legacy", "crypto-policies' OpenSSL back end at LEGACY: TLS 1.0, level 1",
       _crypto_policy_legacy, "trust-ca-bundle"),
    _d("selinux-permissive", "SELINUX=permissive in /etc/selinux/config", _set_selinux_mode,
       "el-selinux-enforcing"),
    _d("selinux-off-on-cmdline", "selinux=0 in the boot entry's kernel options",
       _selinux_off_on_cmdline, "el-selinux-enforcing"),
    _d("dropin-unlabeled", "the hardening drop-in has no SELinux label",
       remove_label("/etc/ssh/sshd_config.d/01-template-hardening.conf"), "el-selinux-labels"),
    _d("dropin-moved-from-tmp", "the hardening drop-in keeps /tmp's user_tmp_t (mv, no restorecon)",
       _dropin_from_tmp, "el-selinux-labels"),
    _d("firewalld-zone-unlabeled", "the template's firewalld zone has no SELinux label",
       remove_label("/etc/firewalld/zones/public.xml"), "el-selinux-labels"),
    _d("autorelabel-pending", "/.autorelabel left: every clone relabels and reboots",
       _autorelabel, "el-selinux-labels"),
    _d("crypto-policy-legacy", "update-crypto-policies --set LEGACY", _legacy_policy,
       "el-crypto-policy"),
    _d("sub-policy-not-applied", "config names DEFAULT:TEMPLATE-SSH, back-ends still DEFAULT",
       _sub_policy_not_applied, "el-crypto-policy"),
    _d("dropin-fights-policy", "Ciphers and MACs in an sshd drop-in override the policy",
       _dropin_fights_policy, "el-ssh-crypto-from-policy"),
    _d("crypto-policy-opt-out", "CRYPTO_POLICY= in /etc/sysconfig/sshd", _crypto_opt_out,
       "el-ssh-crypto-from-policy"),
    _d("firewalld-disabled", "firewalld.service not enabled", _firewalld_disabled,
       "el-firewalld"),
    _d("firewalld-port-open", "the public zone opens tcp/8080", _zone_opens_port,
       "el-firewalld"),
    _d("firewalld-shipped-zone", "the template's zone removed: the shipped one allows cockpit",
       _shipped_zone, "el-firewalld"),
    _d("nftables-beside-firewalld", "nftables.service enabled too", _nftables_too,
       "el-firewalld"),
    _d("nm-profile-left", "the build VM's eth0.nmconnection left", _nm_profile,
       "el-network-profiles"),
    _d("nm-secret-key-left", "NetworkManager's secret_key of the build VM left", _nm_secret,
       "el-network-profiles", "hygiene-machine-state"),
    _d("ifcfg-left", "an ifcfg-eth0 with the build VM's MAC left", _ifcfg,
       "el-network-profiles"),
    _d("ca-anchor-extracted", "a CA in /etc/pki/ca-trust/source/anchors, extracted into the bundle",
       _ca_anchor, "trust-ca-bundle"),
    _d("pam-nullok-system-auth", "pam_unix nullok back in system-auth", _pam_nullok,
       "trust-pam"),
)  # fmt: skip


def broken_tree(good: Path, defect: ElDefect, dest: Path) -> Path:
    """A copy of the good tree (labels included) with one defect applied."""
    shutil.copytree(good, dest, symlinks=True)
    defect.apply(Tree(dest))
    return dest


def offline_checks() -> dict[str, Callable[..., None]]:
    """Every check of validations/ that reads only the image: check id -> function."""
    import importlib
    import inspect
    import pkgutil

    import validations

    found: dict[str, Callable[..., None]] = {}
    for info in pkgutil.iter_modules(validations.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"validations.{info.name}")
        for name, fn in vars(module).items():
            if not name.startswith("test_") or not callable(fn):
                continue
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "check"]
            if marks and list(inspect.signature(fn).parameters) == ["image"]:
                found[marks[0].args[0]] = fn
    return found


def failing(image: object, checks: dict[str, Callable[..., None]]) -> dict[str, str]:
    """check id -> first line of its failure, for the checks that fail on `image`."""
    out = {}
    for cid, fn in sorted(checks.items()):
        try:
            fn(image)
        except AssertionError as exc:
            out[cid] = (str(exc).strip().splitlines() or ["(no message)"])[0]
    return out


def table(rows: list[tuple[str, list[str], list[str]]]) -> str:
    """defect | checks that failed | expected | result, aligned."""
    cells = [("defect", "checks that failed", "expected", "result")] + [
        (d, ", ".join(got) or "-", ", ".join(want), "ok" if got == want else "MISMATCH")
        for d, got, want in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(4)).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_table(work: Path) -> tuple[str, bool]:
    """Build the good tree and every broken one under `work`; (table, all as expected)."""
    from validations.offline_tree import TreeImage

    checks = offline_checks()
    good = make_good_tree(work / "good")
    rows: list[tuple[str, list[str], list[str]]] = [
        ("(good tree)", sorted(failing(TreeImage(good), checks)), [])
    ]
    for defect in EL_DEFECTS:
        tree = broken_tree(good, defect, work / defect.name)
        rows.append((defect.name, sorted(failing(TreeImage(tree), checks)), sorted(defect.fails)))
    return table(rows), all(got == want for _, got, want in rows)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        text, ok = run_table(Path(tmp))
    print(text)
    raise SystemExit(0 if ok else 1)
