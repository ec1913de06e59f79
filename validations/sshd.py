"""The effective sshd configuration, as sshd itself computes it, for every connection that matters.

`sshd -T` prints the configuration after drop-ins (first value wins), but ignores `Match`
blocks; `sshd -T -C user=,host=,addr=` evaluates them for one connection. So the checks ask
for the default connection, for root and the check user, and for one connection that
satisfies each `Match` block found in sshd_config and its drop-ins. The parsing is pure, so
it is unit-tested without a VM (tests/unit/test_validations_sshd.py).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Any

from validations.conftext import uncommented

DEFAULT_ADDR = "192.0.2.10"  # TEST-NET-1: an address no Match block names by accident
DEFAULT_HOST = "client.example.invalid"

# Algorithms the policy accepts (dev-sec ssh-baseline's strong sets; see 20-ssh-hardening.sh).
STRONG_CIPHERS = frozenset(
    {
        "chacha20-poly1305@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-ctr",
        "aes192-ctr",
        "aes128-ctr",
    }
)
# NIST-curve key exchange and non-ETM SHA-2 MACs are accepted: a FIPS-style policy requires
# them and neither is broken (docs/checks/policy.md); SHA-1, MD5, CBC, small groups are not.
STRONG_KEX = frozenset(
    {
        "sntrup761x25519-sha512@openssh.com",
        "sntrup761x25519-sha512",
        "mlkem768x25519-sha256",
        "mlkem768nistp256-sha256",
        "mlkem1024nistp384-sha384",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
    }
)
STRONG_MACS = frozenset(
    {
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "umac-128-etm@openssh.com",
        "hmac-sha2-512",
        "hmac-sha2-256",
    }
)
# Signature algorithms (user keys, host keys, CAs): no SHA-1 RSA (`ssh-rsa`), no DSA.
_KEY_BASES = (
    "ssh-ed25519",
    "sk-ssh-ed25519@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
)
STRONG_KEY_ALGORITHMS = frozenset(
    {*_KEY_BASES} | {b.replace("@openssh.com", "") + "-cert-v01@openssh.com" for b in _KEY_BASES}
)
# sshd -T keywords of each algorithm family, with the set each value must stay within.
ALGORITHM_POLICY: tuple[tuple[str, frozenset[str]], ...] = (
    ("ciphers", STRONG_CIPHERS),
    ("kexalgorithms", STRONG_KEX),
    ("macs", STRONG_MACS),
    ("pubkeyacceptedalgorithms", STRONG_KEY_ALGORITHMS),
    ("hostkeyalgorithms", STRONG_KEY_ALGORITHMS),
    ("casignaturealgorithms", STRONG_KEY_ALGORITHMS),
    ("hostbasedacceptedalgorithms", STRONG_KEY_ALGORITHMS),
)
ALIASES = {"pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
           "hostbasedacceptedkeytypes": "hostbasedacceptedalgorithms"}  # fmt: skip
# Pseudo-algorithms that signal extensions, not ciphers.
_PSEUDO = re.compile(r"^(ext-info-[cs]|kex-strict-[cs]-v00@openssh\.com)$")


def parse_effective(text: str) -> dict[str, str]:
    """`sshd -T` output -> {lowercase keyword: value}; repeated keywords are joined by newlines.
    OpenSSH before 8.5 names two keywords differently; they are reported under today's names."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, _, value = line.partition(" ")
        key = ALIASES.get(key.lower(), key.lower())
        out[key] = f"{out[key]}\n{value}" if key in out else value
    return out


def algorithms(value: str) -> list[str]:
    """A comma list of algorithms without the extension pseudo-algorithms."""
    return [a for a in value.split(",") if a and not _PSEUDO.match(a)]


@dataclass(frozen=True)
class Context:
    """One connection for `sshd -T -C`; `why` says which Match block it stands for."""

    user: str
    addr: str = DEFAULT_ADDR
    host: str = DEFAULT_HOST
    laddr: str | None = None
    lport: int | None = None
    why: str = "default"
    # `Match Group G` whose group has no member: the check makes a throwaway member of G in
    # the disposable clone for this one evaluation (sshd resolves groups through NSS).
    temp_group: str | None = None

    def spec(self) -> str:
        parts = [f"user={self.user}", f"host={self.host}", f"addr={self.addr}"]
        if self.laddr:
            parts.append(f"laddr={self.laddr}")
        if self.lport:
            parts.append(f"lport={self.lport}")
        return ",".join(parts)


def _sample_address(pattern: str) -> str | None:
    """An address that matches one Address/LocalAddress pattern (CIDR or wildcard)."""
    pattern = pattern.strip()
    if not pattern or pattern.startswith("!"):
        return None
    try:
        net = ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        if "*" in pattern or "?" in pattern:
            return pattern.replace("*", "1").replace("?", "1")
        return pattern
    if net.num_addresses > 2:
        return str(next(net.hosts()))
    return str(net.network_address)


def _sample_name(pattern: str) -> str | None:
    pattern = pattern.strip()
    if not pattern or pattern.startswith("!"):
        return None
    return pattern.replace("*", "x").replace("?", "x")


def match_lines(config: str) -> list[str]:
    """The criteria of every Match line of one config file (comments and case ignored)."""
    out = []
    for raw in config.splitlines():
        line = uncommented(raw)
        if re.match(r"(?i)^match\s", line):
            out.append(line.split(None, 1)[1])
    return out


TEMP_USER = "xcheck-match"  # the throwaway member of a group no account is in


def members(passwd: str, group: str) -> dict[str, list[str]]:
    """Every group's members from `getent group` and `getent passwd` (primary groups count:
    sshd's Match Group tests both)."""
    out: dict[str, list[str]] = {}
    gid_name: dict[str, str] = {}
    for line in group.splitlines():
        fields = line.split(":")
        if len(fields) >= 4:
            gid_name[fields[2]] = fields[0]
            out.setdefault(fields[0], []).extend(m for m in fields[3].split(",") if m)
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[3] in gid_name:
            name = gid_name[fields[3]]
            if fields[0] not in out[name]:
                out[name].append(fields[0])
    return out


def contexts(
    configs: list[str],
    login_users: list[str],
    group_members: dict[str, list[str]],
    check_user: str,
) -> list[Context]:
    """Connections that together exercise the default and every Match block of `configs`."""
    found: list[Context] = [Context(user=check_user), Context(user="root")]
    found += [Context(user=u, why=f"login user {u}") for u in login_users]
    for criteria in (c for text in configs for c in match_lines(text)):
        try:
            words = shlex.split(criteria)
        except ValueError:
            words = criteria.split()
        ctx: dict[str, Any] = {"user": check_user, "why": f"Match {criteria}"}
        for word, value in zip(words[::2], words[1::2], strict=False):
            key = word.lower()
            first = next((v for v in value.split(",") if v and not v.startswith("!")), "")
            if key == "user":
                ctx["user"] = _sample_name(first) or check_user
            elif key == "group":
                group = next((g for g in group_members if fnmatch.fnmatchcase(g, first)), None)
                if group is None:
                    continue  # no such group: no connection can match it
                people = group_members[group]
                if people:
                    ctx["user"] = people[0]
                else:
                    ctx["user"], ctx["temp_group"] = TEMP_USER, group
            elif key == "host":
                ctx["host"] = _sample_name(first) or DEFAULT_HOST
            elif key == "address":
                ctx["addr"] = _sample_address(first) or DEFAULT_ADDR
            elif key == "localaddress":
                ctx["laddr"] = _sample_address(first)
            elif key == "localport" and first.isdigit():
                ctx["lport"] = int(first)
        found.append(Context(**ctx))
    unique: dict[str, Context] = {}
    for c in found:
        unique.setdefault(c.spec(), c)
    return list(unique.values())


def violations(
    eff: dict[str, str], rules: dict[str, set[str]], ctx: Context | None = None
) -> list[str]:
    """Each keyword whose effective value is not one of the allowed values, one line each."""
    where = f" [{ctx.why}: {ctx.spec()}]" if ctx else ""
    bad = []
    for key, allowed in rules.items():
        value = eff.get(key)
        if value is None:
            bad.append(f"{key}: not reported by sshd -T{where}")
        elif value.lower() not in allowed:
            bad.append(f"{key} {value} (want {' or '.join(sorted(allowed))}){where}")
    return bad


# -- how sshd is started: the running daemons and the units that start one ----------------------

# Options that change what sshd reads or how it is configured; the rest (-D, -e, -i, -d...) do
# not change the configuration `sshd -T` reports.
_CONFIG_OPTS_WITH_VALUE = frozenset("fochp")  # -f file, -o option, -c cert, -h hostkey, -p port
_OTHER_OPTS_WITH_VALUE = frozenset("ECgkbu")  # log file, ..., never configuration
_LISTENER = re.compile(r"^sshd: (?P<args>.+?) \[listener\]")
_ARGV = re.compile(r"argv\[\]=(?P<argv>.*?) ; ignore_errors")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
DEFAULT_CONFIG = "/etc/ssh/sshd_config"


@dataclass(frozen=True)
class Invocation:
    """One way sshd runs: the options that shape its configuration, and who starts it."""

    options: tuple[str, ...]  # e.g. ("-f", "/etc/ssh/alt", "-o", "PasswordAuthentication=yes")
    source: str  # "the running daemon pid 470" / "ssh.service ExecStart"
    pid: str = ""  # of a running daemon

    @property
    def config_file(self) -> str:
        opts = list(self.options)
        for flag, value in zip(opts[::2], opts[1::2], strict=False):
            if flag == "-f":
                return value
        return DEFAULT_CONFIG

    def label(self) -> str:
        return f"{self.source}: sshd {' '.join(self.options) or '(defaults)'}"


def config_options(argv: list[str]) -> tuple[str, ...]:
    """The options of an sshd command line that shape its configuration, as pairs
    (`-oKey=value` and `-f/etc/x` spelled apart), in order."""
    out: list[str] = []
    i = 1
    while i < len(argv):
        word = argv[i]
        i += 1
        if not word.startswith("-") or word == "-":
            continue
        flags = word[1:]
        for pos, flag in enumerate(flags):
            if flag in _CONFIG_OPTS_WITH_VALUE or flag in _OTHER_OPTS_WITH_VALUE:
                value = flags[pos + 1 :]
                if not value and i < len(argv):
                    value = argv[i]
                    i += 1
                if flag in _CONFIG_OPTS_WITH_VALUE:
                    out += [f"-{flag}", value]
                break
    return tuple(out)


def listeners(ps_args: str) -> list[Invocation]:
    """Running sshd daemons, from `ps -eo pid=,args=`: OpenSSH titles its listener
    `sshd: <the command line it was started with> [listener] ...`, after the shell and systemd
    expanded every variable, so this is exactly what the daemon was told."""
    found = []
    for line in ps_args.splitlines():
        pid, _, title = line.strip().partition(" ")
        match = _LISTENER.match(title.strip())
        if match:
            argv = match.group("args").split()
            found.append(
                Invocation(config_options(argv), f"the running daemon (pid {pid})", pid=pid)
            )
    return found


def env_files(unit: dict[str, str]) -> list[tuple[str, bool]]:
    """(path, optional) of each EnvironmentFiles entry (`-` / ignore_errors=yes: optional)."""
    out = []
    for line in unit.get("EnvironmentFiles", "").splitlines():
        path, _, rest = line.strip().partition(" ")
        if path:
            out.append((path.lstrip("-"), "ignore_errors=yes" in rest))
    return out


def parse_env_file(text: str) -> dict[str, str]:
    """A systemd EnvironmentFile (shell-like KEY=value lines; quotes removed)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        try:
            words = shlex.split(value, comments=True)
        except ValueError:
            words = [value]
        out[key.strip().removeprefix("export ").strip()] = " ".join(words)
    return out


def unit_invocations(units: list[dict[str, str]], files: dict[str, str]) -> list[Invocation]:
    """Every ExecStart of a unit that runs sshd, with systemd's variable expansion: `$VAR` as a
    word splits on blanks, `${VAR}` stays one word; Environment= wins over EnvironmentFiles."""
    found = []
    for unit in units:
        for line in unit.get("ExecStart", "").splitlines():
            match = _ARGV.search(line)
            if not match:
                continue
            argv = match.group("argv").split()
            if not argv or posixpath.basename(argv[0]) != "sshd":
                continue
            env: dict[str, str] = {}
            for path, _optional in env_files(unit):
                env.update(parse_env_file(files.get(path, "")))
            for assignment in shlex.split(unit.get("Environment", "")):
                key, _, value = assignment.partition("=")
                env[key] = value
            expanded = _expand(argv, env)
            found.append(Invocation(config_options(expanded), f"{unit.get('Id', '?')} ExecStart"))
    return found


def _expand(argv: list[str], env: dict[str, str]) -> list[str]:
    expanded: list[str] = []
    for word in argv:
        whole = re.fullmatch(r"\$(\w+)", word)
        if whole:
            expanded += env.get(whole.group(1), "").split()
        else:
            expanded.append(_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), word))
    return expanded


def unique_invocations(found: list[Invocation]) -> list[Invocation]:
    """One per distinct set of options (a unit and its running daemon are usually the same)."""
    seen: dict[tuple[str, ...], Invocation] = {}
    # a unit's ExecStart and the daemon it started are one way in: keep the daemon's record
    for inv in found:
        seen.setdefault(inv.options, inv)
    return list(seen.values())
