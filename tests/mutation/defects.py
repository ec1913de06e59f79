"""The mutation table: single defects applied offline to a copy of the good image, and the
check ids each must fail (and only those).

A defect that leaves the clone unreachable (cloud-init gone, NoCloud not searched) cannot
leave the booted checks passing: for those `boot_fails` is set and every booted check is
expected to fail too, while the offline check names the cause.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from diskedit import DiskEditor

from validations.expected import EL_SECURITY, expected_checks

# Checks that read the artifact offline (the `image` fixture only): they run even when the
# clone cannot be reached.
OFFLINE_CHECKS = frozenset(
    {
        "cloud-init-installed",
        "cloud-init-datasources",
        "hygiene-host-keys",
        "hygiene-machine-id",
        "hygiene-cloud-init-state",
        "hygiene-shell-history",
        "hygiene-build-user",
        "hygiene-sudoers",
        "hygiene-installer-files",
        "hygiene-network-state",
        "hygiene-caches-logs",
        "hygiene-credentials",
        "hygiene-account-backups",
        "system-world-writable",
        "system-console-autologin",
        "cloud-init-security",
        "accounts-file-owners",
        "hygiene-machine-state",
        "trust-ca-bundle",
        "trust-pam",
        "guest-xen-drivers",
    }
)
# Offline too, but they also read the distribution's archive through the host's cache (network
# on a cold cache), so the skeleton disk of test_defects_offline.py does not run them: their
# defects are proven on the cached good image (test_package_defects.py, slow).
# system-package-integrity needs the real package database the same way.
ARCHIVE_CHECKS = frozenset({"system-security-updates", "system-setuid", "system-package-integrity"})
# Checks whose outcome on the good image depends on the day it runs: a security update
# published after the image was built makes it fail, rightly. Tolerated on images that do not
# carry that defect when results.json lists the pending updates.
TIME_DEPENDENT = frozenset({"system-security-updates"})
# Checks no offline defect can fail on the local platform, and why that is acceptable.
NOT_MUTABLE_LOCALLY = {
    "guest-agent-reporting": (
        "needs Xen guest metrics; skipped locally with platform-has-no-xen, and proven against "
        "the XAPI twin's metrics in tests/ (empty PV_drivers_version, wrong distro)"
    ),
    **{
        cid: "EL only: no EL image is built here; proven on EL-shaped trees, one defect each "
        "(tests/unit/test_el_trees.py)"
        for cid in EL_SECURITY
    },
    "el-security-updates": (
        "EL only, and booted (dnf in the clone): no EL clone boots here; the parsing of dnf's "
        "answer is unit-tested (tests/unit/test_package_checks.py)"
    ),
    "trust-dnf": (
        "EL only: no EL image is built here; its reader and judge are proven on dnf, rpm and "
        "gpg answers written in tests/unit/test_trust_units.py"
    ),
}
# Skips a good local run may report, by check id.
ALLOWED_SKIPS = {
    "guest-agent-single": "build-has-no-guest-tools",
    "guest-agent-reporting": "platform-has-no-xen",
}


@dataclass(frozen=True)
class Defect:
    name: str
    concern: str  # ssh, system, guest-tools, cloud-init, hygiene, identity
    description: str
    apply: Callable[[DiskEditor], None]
    fails: tuple[str, ...]
    probe: Callable[[DiskEditor], bool]  # True once the defect is in the image
    ci: bool = False  # one per concern runs in the test command
    boot_fails: bool = False  # the clone cannot be reached: every booted check fails
    cause: str = ""  # for boot_fails: words the boot failure must name (the diagnosis)

    def expected_failures(self, family: str = "debian") -> frozenset[str]:
        """The check ids that must fail: every booted one too when the clone is unreachable."""
        if not self.boot_fails:
            return frozenset(self.fails)
        offline = OFFLINE_CHECKS | ARCHIVE_CHECKS
        booted = set(expected_checks(family)) - offline - set(NOT_MUTABLE_LOCALLY)
        return frozenset(self.fails) | booted


@dataclass(frozen=True)
class GoodVariant:
    """A sound, well-hardened change to the good image: every check must still pass on it.

    Each stands for a policy decision (docs/checks/policy.md): a check that fails one is a
    false alarm, as costly to operators as a missed defect."""

    name: str
    description: str
    policy: str  # the decision the variant stands for, in one line
    apply: Callable[[DiskEditor], None]
    probe: Callable[[DiskEditor], bool]
    ci: bool = False  # the test command boots it (the rest run with the full table)


def _dropin(name: str, text: str) -> Callable[[DiskEditor], None]:
    def apply(d: DiskEditor) -> None:
        d.write(f"/etc/ssh/sshd_config.d/{name}", text, mode=0o600)

    return apply


def _exists(path: str) -> Callable[[DiskEditor], bool]:
    return lambda d: d.exists(path)


def _contains(path: str, needle: str) -> Callable[[DiskEditor], bool]:
    return lambda d: d.exists(path) and needle in d.read_text(path)


def _mode(path: str, mode: int) -> Callable[[DiskEditor], bool]:
    return lambda d: d.exists(path) and d.reader().lstat(path).perms == mode


def _match_block(d: DiskEditor) -> None:
    d.append(
        "/etc/ssh/sshd_config",
        "\n# added late by a 'temporary' fix\nMatch Address 10.0.0.0/8\n    PasswordAuthentication yes\n",
    )


def _weak_moduli(d: DiskEditor) -> None:
    d.append(
        "/etc/ssh/moduli",
        "20200101000000 2 6 100 1023 2 " + "F" * 256 + "\n",
    )


def _telnet(d: DiskEditor) -> None:
    d.write(
        "/etc/systemd/system/telnet@.service",
        "[Unit]\nDescription=telnet\n[Service]\nExecStart=-/bin/cat\nStandardInput=socket\n",
    )
    d.enable_unit(
        "telnet.socket",
        "[Unit]\nDescription=telnet\n[Socket]\nListenStream=23\nAccept=yes\n"
        "[Install]\nWantedBy=sockets.target\n",
        target="sockets.target",
    )


def _unlock_root(d: DiskEditor) -> None:
    text = d.read_text("/etc/shadow")
    rows = []
    for line in text.splitlines():
        fields = line.split(":")
        if fields[0] == "root":
            fields[1] = "$6$mutation$" + "x" * 86  # a SHA-512 crypt-shaped hash
        rows.append(":".join(fields))
    st = d.reader().stat("/etc/shadow")
    d.write("/etc/shadow", "\n".join(rows) + "\n", st.perms, st.uid, st.gid)


_AGENT_UNIT = "[Unit]\nDescription={0}\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"


def _two_agents(d: DiskEditor) -> None:
    d.enable_unit("xe-daemon.service", _AGENT_UNIT.format("xe-daemon"))
    d.enable_unit("xen-guest-agent.service", _AGENT_UNIT.format("xen-guest-agent"))


def _host_keys(d: DiskEditor) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "ssh_host_ed25519_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "baked", "-f", str(key)],
            check=True,
        )
        d.write("/etc/ssh/ssh_host_ed25519_key", key.read_bytes(), mode=0o600)
        d.write("/etc/ssh/ssh_host_ed25519_key.pub", key.with_suffix(".pub").read_bytes())


def _cloud_instance(d: DiskEditor) -> None:
    old = "i-build-leftover"
    d.write(f"/var/lib/cloud/instances/{old}/datasource", "DataSourceNoCloud: seed=/dev/vdb\n")
    d.write(f"/var/lib/cloud/instances/{old}/user-data.txt", "#cloud-config\n{}\n", mode=0o600)
    d.write("/var/lib/cloud/data/instance-id", old + "\n")
    d.symlink("/var/lib/cloud/instance", f"/var/lib/cloud/instances/{old}")


def _build_user(d: DiskEditor) -> None:
    d.append("/etc/passwd", "packer:x:1000:1000:packer:/home/packer:/bin/bash\n")
    d.append("/etc/group", "packer:x:1000:\n")
    d.append("/etc/shadow", "packer:!:19000:0:99999:7:::\n")
    d.mkdir("/home/packer", mode=0o700, uid=1000, gid=1000)
    d.write("/home/packer/.profile", "# build user\n", uid=1000, gid=1000)


def _installer_file(d: DiskEditor) -> None:
    d.write(
        "/var/log/installer/cdebconf/questions.dat",
        "Name: passwd/user-password-crypted\nTemplate: passwd/user-password-crypted\n"
        "Value: $6$installer$" + "y" * 86 + "\nOwners: d-i\n",
        mode=0o600,
    )


def _os_release(d: DiskEditor) -> None:
    d.rm("/etc/os-release")
    d.write(
        "/etc/os-release",
        'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nNAME="Debian GNU/Linux"\n'
        'VERSION_ID="11"\nVERSION="11 (bullseye)"\nID=debian\n',
    )


def _grow(d: DiskEditor) -> None:
    d.grow(512 * 1024 * 1024)


FOREIGN_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMutationKeyNobodyOnTheTeamOwnsXXXXXXXXXXXXXXX "
    "someone@elsewhere\n"
)
BUILD_HASH = "$6$mutation$" + "z" * 86  # a SHA-512 crypt-shaped hash of the build password


def ssh_key_pair(kind: str, pem: bool = False, comment: str = "mutation") -> tuple[bytes, str]:
    """A new OpenSSH key (private bytes, public line), made by ssh-keygen for the row."""
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(key),
             *(["-m", "PEM"] if pem else [])],
            check=True,
        )  # fmt: skip
        return key.read_bytes(), key.with_suffix(".pub").read_text().strip()


def _baked_host_keys(path: str, kind: str) -> Callable[[DiskEditor], None]:
    """cloud-init's ssh_keys: the ssh module writes these host keys on every clone."""

    def apply(d: DiskEditor) -> None:
        private, public = ssh_key_pair(kind, pem=kind == "rsa", comment="")
        lines = private.decode().strip().splitlines()
        block = "\n".join("      " + line for line in lines)
        text = f"\nssh_keys:\n  {kind}_private: |\n{block}\n  {kind}_public: {public}\n"
        if d.exists(path):
            d.append(path, text)
        else:
            d.write(path, text, mode=0o600)

    return apply


def _root_authorized_keys(d: DiskEditor) -> None:
    d.mkdir("/root/.ssh", mode=0o700)
    d.write("/root/.ssh/authorized_keys", FOREIGN_KEY, mode=0o600)


def _shadow_backup(d: DiskEditor) -> None:
    """/etc/shadow- as userdel leaves it when the seal deletes the build user before locking."""
    st = d.reader().stat("/etc/shadow")
    text = d.read_text("/etc/shadow") + f"packer:{BUILD_HASH}:19000:0:99999:7:::\n"
    d.write("/etc/shadow-", text, st.perms, st.uid, st.gid)


def _pending_security_update(d: DiskEditor) -> None:
    """dpkg believes libssl3 is a little older than installed: the security suite's openssl
    (every bookworm DSA for openssl goes there) is then a pending security update."""
    status = d.read_text("/var/lib/dpkg/status")
    patched, n = re.subn(
        r"(^Package: libssl3\n(?:[^\n]+\n)*?Version: )(\S+)$",
        r"\g<1>\g<2>~mutation",
        status,
        count=1,
        flags=re.M,
    )
    assert n == 1, "libssl3 is not in the image's dpkg status"
    d.write("/var/lib/dpkg/status", patched)


def _extra_listener(d: DiskEditor) -> None:
    d.write(
        "/etc/systemd/system/debug-echo@.service",
        "[Unit]\nDescription=debug echo\n[Service]\nExecStart=-/bin/cat\nStandardInput=socket\n",
    )
    d.enable_unit(
        "debug-echo.socket",
        "[Unit]\nDescription=a debug port left open\n[Socket]\nListenStream=127.0.0.1:8080\n"
        "Accept=yes\n[Install]\nWantedBy=sockets.target\n",
        target="sockets.target",
    )


def _mask_time_sync(d: DiskEditor) -> None:
    for unit in ("systemd-timesyncd.service", "chrony.service", "chronyd.service"):
        d.symlink(f"/etc/systemd/system/{unit}", "/dev/null")


def _tty_autologin(d: DiskEditor) -> None:
    d.write(
        "/etc/systemd/system/getty@tty1.service.d/autologin.conf",
        "[Service]\nExecStart=\n"
        "ExecStart=-/sbin/agetty -o '-p -f -- \\\\u' --noclear --autologin root %I $TERM\n",
    )


def _trusted_ca(d: DiskEditor) -> None:
    d.write("/etc/ssh/user-ca.pub", FOREIGN_KEY)
    _dropin("00-ca.conf", "TrustedUserCAKeys /etc/ssh/user-ca.pub\n")(d)


def _weak_ciphers_only(d: DiskEditor) -> None:
    d.write("/etc/ssh/sshd_config.d/00-legacy-clients.conf", "Ciphers aes128-cbc,3des-cbc\n", 0o600)


DEFECTS: tuple[Defect, ...] = (
    Defect(
        "ssh-password-late-dropin",
        "ssh",
        "a late drop-in that sorts first re-enables passwords",
        _dropin("00-late-override.conf", "PasswordAuthentication yes\n"),
        ("ssh-password-auth",),
        _exists("/etc/ssh/sshd_config.d/00-late-override.conf"),
    ),
    Defect(
        "ssh-password-match-block",
        "ssh",
        "PasswordAuthentication yes inside a Match block",
        _match_block,
        ("ssh-password-auth",),
        _contains("/etc/ssh/sshd_config", "Match Address 10.0.0.0/8"),
        ci=True,
    ),
    Defect(
        "ssh-root-login",
        "ssh",
        "PermitRootLogin yes",
        _dropin("00-root.conf", "PermitRootLogin yes\n"),
        ("ssh-root-login",),
        _exists("/etc/ssh/sshd_config.d/00-root.conf"),
    ),
    Defect(
        "ssh-weak-cipher",
        "ssh",
        "aes128-cbc among the ciphers",
        _dropin("00-ciphers.conf", "Ciphers aes128-cbc,aes256-ctr,aes128-ctr\n"),
        ("ssh-crypto",),
        _exists("/etc/ssh/sshd_config.d/00-ciphers.conf"),
    ),
    Defect(
        "ssh-user-environment",
        "ssh",
        "PermitUserEnvironment yes",
        _dropin("00-userenv.conf", "PermitUserEnvironment yes\n"),
        ("ssh-auth-methods",),
        _exists("/etc/ssh/sshd_config.d/00-userenv.conf"),
    ),
    Defect(
        "ssh-x11-forwarding",
        "ssh",
        "X11Forwarding yes",
        _dropin("00-x11.conf", "X11Forwarding yes\n"),
        ("ssh-session-limits",),
        _exists("/etc/ssh/sshd_config.d/00-x11.conf"),
    ),
    Defect(
        "ssh-group-writable",
        "ssh",
        "group-writable /etc/ssh (world-writable is system-world-writable's)",
        lambda d: d.chmod("/etc/ssh", 0o775),
        ("ssh-files",),
        _mode("/etc/ssh", 0o775),
    ),
    Defect(
        "ssh-weak-moduli",
        "ssh",
        "a 1024-bit group in /etc/ssh/moduli",
        _weak_moduli,
        ("ssh-moduli",),
        _contains("/etc/ssh/moduli", " 1023 2 "),
    ),
    Defect(
        "sysctl-ip-forward",
        "system",
        "net.ipv4.ip_forward=1 in sysctl.d",
        lambda d: d.write("/etc/sysctl.d/99-forward.conf", "net.ipv4.ip_forward = 1\n"),
        ("system-sysctl",),
        _exists("/etc/sysctl.d/99-forward.conf"),
        ci=True,
    ),
    Defect(
        "shadow-world-readable",
        "system",
        "/etc/shadow mode 0644",
        lambda d: d.chmod("/etc/shadow", 0o644),
        ("system-file-modes",),
        _mode("/etc/shadow", 0o644),
    ),
    Defect(
        "telnet-socket",
        "system",
        "a telnet socket listening on port 23",
        _telnet,
        ("system-legacy-services",),
        _exists("/etc/systemd/system/sockets.target.wants/telnet.socket"),
    ),
    Defect(
        "unlocked-shadow",
        "system",
        "root has a password hash in /etc/shadow",
        _unlock_root,
        ("system-shadow-locked",),
        _contains("/etc/shadow", "root:$6$mutation$"),
    ),
    Defect(
        "ifupdown-stanza",
        "system",
        "an installer's ifupdown stanza left beside netplan (a second network stack)",
        lambda d: d.write(
            "/etc/network/interfaces",
            "auto lo\niface lo inet loopback\n\nallow-hotplug enp0s2\niface enp0s2 inet dhcp\n",
        ),
        ("network-renderer",),
        _contains("/etc/network/interfaces", "iface enp0s2 inet dhcp"),
    ),
    Defect(
        "second-guest-agent",
        "guest-tools",
        "two guest agents installed and enabled",
        _two_agents,
        ("guest-agent-single",),
        _exists("/etc/systemd/system/multi-user.target.wants/xen-guest-agent.service"),
        ci=True,
    ),
    Defect(
        "cloud-init-missing",
        "cloud-init",
        "/usr/bin/cloud-init removed",
        lambda d: d.rm("/usr/bin/cloud-init"),
        ("cloud-init-installed",),
        lambda d: not d.exists("/usr/bin/cloud-init"),
        boot_fails=True,
        cause="seed",
    ),
    Defect(
        "datasource-without-nocloud",
        "cloud-init",
        "datasource_list without NoCloud",
        lambda d: d.write(
            "/etc/cloud/cloud.cfg.d/99-zz-datasources.cfg",
            "datasource_list: [ ConfigDrive, None ]\n",
        ),
        ("cloud-init-datasources",),
        _exists("/etc/cloud/cloud.cfg.d/99-zz-datasources.cfg"),
        boot_fails=True,
        cause="seed",
    ),
    Defect(
        "ds-identify-disables-cloudstack",
        "cloud-init",
        "ds-identify's default policy back: no local datasource disables cloud-init, so an "
        "instance behind CloudStack's virtual router on XCP-ng never reads its data",
        lambda d: d.write(
            "/etc/cloud/ds-identify.cfg",
            "policy: search,found=all,maybe=none,notfound=disabled\n",
        ),
        ("cloud-init-datasources",),
        _contains("/etc/cloud/ds-identify.cfg", "notfound=disabled"),
    ),
    Defect(
        "cloud-init-broken-bootcmd",
        "cloud-init",
        "a baked bootcmd that fails on every boot",
        lambda d: d.write(
            "/etc/cloud/cloud.cfg.d/99-zz-bootcmd.cfg",
            "bootcmd:\n  - [ sh, -c, 'echo broken; exit 3' ]\n",
        ),
        ("cloud-init-clean-boot",),
        _exists("/etc/cloud/cloud.cfg.d/99-zz-bootcmd.cfg"),
        ci=True,
    ),
    Defect(
        "preserve-hostname",
        "cloud-init",
        "preserve_hostname: true ignores the seed's hostname",
        lambda d: d.write("/etc/cloud/cloud.cfg.d/99-zz-hostname.cfg", "preserve_hostname: true\n"),
        ("cloud-init-seed-applied",),
        _exists("/etc/cloud/cloud.cfg.d/99-zz-hostname.cfg"),
    ),
    Defect(
        "etc-hosts-unmanaged",
        "cloud-init",
        "manage_etc_hosts: false leaves the clone's name out of /etc/hosts",
        lambda d: d.write("/etc/cloud/cloud.cfg.d/99-zz-hosts.cfg", "manage_etc_hosts: false\n"),
        ("cloud-init-seed-applied",),
        _exists("/etc/cloud/cloud.cfg.d/99-zz-hosts.cfg"),
    ),
    Defect(
        "baked-host-keys",
        "hygiene",
        "an SSH host key pair left in /etc/ssh",
        _host_keys,
        ("hygiene-host-keys",),
        _exists("/etc/ssh/ssh_host_ed25519_key"),
        ci=True,
    ),
    Defect(
        "baked-machine-id",
        "hygiene",
        "a machine-id left in /etc/machine-id",
        lambda d: d.write("/etc/machine-id", "0123456789abcdef0123456789abcdef\n", mode=0o444),
        ("hygiene-machine-id", "hygiene-first-boot-identity"),
        _contains("/etc/machine-id", "0123456789abcdef"),
    ),
    Defect(
        "cloud-init-instance-left",
        "hygiene",
        "the build's cloud-init instance data left",
        _cloud_instance,
        ("hygiene-cloud-init-state",),
        _exists("/var/lib/cloud/instance"),
    ),
    Defect(
        "root-shell-history",
        "hygiene",
        "root's .bash_history left",
        lambda d: d.write("/root/.bash_history", "passwd\nsudo -i\n", mode=0o600),
        ("hygiene-shell-history",),
        _exists("/root/.bash_history"),
    ),
    Defect(
        "skel-nano-search-history",
        "hygiene",
        "nano's search history under /etc/skel/.local/share (copied into every new user)",
        lambda d: d.write("/etc/skel/.local/share/nano/search_history", "password\n"),
        ("hygiene-shell-history",),
        _exists("/etc/skel/.local/share/nano/search_history"),
    ),
    Defect(
        "service-home-sqlite-history",
        "hygiene",
        "an .sqlite_history in the backup account's home (/var/backups)",
        lambda d: d.write("/var/backups/.sqlite_history", "select * from users;\n", mode=0o600),
        ("hygiene-shell-history",),
        _exists("/var/backups/.sqlite_history"),
    ),
    Defect(
        "build-user-left",
        "hygiene",
        "the build user's account and home left",
        _build_user,
        ("hygiene-build-user",),
        _contains("/etc/passwd", "packer:x:1000"),
    ),
    Defect(
        "build-user-sudoers",
        "hygiene",
        "the build user's NOPASSWD sudoers drop-in left",
        lambda d: d.write("/etc/sudoers.d/packer", "packer ALL=(ALL) NOPASSWD:ALL\n", mode=0o440),
        ("hygiene-sudoers",),
        _exists("/etc/sudoers.d/packer"),
    ),
    Defect(
        "installer-password-file",
        "hygiene",
        "cdebconf questions.dat with a password hash",
        _installer_file,
        # a password hash in an installer leftover is also what hygiene-credentials looks for
        ("hygiene-installer-files", "hygiene-credentials"),
        _exists("/var/log/installer/cdebconf/questions.dat"),
    ),
    Defect(
        "dhcp-lease",
        "hygiene",
        "a DHCP lease of the build VM",
        lambda d: d.write(
            "/var/lib/dhcp/dhclient.eth0.leases",
            'lease {\n  interface "eth0";\n  fixed-address 10.0.2.15;\n}\n',
        ),
        ("hygiene-network-state",),
        _exists("/var/lib/dhcp/dhclient.eth0.leases"),
    ),
    Defect(
        "apt-cache-left",
        "hygiene",
        "a downloaded .deb left in the apt cache",
        lambda d: d.write("/var/cache/apt/archives/leftover_1.0_amd64.deb", b"!<arch>\n" * 64),
        ("hygiene-caches-logs",),
        _exists("/var/cache/apt/archives/leftover_1.0_amd64.deb"),
    ),
    Defect(
        "xen-netfront-blacklisted",
        "guest-tools",
        "a modprobe.d file blacklists xen-netfront: QEMU's virtio is unaffected, a clone on "
        "XCP-ng has no network",
        lambda d: d.write("/etc/modprobe.d/blacklist-xen.conf", "blacklist xen-netfront\n"),
        ("guest-xen-drivers",),
        _exists("/etc/modprobe.d/blacklist-xen.conf"),
    ),
    Defect(
        "xen-blkfront-install-false",
        "guest-tools",
        "install xen_blkfront /bin/false in a site modprobe.d file (a 'disable unused drivers' "
        "list): a clone on XCP-ng sees no PV disk",
        lambda d: d.write(
            "/etc/modprobe.d/zz-site-disable.conf",
            "# drivers we do not use\ninstall usb-storage /bin/false\n"
            "install xen_blkfront /bin/false\n",
        ),
        ("guest-xen-drivers",),
        _exists("/etc/modprobe.d/zz-site-disable.conf"),
    ),
    Defect(
        "provisioner-script-in-var-tmp",
        "hygiene",
        "a Packer shell provisioner's script left in /var/tmp (kept across reboots, 30 days)",
        lambda d: d.write(
            "/var/tmp/packer-shell-892341.sh", "#!/bin/sh\napt-get -y install foo\n", mode=0o755
        ),
        ("hygiene-caches-logs",),
        _exists("/var/tmp/packer-shell-892341.sh"),
    ),
    Defect(
        "pip-cache-in-root-home",
        "hygiene",
        "pip's HTTP cache left in /root/.cache by a build step",
        lambda d: d.write("/root/.cache/pip/http-v2/a/b/c/d/e/0123abcd", b"\x01cached" * 64, 0o600),
        ("hygiene-caches-logs",),
        _exists("/root/.cache/pip/http-v2/a/b/c/d/e/0123abcd"),
    ),
    Defect(
        "wrong-os-release",
        "identity",
        "os-release says Debian 11",
        _os_release,
        ("identity-os-release",),
        _contains("/etc/os-release", 'VERSION_ID="11"'),
        ci=True,
    ),
    Defect(
        "disk-size-mismatch",
        "identity",
        "the disk is 512 MiB larger than declared",
        _grow,
        ("identity-root-disk",),
        lambda d: d.unpartitioned_tail() > 256 * 1024 * 1024,
    ),
)

DEFECTS += (
    Defect(
        "ssh-trusted-user-ca",
        "ssh",
        "TrustedUserCAKeys: every certificate of a CA logs in",
        _trusted_ca,
        ("ssh-trust",),
        _exists("/etc/ssh/sshd_config.d/00-ca.conf"),
    ),
    Defect(
        "pending-security-update",
        "system",
        "libssl3 older than the security suite's",
        _pending_security_update,
        ("system-security-updates",),
        _contains("/var/lib/dpkg/status", "~mutation"),
    ),
    Defect(
        "rootfs-does-not-grow",
        "system",
        "growpart and resize_rootfs turned off",
        lambda d: d.write(
            "/etc/cloud/cloud.cfg.d/99-zz-nogrow.cfg",
            "growpart:\n  mode: 'off'\nresize_rootfs: false\n",
        ),
        ("system-rootfs-grows",),
        _exists("/etc/cloud/cloud.cfg.d/99-zz-nogrow.cfg"),
    ),
    Defect(
        "extra-listener",
        "system",
        "a debug socket on 127.0.0.1:8080",
        _extra_listener,
        ("system-listeners",),
        _exists("/etc/systemd/system/sockets.target.wants/debug-echo.socket"),
    ),
    Defect(
        "time-sync-masked",
        "system",
        "systemd-timesyncd and chrony masked",
        _mask_time_sync,
        ("system-time-sync",),
        lambda d: d.reader().lexists("/etc/systemd/system/systemd-timesyncd.service"),
    ),
    Defect(
        "world-writable-etc-file",
        "system",
        "a world-writable file under /etc",
        lambda d: d.write("/etc/default/zz-tuning", "OPTS=\n", mode=0o666),
        ("system-world-writable",),
        _mode("/etc/default/zz-tuning", 0o666),
    ),
    Defect(
        "tty-autologin",
        "system",
        "a getty drop-in logs root in on tty1",
        _tty_autologin,
        ("system-console-autologin",),
        _exists("/etc/systemd/system/getty@tty1.service.d/autologin.conf"),
    ),
    Defect(
        "default-user-unlocked",
        "cloud-init",
        "a drop-in unlocks cloud-init's default user",
        lambda d: d.write(
            "/etc/cloud/cloud.cfg.d/99-zz-user.cfg",
            "system_info:\n  default_user:\n    lock_passwd: false\n",
        ),
        ("cloud-init-security",),
        _exists("/etc/cloud/cloud.cfg.d/99-zz-user.cfg"),
    ),
    Defect(
        "cloud-init-root-opts-empty",
        "cloud-init",
        "a drop-in empties disable_root_opts: root's copy of the user's key logs in",
        lambda d: d.write("/etc/cloud/cloud.cfg.d/95-root.cfg", 'disable_root_opts: ""\n'),
        ("cloud-init-security",),
        _exists("/etc/cloud/cloud.cfg.d/95-root.cfg"),
    ),
    Defect(
        "cloud-init-root-opts-no-command",
        "cloud-init",
        "cloud.cfg's disable_root_opts keeps the no-* options but drops the forced command",
        lambda d: d.append(
            "/etc/cloud/cloud.cfg",
            "\ndisable_root_opts: no-port-forwarding,no-agent-forwarding,no-X11-forwarding\n",
        ),
        ("cloud-init-security",),
        _contains("/etc/cloud/cloud.cfg", "disable_root_opts: no-port-forwarding"),
    ),
    Defect(
        "cloud-init-baked-host-keys",
        "cloud-init",
        "a drop-in hands every clone the same ed25519 host key (ssh_keys)",
        _baked_host_keys("/etc/cloud/cloud.cfg.d/90-hostkeys.cfg", "ed25519"),
        ("cloud-init-security", "hygiene-credentials"),
        _exists("/etc/cloud/cloud.cfg.d/90-hostkeys.cfg"),
    ),
    Defect(
        "cloud-init-baked-host-keys-rsa",
        "cloud-init",
        "the same, an RSA host key in PEM form appended to cloud.cfg itself",
        _baked_host_keys("/etc/cloud/cloud.cfg", "rsa"),
        ("cloud-init-security", "hygiene-credentials"),
        _contains("/etc/cloud/cloud.cfg", "rsa_private"),
    ),
    Defect(
        "root-authorized-keys",
        "hygiene",
        "a foreign key in root's authorized_keys",
        _root_authorized_keys,
        ("hygiene-credentials",),
        _exists("/root/.ssh/authorized_keys"),
    ),
    Defect(
        "shadow-backup-build-hash",
        "hygiene",
        "/etc/shadow- holds the build user's hash",
        _shadow_backup,
        ("hygiene-account-backups",),
        _contains("/etc/shadow-", BUILD_HASH),
    ),
    Defect(
        "ssh-only-weak-ciphers",
        "reach",
        "sshd offers only CBC ciphers: no client agrees",
        _weak_ciphers_only,
        ("ssh-crypto",),
        _exists("/etc/ssh/sshd_config.d/00-legacy-clients.conf"),
        ci=True,
        boot_fails=True,
        cause="no common cipher",
    ),
    Defect(
        "cloud-init-disabled",
        "reach",
        "/etc/cloud/cloud-init.disabled: the seed is never applied",
        lambda d: d.write("/etc/cloud/cloud-init.disabled", ""),
        ("cloud-init-installed",),
        _exists("/etc/cloud/cloud-init.disabled"),
        boot_fails=True,
        cause="cloud-init did not run",
    ),
)


# Good variants: images that must pass (the false alarms a reviewer found are the first rows).
def _history_to_dev_null(d: DiskEditor) -> None:
    d.symlink("/root/.bash_history", "/dev/null")
    d.write("/etc/skel/.bash_history", "", mode=0o600)


GOOD_VARIANTS: tuple[GoodVariant, ...] = (
    GoodVariant(
        "xen-netfront-tuned",
        "options xen_netfront max_queues=4 in /etc/modprobe.d/xen-netfront.conf",
        "driver options are tuning, not a block: only blacklist and install rules are",
        lambda d: d.write(
            "/etc/modprobe.d/xen-netfront.conf", "options xen_netfront max_queues=4\n"
        ),
        _exists("/etc/modprobe.d/xen-netfront.conf"),
    ),
    GoodVariant(
        "history-to-dev-null",
        "root's .bash_history a link to /dev/null, an empty .bash_history in /etc/skel",
        "a history that cannot hold anything (hardening's /dev/null link, an empty file) is not "
        "a leftover",
        _history_to_dev_null,
        lambda d: d.reader().lexists("/root/.bash_history"),
    ),
    GoodVariant(
        "cloud-init-root-opts-own-message",
        "disable_root_opts with the site's own message, the forced command kept",
        "root's copy of the keys only has to end in a forced command; its wording is the site's",
        lambda d: d.write(
            "/etc/cloud/cloud.cfg.d/95-root.cfg",
            "disable_root_opts: no-port-forwarding,no-agent-forwarding,no-X11-forwarding,"
            "command=\"echo 'Log in as $USER, then sudo.';echo;sleep 5;exit 142\"\n",
        ),
        _exists("/etc/cloud/cloud.cfg.d/95-root.cfg"),
    ),
)

# The validation v3 rows live in modules of their own, one per concern (they import Defect,
# GoodVariant and the helpers above, hence the imports at the end).
from defects_access import ACCESS_DEFECTS, ACCESS_GOOD_VARIANTS  # noqa: E402
from defects_packages import PACKAGE_DEFECTS, PACKAGE_GOOD_VARIANTS  # noqa: E402
from defects_persistence import PERSISTENCE_DEFECTS, PERSISTENCE_GOOD_VARIANTS  # noqa: E402
from defects_system import SYSTEM_DEFECTS, SYSTEM_GOOD_VARIANTS  # noqa: E402
from defects_trust import TRUST_DEFECTS, TRUST_GOOD_VARIANTS  # noqa: E402

DEFECTS += PACKAGE_DEFECTS + ACCESS_DEFECTS + SYSTEM_DEFECTS + TRUST_DEFECTS + PERSISTENCE_DEFECTS
GOOD_VARIANTS += (
    PACKAGE_GOOD_VARIANTS
    + ACCESS_GOOD_VARIANTS
    + SYSTEM_GOOD_VARIANTS
    + TRUST_GOOD_VARIANTS
    + PERSISTENCE_GOOD_VARIANTS
)
BY_NAME = {d.name: d for d in DEFECTS}
GOOD_BY_NAME = {g.name: g for g in GOOD_VARIANTS}
