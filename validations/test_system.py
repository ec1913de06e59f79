"""System hardening on the booted clone: sysctl, account files, legacy services, passwords."""

from __future__ import annotations

from typing import Any

from core.checks import check
from core.model import TemplateSpec

# linux-baseline's sysctl controls that fit a template (values as the kernel reports them).
SYSCTL: dict[str, set[int]] = {
    "net.ipv4.ip_forward": {0},
    "net.ipv4.conf.all.rp_filter": {1},
    "net.ipv4.conf.default.rp_filter": {1},
    "net.ipv4.conf.all.accept_redirects": {0},
    "net.ipv4.conf.default.accept_redirects": {0},
    "net.ipv4.conf.all.send_redirects": {0},
    "net.ipv4.conf.default.send_redirects": {0},
    "net.ipv4.conf.all.accept_source_route": {0},
    "net.ipv4.conf.default.accept_source_route": {0},
    "net.ipv4.tcp_syncookies": {1},
    "net.ipv6.conf.all.accept_redirects": {0},
    "kernel.randomize_va_space": {2},
    "kernel.sysrq": {0},
    "fs.protected_hardlinks": {1},
    "fs.protected_symlinks": {1},
    "fs.suid_dumpable": {0, 2},
}

LEGACY_PACKAGES = {
    "debian": (
        "telnetd",
        "inetutils-telnetd",
        "telnetd-ssl",
        "rsh-server",
        "rsh-redone-server",
        "tftpd",
        "tftpd-hpa",
        "atftpd",
        "xinetd",
        "openbsd-inetd",
        "inetutils-inetd",
        "nis",
        "talkd",
    ),
    "el": ("telnet-server", "rsh-server", "tftp-server", "xinetd", "ypserv", "talk-server"),
}
# telnet, tftp, rexec, rlogin, rsh/syslog, talk, ntalk
LEGACY_PORTS = {"tcp": {23, 512, 513, 514}, "udp": {69, 517, 518}}


@check("system-sysctl", "kernel network and memory hardening (linux-baseline sysctl controls)")
def test_sysctl(host: Any) -> None:
    bad = []
    for key, allowed in SYSCTL.items():
        # /proc/sys directly: sysctl(8) is in /usr/sbin, off a user's PATH on Debian.
        out = host.run(f"cat /proc/sys/{key.replace('.', '/')}")
        assert out.rc == 0, f"{key}: cannot read /proc/sys ({out.stderr.strip()})"
        value = int(out.stdout.split()[0])
        if value not in allowed:
            bad.append(f"{key} = {value} (want {' or '.join(map(str, sorted(allowed)))})")
    assert not bad, "\n".join(bad)


@check(
    "system-file-modes",
    "account databases root-owned, shadow files not readable by users, no rhosts",
)
def test_file_modes(host: Any, spec: TemplateSpec) -> None:
    bad = []
    for path in ("/etc/passwd", "/etc/group"):
        f = host.file(path)
        assert f.exists, f"{path} is missing"
        if f.user != "root" or f.mode & 0o022 or f.mode & 0o444 != 0o444:
            bad.append(f"{path}: {f.user}:{f.group} {f.mode:o}, want root 0644")
    shadow_group = "shadow" if spec.family == "debian" else "root"
    for path in ("/etc/shadow", "/etc/gshadow"):
        f = host.file(path)
        if not f.exists:
            bad.append(f"{path} is missing")
            continue
        if f.user != "root" or f.group not in (shadow_group, "root") or f.mode & 0o137:
            bad.append(
                f"{path}: {f.user}:{f.group} {f.mode:o}, want root:{shadow_group} 0640 or less"
            )
    for path in ("/etc/hosts.equiv", "/etc/shosts.equiv", "/root/.rhosts", "/root/.netrc"):
        if host.file(path).exists:
            bad.append(f"{path} exists (host-based trust or stored credentials)")
    assert not bad, "\n".join(bad)


@check("system-legacy-services", "no telnet, rsh, tftp, talk or inetd: cleartext services")
def test_legacy_services(host: Any, spec: TemplateSpec) -> None:
    installed = [p for p in LEGACY_PACKAGES.get(spec.family, ()) if host.package(p).is_installed]
    listening = []
    for proto, flag in (("tcp", "-t"), ("udp", "-u")):
        out = host.run(f"ss -H -l -n {flag}")
        assert out.rc == 0, f"ss failed: {out.stderr.strip()}"
        for line in out.stdout.splitlines():
            fields = line.split()
            if len(fields) < 4:
                continue
            port = fields[3].rsplit(":", 1)[-1]
            if port.isdigit() and int(port) in LEGACY_PORTS[proto]:
                listening.append(f"{proto}/{port} ({fields[3]})")
    assert host.run("ss -H -l -n -t").stdout.strip(), (
        "ss lists no TCP listener at all (not even sshd)"
    )
    assert not installed and not listening, (
        f"legacy services: packages {installed or 'none'}, listening {listening or 'none'}"
    )


@check(
    "system-shadow-locked", "every password in /etc/shadow is locked: keys only, no baked password"
)
def test_shadow_locked(host: Any) -> None:
    out = host.run("sudo cat /etc/shadow")
    assert out.rc == 0 and out.stdout.strip(), f"cannot read /etc/shadow: {out.stderr.strip()}"
    unlocked = []
    for line in out.stdout.splitlines():
        fields = line.split(":")
        if len(fields) < 2:
            continue
        name, hashed = fields[0], fields[1]
        if hashed == "" or not hashed.startswith(("!", "*")):
            unlocked.append(f"{name} ({'empty password' if hashed == '' else 'password set'})")
    assert not unlocked, "unlocked accounts: " + ", ".join(unlocked)
