"""SSH hardening, read from the configuration sshd actually uses (drop-ins and Match blocks).

dev-sec's ssh-baseline reads only /etc/ssh/sshd_config and misses drop-ins that win, Match
blocks and command-line overrides; these checks ask sshd itself (`sshd -T [-C ...]`).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest

from core.checks import check
from core.model import BootedVM
from validations import sshd

MIN_MODULI_BITS = 3071  # /etc/ssh/moduli lists size-1: 3071 is a 3072-bit group


@pytest.fixture(scope="module")
def effective(host: Any, vm: BootedVM) -> list[tuple[sshd.Context | None, dict[str, str]]]:
    """The default effective configuration, then one per connection context (Match blocks)."""
    with host.sudo():
        configs = [host.file("/etc/ssh/sshd_config").content_string]
        dropins = host.file("/etc/ssh/sshd_config.d")
        names = (
            sorted(n for n in dropins.listdir() if n.endswith(".conf")) if dropins.exists else []
        )
        for name in names:
            f = host.file(f"/etc/ssh/sshd_config.d/{name}")
            if f.is_file:
                configs.append(f.content_string)
        default = sshd.parse_effective(host.check_output("sshd -T"))
        users = []
        for line in host.check_output("getent passwd").splitlines():
            fields = line.split(":")
            if len(fields) >= 7 and not fields[6].endswith(("nologin", "false", "sync")):
                users.append(fields[0])
        groups: dict[str, list[str]] = {}
        for line in host.check_output("getent group").splitlines():
            fields = line.split(":")
            if len(fields) >= 4:
                groups[fields[0]] = [m for m in fields[3].split(",") if m]
        assert default, "sshd -T printed nothing"
        out: list[tuple[sshd.Context | None, dict[str, str]]] = [(None, default)]
        for ctx in sshd.contexts(configs, users, groups, vm.user):
            text = host.check_output(f"sshd -T -C {shlex.quote(ctx.spec())}")
            out.append((ctx, sshd.parse_effective(text)))
    return out


def _all_violations(
    effective: list[tuple[sshd.Context | None, dict[str, str]]], rules: dict[str, set[str]]
) -> list[str]:
    bad: list[str] = []
    for ctx, eff in effective:
        bad += sshd.violations(eff, rules, ctx)
    return bad


@check(
    "ssh-password-auth",
    "no password, empty-password or keyboard-interactive login, Match blocks included",
)
def test_password_auth(effective: list[tuple[sshd.Context | None, dict[str, str]]]) -> None:
    rules = {
        "passwordauthentication": {"no"},
        "permitemptypasswords": {"no"},
        "kbdinteractiveauthentication": {"no"},
    }
    if "kbdinteractiveauthentication" not in effective[0][1]:  # OpenSSH < 8.7
        rules["challengeresponseauthentication"] = rules.pop("kbdinteractiveauthentication")
    bad = _all_violations(effective, rules)
    assert not bad, "password login possible:\n" + "\n".join(bad)


@check("ssh-root-login", "root cannot log in with a password over SSH")
def test_root_login(effective: list[tuple[sshd.Context | None, dict[str, str]]]) -> None:
    bad = _all_violations(
        effective, {"permitrootlogin": {"no", "prohibit-password", "without-password"}}
    )
    assert not bad, "root password login allowed:\n" + "\n".join(bad)


@check(
    "ssh-crypto",
    "only strong ciphers, key exchanges and MACs, and no -o override on sshd's command line",
)
def test_crypto(host: Any, effective: list[tuple[sshd.Context | None, dict[str, str]]]) -> None:
    eff = effective[0][1]
    bad = []
    for key, strong in (
        ("ciphers", sshd.STRONG_CIPHERS),
        ("kexalgorithms", sshd.STRONG_KEX),
        ("macs", sshd.STRONG_MACS),
    ):
        offered = sshd.algorithms(eff.get(key, ""))
        assert offered, f"sshd -T reports no {key}"
        weak = [a for a in offered if a not in strong]
        if weak:
            bad.append(f"{key}: weak {', '.join(weak)}")
    # EL8 passes crypto-policies as `-o Ciphers=...` on the command line, which sshd -T ignores.
    listeners = [p for p in host.process.filter(comm="sshd") if p.ppid == 1]
    assert listeners, "no sshd listener process (parent pid 1) is running"
    for proc in listeners:
        args = f" {proc.args} "
        if " -o" in args:
            bad.append(f"sshd runs with a command-line override: {proc.args.strip()}")
    assert not bad, "\n".join(bad)


@check("ssh-auth-methods", "public keys only: no host-based auth, rhosts or user environment")
def test_auth_methods(effective: list[tuple[sshd.Context | None, dict[str, str]]]) -> None:
    bad = _all_violations(
        effective,
        {
            "pubkeyauthentication": {"yes"},
            "hostbasedauthentication": {"no"},
            "ignorerhosts": {"yes"},
            "permituserenvironment": {"no"},
        },
    )
    assert not bad, "\n".join(bad)


@check(
    "ssh-session-limits",
    "few auth tries, short grace time, no X11/agent/tunnel forwarding, verbose logs",
)
def test_session_limits(effective: list[tuple[sshd.Context | None, dict[str, str]]]) -> None:
    bad = _all_violations(
        effective,
        {
            "x11forwarding": {"no"},
            "allowagentforwarding": {"no"},
            "permittunnel": {"no"},
            "gatewayports": {"no"},
            "loglevel": {"verbose"},
        },
    )
    for ctx, eff in effective:
        where = f" [{ctx.why}]" if ctx else ""
        tries = int(eff.get("maxauthtries", "0"))
        grace = int(eff.get("logingracetime", "0"))
        alive = int(eff.get("clientaliveinterval", "0"))
        count = int(eff.get("clientalivecountmax", "99"))
        if not 1 <= tries <= 4:
            bad.append(f"maxauthtries {tries} (want 1-4){where}")
        if not 1 <= grace <= 60:
            bad.append(f"logingracetime {grace} (want 1-60 s){where}")
        if not 1 <= alive <= 600 or not 1 <= count <= 3:
            bad.append(f"clientaliveinterval {alive}/countmax {count} (want 1-600 s, 1-3){where}")
    assert not bad, "\n".join(bad)


@check(
    "ssh-files",
    "/etc/ssh is root-owned, nothing in it group/other-writable, server config and keys private",
)
def test_files(host: Any) -> None:
    with host.sudo():
        listing = host.check_output(r"find /etc/ssh -xdev -printf '%y %U %G %m %p\n'")
    rows = [line.split(" ", 4) for line in listing.splitlines() if line.strip()]
    assert any(r[4] == "/etc/ssh" for r in rows), f"find listed no /etc/ssh: {listing[:200]}"
    group = host.run("getent group ssh_keys")
    ssh_keys_gid = (
        group.stdout.split(":")[2] if group.rc == 0 and group.stdout.count(":") >= 2 else ""
    )
    bad = []
    for kind, uid, gid, mode_s, path in rows:
        mode = int(mode_s, 8)
        if kind == "l":
            continue
        if uid != "0":
            bad.append(f"{path}: owner uid {uid}, want root")
        if mode & 0o022:
            bad.append(f"{path}: mode {mode_s} is group/other writable")
        name = path.rsplit("/", 1)[-1]
        private = name == "sshd_config" or path.startswith("/etc/ssh/sshd_config.d/")
        if private and mode & 0o077:
            bad.append(f"{path}: mode {mode_s}, want 0600 (server config readable by others)")
        if name.startswith("ssh_host_") and name.endswith("_key"):
            group_ok = gid == ssh_keys_gid and not mode & 0o037  # EL: root:ssh_keys 0640
            if mode & 0o077 and not group_ok:
                bad.append(f"{path}: private host key mode {mode_s}")
    assert not bad, "\n".join(bad)


# The host keys first boot makes for each clone (cloud-init's ssh_deletekeys/ssh_genkeytypes,
# ssh-keygen -A, EL's sshd-keygen): any other HostKey is shared by every clone.
CLONE_HOST_KEYS = frozenset(
    f"/etc/ssh/ssh_host_{kind}_key" for kind in ("rsa", "ecdsa", "ed25519", "dsa")
)
_OWN_KEYS_FILE = re.compile(r"^(%h/)?\.ssh/authorized_keys2?$")


def trust_problems(eff: dict[str, str], ctx: sshd.Context | None) -> list[str]:
    """Whom sshd trusts besides the keys in the user's own ~/.ssh, for one connection."""
    where = f" [{ctx.why}: {ctx.spec()}]" if ctx else ""
    bad = sshd.violations(
        eff,
        {
            "authorizedkeyscommand": {"none"},
            "authorizedprincipalscommand": {"none"},
            "authorizedprincipalsfile": {"none"},
            "trustedusercakeys": {"none"},
            "strictmodes": {"yes"},
        },
        ctx,
    )
    files = eff.get("authorizedkeysfile", "").split()
    others = [f for f in files if f != "none" and not _OWN_KEYS_FILE.match(f)]
    if others:
        bad.append(
            f"authorizedkeysfile {' '.join(files)}: {', '.join(others)} is not in the user's "
            f"own ~/.ssh{where}"
        )
    if ctx is None:
        keys = [k.strip() for k in eff.get("hostkey", "").splitlines() if k.strip()]
        assert keys, "sshd -T reports no hostkey"
        shared = [k for k in keys if k not in CLONE_HOST_KEYS]
        if shared:
            bad.append(
                f"hostkey {', '.join(shared)}: not a key first boot regenerates (every clone "
                "shares it)"
            )
    return bad


@check(
    "ssh-trust",
    "sshd trusts only the user's own ~/.ssh keys: no keys command, principals, CA or foreign "
    "key files, StrictModes on, only per-clone host keys",
)
def test_trust(effective: list[tuple[sshd.Context | None, dict[str, str]]]) -> None:
    bad = [line for ctx, eff in effective for line in trust_problems(eff, ctx)]
    assert not bad, "sshd trusts more than the user's own keys:\n" + "\n".join(bad)


@check("ssh-moduli", "no Diffie-Hellman group under 3072 bits for group exchange")
def test_moduli(host: Any) -> None:
    moduli = host.file("/etc/ssh/moduli")
    if not moduli.exists:  # sshd then uses its built-in groups (2048+ bits, RFC 3526)
        assert not host.file("/etc/ssh/moduli").is_symlink
        return
    lines = [
        line.split()
        for line in moduli.content_string.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines, "/etc/ssh/moduli lists no group: group exchange would fail"
    weak = sorted({int(f[4]) + 1 for f in lines if len(f) >= 5 and int(f[4]) < MIN_MODULI_BITS})
    assert not weak, f"/etc/ssh/moduli has weak groups: {', '.join(map(str, weak))} bits"
