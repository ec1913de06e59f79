"""SSH hardening, read from the configuration sshd actually uses.

dev-sec's ssh-baseline reads only /etc/ssh/sshd_config and misses drop-ins that win, Match
blocks and command-line overrides. These checks find every way sshd is started on the clone
(the running daemons' own command lines, and every unit that runs sshd, with the variables its
environment files give it: `-f another_config`, `-o Key=value`), follow every file that
configuration includes, and ask sshd itself (`sshd -T [options] [-C connection]`) for the
default connection and one connection per Match block, with a real member of each group a
`Match Group` names.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Any

import pytest

from core.checks import check
from core.model import BootedVM
from validations import sshd
from validations.remote import ask
from validations.systemd import parse_show

MIN_MODULI_BITS = 3071  # /etc/ssh/moduli lists size-1: 3071 is a 3072-bit group


@dataclass(frozen=True)
class Evaluated:
    """One effective configuration: an sshd invocation, for one connection (None: default)."""

    invocation: sshd.Invocation
    ctx: sshd.Context | None
    eff: dict[str, str]

    def where(self) -> str:
        inv = self.invocation
        started = "" if inv.options == () and "running" in inv.source else f" {inv.label()}"
        conn = f" [{self.ctx.why}: {self.ctx.spec()}]" if self.ctx else ""
        return (started + conn).strip()


@dataclass(frozen=True)
class SshdState:
    evaluated: list[Evaluated]
    config_files: dict[str, list[str]]  # config file of each invocation -> every file it reads
    file_rows: list[list[str]]  # `find -printf '%y %U %G %m %p'` of /etc/ssh and those files
    ssh_keys_gid: str
    moduli: tuple[bool, str]  # (readable, "link\n" when a symbolic link + /etc/ssh/moduli's text)


SHOW_EXEC = "systemctl show --no-pager -p Id,MainPID,ExecStart,Environment,EnvironmentFiles"
USUAL_UNITS = ("ssh.service", "sshd.service")  # Debian/Ubuntu, EL: read before they are asked
# Prints `path\0text\0` for each file a configuration reads, following Include the way sshd
# does (relative to /etc/ssh, globbed, 16 levels at most). Patterns pass through unquoted
# variables: globbed and split, never evaluated as commands.
TREE_SH = r"""
tree() {
  [ "$2" -gt 16 ] && return 0
  [ -f "$1" ] || return 0
  printf '%s\0' "$1"; cat "$1"; printf '\0'
  sed -n 's/^[[:space:]]*[Ii][Nn][Cc][Ll][Uu][Dd][Ee][[:space:]=][[:space:]]*//p' "$1" |
  while IFS= read -r pats; do
    set -f
    for pat in $pats; do
      case $pat in '#'*) break ;; /*) ;; *) pat=/etc/ssh/$pat ;; esac
      set +f
      for f in $pat; do tree "$f" $(($2 + 1)); done
      set -f
    done
    set +f
  done
}
"""
ENV_FILES_SH = (
    "systemctl show -p EnvironmentFiles --value {units} | while read -r f _; do f=${{f#-}}; "
    '[ -f "$f" ] && printf \'%s\\0\' "$f" && cat "$f" && printf \'\\0\'; done; true'
)


def _records(text: str) -> dict[str, str]:
    """`path\0text\0...` -> {path: text}, first occurrence kept."""
    parts = text.split("\0")
    out: dict[str, str] = {}
    for path, body in zip(parts[::2], parts[1::2], strict=False):
        out.setdefault(path, body)
    return out


def _tree_command(config: str) -> str:
    return f"{TREE_SH}\ntree {shlex.quote(config)} 0"


def _env_command(units: list[str]) -> str:
    return ENV_FILES_SH.format(units=" ".join(shlex.quote(u) for u in units))


@dataclass(frozen=True)
class Started:
    """How sshd runs on the clone, and what its configuration reads."""

    invocations: list[sshd.Invocation]
    trees: dict[str, dict[str, str]]  # config file -> {file it reads: text}
    passwd: str
    group: str


def _started(host: Any) -> Started:
    """Every way sshd runs on the clone: each running daemon (its own command line, and the
    ExecStart of the unit that started it, with that unit's environment) and each socket that
    starts `sshd -i` per connection. The usual units and the default configuration are read in
    the same exchange; anything else costs one more."""
    first = ask(
        host,
        {
            "ps": "ps -eo pid=,args=",
            "sockets": "systemctl show --type=socket --state=active --no-pager -p Id,Accept",
            "passwd": "getent passwd",
            "group": "getent group",
            "units": f"{SHOW_EXEC} {' '.join(USUAL_UNITS)}",
            "env": _env_command(list(USUAL_UNITS)),
            "tree": _tree_command(sshd.DEFAULT_CONFIG),
        },
    )
    usual = parse_show(first["units"].stdout)
    main_pids = {u.get("MainPID"): u["Id"] for u in usual if u.get("MainPID", "0") != "0"}
    listener_pids = [inv.pid for inv in sshd.listeners(first["ps"].stdout)]
    wanted = {main_pids[p] for p in listener_pids if p in main_pids}
    strays = [p for p in listener_pids if p not in main_pids]
    if strays:  # a daemon no usual unit started: which unit did?
        which = ask(host, {"ps": f"ps -o unit= -p {','.join(strays)}"})["ps"].stdout.split()
        wanted |= {u for u in which if u.endswith(".service")}
    wanted |= {
        u["Id"].removesuffix(".socket") + "@probe.service"
        for u in parse_show(first["sockets"].stdout)
        if u.get("Accept") == "yes"
    }
    units = [u for u in usual if u.get("Id") in wanted]
    files = _records(first["env"].stdout)
    others = sorted(wanted - set(USUAL_UNITS))
    if others:
        more = ask(
            host,
            {
                "units": f"{SHOW_EXEC} {' '.join(map(shlex.quote, others))}",
                "env": _env_command(others),
            },
        )
        units += parse_show(more["units"].stdout)
        files |= _records(more["env"].stdout)
    found = sshd.listeners(first["ps"].stdout) + sshd.unit_invocations(units, files)
    invocations = sshd.unique_invocations(found)
    trees = {sshd.DEFAULT_CONFIG: _records(first["tree"].stdout)}
    roots = sorted({inv.config_file for inv in invocations} - set(trees))
    if roots:
        read = ask(host, {f"t{i}": _tree_command(root) for i, root in enumerate(roots)})
        trees |= {root: _records(read[f"t{i}"].stdout) for i, root in enumerate(roots)}
    return Started(invocations, trees, first["passwd"].stdout, first["group"].stdout)


def _login_users(passwd: str) -> list[str]:
    users = []
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and not fields[6].endswith(("nologin", "false", "sync")):
            users.append(fields[0])
    return users


def _t_command(inv: sshd.Invocation, ctx: sshd.Context | None) -> str:
    argv = ["sshd", "-T", *inv.options] + (["-C", ctx.spec()] if ctx else [])
    command = shlex.join(argv)
    if ctx is None or ctx.temp_group is None:
        return command
    user = shlex.quote(ctx.user)
    return (
        f"useradd -M -N -g {shlex.quote(ctx.temp_group)} -s /usr/sbin/nologin {user} "
        f">/dev/null 2>&1; {command}; rc=$?; userdel {user} >/dev/null 2>&1; exit $rc"
    )


STAT = r"-printf '%y %U %G %m %p\n'"


@pytest.fixture(scope="module")
def sshd_state(host: Any, vm: BootedVM) -> SshdState:
    """Every effective configuration sshd serves on the clone: for each way it is started (the
    options its unit and its environment give it), the default connection and one connection
    per Match block of the files it reads, with real members for `Match Group`."""
    started = _started(host)
    assert started.invocations, "no sshd runs on the clone and no socket starts one"
    users = _login_users(started.passwd)
    groups = sshd.members(started.passwd, started.group)
    plan: list[tuple[sshd.Invocation, sshd.Context | None]] = []
    for inv in started.invocations:
        plan.append((inv, None))
        configs = list(started.trees[inv.config_file].values())
        plan += [(inv, ctx) for ctx in sshd.contexts(configs, users, groups, vm.user)]
    config_files = sorted({f for tree in started.trees.values() for f in tree})
    folders = {posixpath.dirname(f) for f in config_files}
    extra = sorted(set(config_files) | {p for f in folders for p in [f, *_parents(f)]})
    questions = {f"c{i}": _t_command(inv, ctx) for i, (inv, ctx) in enumerate(plan)}
    questions["etc"] = f"find /etc/ssh -xdev {STAT}"
    questions["others"] = f"find {' '.join(map(shlex.quote, extra))} -maxdepth 0 {STAT}"
    questions["ssh_keys"] = "getent group ssh_keys"
    questions["moduli"] = "if [ -L /etc/ssh/moduli ]; then echo link; fi; cat /etc/ssh/moduli"
    answers = ask(host, questions)
    evaluated = []
    for i, (inv, ctx) in enumerate(plan):
        answer = answers[f"c{i}"]
        eff = sshd.parse_effective(answer.stdout)
        assert answer.rc == 0 and eff, (
            f"sshd cannot evaluate the configuration of {inv.label()}"
            f"{f' for {ctx.spec()}' if ctx else ''}: {answer.stderr.strip()[-300:]}"
        )
        evaluated.append(Evaluated(inv, ctx, eff))
    listing = answers["etc"].stdout + answers["others"].stdout
    rows = [line.split(" ", 4) for line in dict.fromkeys(listing.splitlines()) if line.strip()]
    group = answers["ssh_keys"].stdout
    return SshdState(
        evaluated,
        {root: sorted(tree) for root, tree in started.trees.items()},
        rows,
        group.split(":")[2] if group.count(":") >= 2 else "",
        (answers["moduli"].rc == 0, answers["moduli"].stdout),
    )


def _all_violations(state: SshdState, rules: dict[str, set[str]]) -> list[str]:
    bad: list[str] = []
    for ev in state.evaluated:
        bad += [f"{line} {ev.where()}".rstrip() for line in sshd.violations(ev.eff, rules)]
    return bad


def second_factor_only(eff: dict[str, str]) -> bool:
    """True when every AuthenticationMethods chain requires a public key: a password or
    keyboard-interactive step is then a second factor after it (MFA), never a way in alone."""
    chains = eff.get("authenticationmethods", "any").split()
    return chains != ["any"] and all("publickey" in c.split(",") for c in chains)


def password_problems(ev: Evaluated) -> list[str]:
    rules = {"permitemptypasswords": {"no"}}
    if not second_factor_only(ev.eff):
        kbd = "kbdinteractiveauthentication"
        if kbd not in ev.eff:  # OpenSSH < 8.7
            kbd = "challengeresponseauthentication"
        rules |= {"passwordauthentication": {"no"}, kbd: {"no"}}
        if "kerberosauthentication" in ev.eff:  # the password checked against a KDC instead
            rules["kerberosauthentication"] = {"no"}
    return [f"{line} {ev.where()}".rstrip() for line in sshd.violations(ev.eff, rules)]


@check(
    "ssh-password-auth",
    "no password, empty-password or keyboard-interactive login, for every way sshd is started "
    "and every Match block (allowed only as a second factor after a public key)",
)
def test_password_auth(sshd_state: SshdState) -> None:
    bad = [line for ev in sshd_state.evaluated for line in password_problems(ev)]
    assert not bad, "password login possible:\n" + "\n".join(bad)


@check("ssh-root-login", "root cannot log in with a password over SSH")
def test_root_login(sshd_state: SshdState) -> None:
    bad = _all_violations(
        sshd_state, {"permitrootlogin": {"no", "prohibit-password", "without-password"}}
    )
    assert not bad, "root password login allowed:\n" + "\n".join(bad)


def weak_algorithms(eff: dict[str, str]) -> list[str]:
    """Each algorithm family sshd offers with a member outside the policy's strong set."""
    bad = []
    for key, strong in sshd.ALGORITHM_POLICY:
        offered = sshd.algorithms(eff.get(key, ""))
        if not offered:
            if key in ("ciphers", "kexalgorithms", "macs"):
                bad.append(f"{key}: sshd -T reports none")
            continue
        weak = [a for a in offered if a not in strong]
        if weak:
            bad.append(f"{key}: weak {', '.join(weak)}")
    return bad


@check(
    "ssh-crypto",
    "only strong ciphers, key exchanges, MACs and public-key/host-key/CA signature algorithms, "
    "for every way sshd is started (its command line and environment included)",
)
def test_crypto(sshd_state: SshdState) -> None:
    bad = []
    for ev in sshd_state.evaluated:
        bad += [f"{line} {ev.where()}".rstrip() for line in weak_algorithms(ev.eff)]
    assert not bad, "\n".join(dict.fromkeys(bad))


@check("ssh-auth-methods", "public keys only: no host-based auth, rhosts or user environment")
def test_auth_methods(sshd_state: SshdState) -> None:
    bad = _all_violations(
        sshd_state,
        {
            "pubkeyauthentication": {"yes"},
            "hostbasedauthentication": {"no"},
            "ignorerhosts": {"yes"},
            "permituserenvironment": {"no"},
        },
    )
    assert not bad, "\n".join(bad)


def limit_problems(eff: dict[str, str]) -> list[str]:
    bad = []
    tries = int(eff.get("maxauthtries", "0"))
    grace = int(eff.get("logingracetime", "0"))
    alive = int(eff.get("clientaliveinterval", "0"))
    count = int(eff.get("clientalivecountmax", "99"))
    if not 1 <= tries <= 4:
        bad.append(f"maxauthtries {tries} (want 1-4)")
    if not 1 <= grace <= 60:
        bad.append(f"logingracetime {grace} (want 1-60 s)")
    if not 1 <= alive <= 600 or not 1 <= count <= 3:
        bad.append(f"clientaliveinterval {alive}/countmax {count} (want 1-600 s, 1-3)")
    return bad


@check(
    "ssh-session-limits",
    "few auth tries, short grace time, no X11/agent/tunnel forwarding, logs at INFO or VERBOSE",
)
def test_session_limits(sshd_state: SshdState) -> None:
    bad = _all_violations(
        sshd_state,
        {
            "x11forwarding": {"no"},
            "allowagentforwarding": {"no"},
            "permittunnel": {"no"},
            "gatewayports": {"no"},
            # CIS accepts INFO or VERBOSE; VERBOSE adds the key fingerprint of each login
            "loglevel": {"verbose", "info"},
        },
    )
    for ev in sshd_state.evaluated:
        bad += [f"{line} {ev.where()}".rstrip() for line in limit_problems(ev.eff)]
    assert not bad, "\n".join(bad)


def file_problems(rows: list[list[str]], ssh_keys_gid: str, config_files: set[str]) -> list[str]:
    """Owner and mode problems of /etc/ssh and of every file sshd's configuration reads."""
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
        private = (
            name == "sshd_config" or path.startswith("/etc/ssh/sshd_config.d/")
        ) or path in config_files
        if kind == "f" and private and mode & 0o077:
            bad.append(f"{path}: mode {mode_s}, want 0600 (server config readable by others)")
        if name.startswith("ssh_host_") and name.endswith("_key"):
            group_ok = gid == ssh_keys_gid and not mode & 0o037  # EL: root:ssh_keys 0640
            if mode & 0o077 and not group_ok:
                bad.append(f"{path}: private host key mode {mode_s}")
    return bad


@check(
    "ssh-files",
    "/etc/ssh and every configuration file sshd reads (and their folders) root-owned, not "
    "group/other-writable; server config and keys private",
)
def test_files(sshd_state: SshdState) -> None:
    rows = sshd_state.file_rows
    assert any(r[4] == "/etc/ssh" for r in rows), f"find listed no /etc/ssh: {rows[:5]}"
    config_files = {f for files in sshd_state.config_files.values() for f in files}
    bad = file_problems(rows, sshd_state.ssh_keys_gid, config_files)
    assert not bad, "\n".join(bad)


def _parents(path: str) -> list[str]:
    out = []
    while path not in ("/", ""):
        path = posixpath.dirname(path)
        out.append(path)
    return out


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
    if eff.get("gssapiauthentication", "no") != "no":  # a Kerberos ticket logs in: a KDC's trust
        bad.append(f"gssapiauthentication {eff['gssapiauthentication']} (want no){where}")
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
def test_trust(sshd_state: SshdState) -> None:
    bad = []
    for ev in sshd_state.evaluated:
        where = f" {ev.invocation.label()}" if len(sshd_state.config_files) > 1 else ""
        bad += [line + where for line in trust_problems(ev.eff, ev.ctx)]
    assert not bad, "sshd trusts more than the user's own keys:\n" + "\n".join(bad)


@check("ssh-moduli", "no Diffie-Hellman group under 3072 bits for group exchange")
def test_moduli(sshd_state: SshdState) -> None:
    readable, text = sshd_state.moduli
    is_link = text.startswith("link\n")
    if not readable:  # sshd then uses its built-in groups (2048+ bits, RFC 3526)
        assert not is_link, "/etc/ssh/moduli is a symbolic link to nothing"
        return
    text = text.removeprefix("link\n")
    lines = [
        line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert lines, "/etc/ssh/moduli lists no group: group exchange would fail"
    weak = sorted({int(f[4]) + 1 for f in lines if len(f) >= 5 and int(f[4]) < MIN_MODULI_BITS})
    assert not weak, f"/etc/ssh/moduli has weak groups: {', '.join(map(str, weak))} bits"
