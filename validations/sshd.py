"""The effective sshd configuration, as sshd itself computes it, for every connection that matters.

`sshd -T` prints the configuration after drop-ins (first value wins), but ignores `Match`
blocks; `sshd -T -C user=,host=,addr=` evaluates them for one connection. So the checks ask
for the default connection, for root and the check user, and for one connection that
satisfies each `Match` block found in sshd_config and its drop-ins. The parsing is pure, so
it is unit-tested without a VM (tests/unit/test_validations_sshd.py).
"""

from __future__ import annotations

import ipaddress
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
STRONG_KEX = frozenset(
    {
        "sntrup761x25519-sha512@openssh.com",
        "sntrup761x25519-sha512",
        "mlkem768x25519-sha256",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
    }
)
STRONG_MACS = frozenset(
    {"hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com"}
)
# Pseudo-algorithms that signal extensions, not ciphers.
_PSEUDO = re.compile(r"^(ext-info-[cs]|kex-strict-[cs]-v00@openssh\.com)$")


def parse_effective(text: str) -> dict[str, str]:
    """`sshd -T` output -> {lowercase keyword: value}; repeated keywords are joined by newlines."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, _, value = line.partition(" ")
        key = key.lower()
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
                members = group_members.get(first, [])
                ctx["user"] = members[0] if members else ctx["user"]
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
