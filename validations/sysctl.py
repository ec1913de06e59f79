"""Kernel parameters as the kernel applies them, for every key the template's hardening sets
and for the per-interface keys whose `all` value alone does not decide.

Two sources, no hand list of keys beside them:
- the template's own hardening file (packer/files/sysctl.d/, installed by
  30-system-hardening.sh): each key it sets, globs expanded against the clone's keys, must hold
  on the clone, so a later file, unit or script that undoes one is caught whatever its name;
- the kernel's rules for interface-level keys (Documentation/networking/ip-sysctl.rst):
  `accept_redirects`, `send_redirects`, `secure_redirects` and `log_martians` are on for an
  interface when the `all` OR the interface value is; `accept_source_route` when both are;
  `rp_filter` is the larger of the two; IPv4 `forwarding` and every IPv6 key here are per
  interface. An interface that existed before systemd-sysctl ran keeps the kernel's defaults
  unless a glob covers it.

Pure: the caller passes `sysctl -a` output.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

# Interfaces whose redirects and forwarding do not reach the network.
SKIP_INTERFACES = frozenset({"all", "default", "lo"})


def parse_sysctl_a(text: str) -> dict[str, str]:
    """`sysctl -a` output -> {key: value}; keys use dots, values are stripped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            out[key.strip()] = " ".join(value.split())
    return out


def parse_conf(text: str) -> dict[str, str]:
    """A sysctl.d file -> {key or glob: value}, as systemd-sysctl reads it (`-` ignored,
    `/` separators as dots, `;` and `#` comments)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip().lstrip("-").replace("/", ".")
        out[key] = " ".join(value.split())
    return out


def _interfaces(values: dict[str, str], family: str) -> list[str]:
    prefix = f"net.{family}.conf."
    names = {k[len(prefix) :].rsplit(".", 1)[0] for k in values if k.startswith(prefix)}
    return sorted(n for n in names if n not in SKIP_INTERFACES)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class InterfaceRule:
    """One per-interface key: how the kernel combines `all` and the interface, and what the
    combination must be."""

    family: str  # ipv4, ipv6
    key: str
    combine: str  # or, and, max, iface
    want: frozenset[int]

    def effective(self, all_value: int, iface_value: int, forwarding: int) -> int:
        if self.combine == "or":
            return int(bool(all_value or iface_value))
        if self.combine == "and":
            return int(bool(all_value and iface_value))
        if self.combine == "max":
            return max(all_value, iface_value)
        if self.combine == "redirects":  # accept_redirects: AND when forwarding, else OR
            both = all_value and iface_value
            return int(bool(both if forwarding else (all_value or iface_value)))
        return iface_value


INTERFACE_RULES = (
    InterfaceRule("ipv4", "accept_redirects", "redirects", frozenset({0})),
    InterfaceRule("ipv4", "secure_redirects", "or", frozenset({0})),
    InterfaceRule("ipv4", "send_redirects", "or", frozenset({0})),
    InterfaceRule("ipv4", "accept_source_route", "and", frozenset({0})),
    InterfaceRule("ipv4", "rp_filter", "max", frozenset({1})),
    InterfaceRule("ipv4", "forwarding", "iface", frozenset({0})),
    InterfaceRule("ipv6", "forwarding", "iface", frozenset({0})),
    InterfaceRule("ipv6", "accept_redirects", "iface", frozenset({0})),
    InterfaceRule("ipv6", "accept_source_route", "iface", frozenset({0})),
)
# Keys where a higher value is stricter (the kernel's documentation): a clone may be stricter
# than the template's file; only a weaker value fails.
HIGHER_IS_STRICTER = frozenset(
    {
        "kernel.kptr_restrict", "kernel.dmesg_restrict", "kernel.yama.ptrace_scope",
        "kernel.perf_event_paranoid", "kernel.unprivileged_bpf_disabled",
        "fs.protected_fifos", "fs.protected_regular", "fs.protected_hardlinks",
        "fs.protected_symlinks", "kernel.randomize_va_space", "net.core.bpf_jit_harden",
    }
)  # fmt: skip
# Scalar keys every template must hold whatever its own file says (linux-baseline's floor).
FLOOR: dict[str, frozenset[int]] = {
    "net.ipv4.ip_forward": frozenset({0}),
    "net.ipv6.conf.all.forwarding": frozenset({0}),
    "net.ipv4.tcp_syncookies": frozenset({1}),
    "kernel.randomize_va_space": frozenset({2}),
    "fs.protected_hardlinks": frozenset({1}),
    "fs.protected_symlinks": frozenset({1}),
    "fs.suid_dumpable": frozenset({0, 2}),
}
# Kernel defaults of every distribution of the fleet that a late file, unit or script could
# weaken although the template's file does not name them: each must stay at least this strict
# (Debian and Ubuntu ship perf_event_paranoid 3-4 and unprivileged_bpf_disabled 2, EL and
# Fedora 2 and 2; mmap_min_addr 4096 or 65536). 0 or -1 reopen known exploit paths: NULL
# dereferences mapped from user space, unprivileged eBPF, perf events of other users.
MINIMUM: dict[str, int] = {
    "vm.mmap_min_addr": 4096,
    "kernel.perf_event_paranoid": 2,
    "kernel.unprivileged_bpf_disabled": 1,
}


def ipv6_absent(values: dict[str, str]) -> bool:
    """No `net.ipv6` key at all: the kernel runs without IPv6 (`ipv6.disable=1` on its command
    line), which holds every IPv6 key at its strictest (nothing forwarded, redirected or routed
    by source over IPv6); those keys are then satisfied, not missing."""
    return not any(key.startswith("net.ipv6.") for key in values)


def _moot(key: str, no_ipv6: bool) -> bool:
    """An IPv6 key on a kernel without IPv6 (`ipv6_absent`, decided once per judgement)."""
    return no_ipv6 and key.startswith("net.ipv6.")


def interface_problems(values: dict[str, str]) -> list[str]:
    """Each interface whose effective value of a per-interface key is not wanted."""
    bad = []
    for rule in INTERFACE_RULES:
        conf = f"net.{rule.family}.conf"
        all_value = _int(values.get(f"{conf}.all.{rule.key}"))
        for iface in _interfaces(values, rule.family):
            iface_value = _int(values.get(f"{conf}.{iface}.{rule.key}"))
            if iface_value is None or all_value is None:
                continue
            forwarding = _int(values.get(f"{conf}.{iface}.forwarding")) or 0
            eff = rule.effective(all_value, iface_value, forwarding)
            if eff not in rule.want:
                bad.append(
                    f"{rule.family} {rule.key} is {eff} on {iface} ({conf}.all.{rule.key} = "
                    f"{all_value}, {conf}.{iface}.{rule.key} = {iface_value}; want "
                    f"{' or '.join(map(str, sorted(rule.want)))})"
                )
    return bad


def template_problems(values: dict[str, str], promised: dict[str, str], source: str) -> list[str]:
    """Each key the template's file sets (globs expanded) whose value on the clone differs."""
    bad = []
    no_ipv6 = ipv6_absent(values)
    for pattern, want in promised.items():
        if _moot(pattern, no_ipv6):
            continue
        keys = (
            [k for k in values if fnmatch.fnmatchcase(k, pattern)] if "*" in pattern else [pattern]
        )
        if not keys or all(k not in values for k in keys):
            bad.append(f"{pattern}: set by {source} but the kernel has no such key")
            continue
        for key in keys:
            got = values.get(key)
            if got == want:
                continue
            if key in HIGHER_IS_STRICTER and (_int(got) or 0) > (_int(want) or 0):
                continue
            bad.append(f"{key} = {got} (the template's {source} sets {want})")
    return bad


def floor_problems(values: dict[str, str]) -> list[str]:
    bad = []
    no_ipv6 = ipv6_absent(values)
    for key, want in FLOOR.items():
        if _moot(key, no_ipv6):
            continue
        got = _int(values.get(key))
        if got not in want:
            bad.append(f"{key} = {values.get(key)} (want {' or '.join(map(str, sorted(want)))})")
    for key, least in MINIMUM.items():
        value = _int(values.get(key))
        if key in values and (value is None or value < least):
            bad.append(f"{key} = {values[key]} (want {least} or stricter: a kernel default undone)")
    return bad


def problems(values: dict[str, str], promised: dict[str, str], source: str) -> list[str]:
    """Everything wrong with the clone's kernel parameters, one line each, without repeats."""
    if not values:
        return ["sysctl -a printed nothing"]
    found: list[str] = []
    checks: tuple[Callable[[], list[str]], ...] = (
        lambda: floor_problems(values),
        lambda: template_problems(values, promised, source),
        lambda: interface_problems(values),
    )
    for get in checks:
        found += [line for line in get() if line not in found]
    return found
