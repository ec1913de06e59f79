"""sudo's effective policy, as sudo's own parser reads it (`cvtsudoers -f json`: every
@include and @includedir followed, aliases kept), judged against the template's policy.

The policy: root and the distribution's admin groups (sudo, wheel, admin) may run commands as
others, after authenticating; on a clone, the seed's user keeps the grant cloud-init wrote for
it. No other grant, no Defaults that switch authentication off or let the caller's environment
reach root. A Defaults-only file (use_pty, logfile) is sound and passes.

Pure: the checks pass cvtsudoers' JSON.
"""

from __future__ import annotations

import json
from typing import Any

ADMIN_GROUPS = frozenset({"sudo", "wheel", "admin"})
# Environment variables that change what a program run as root loads or executes.
DANGEROUS_ENV = frozenset(
    {
        "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "PYTHONPATH", "PYTHONSTARTUP",
        "PERL5LIB", "PERL5OPT", "RUBYLIB", "RUBYOPT", "NODE_OPTIONS", "BASH_ENV", "ENV",
        "SHELLOPTS", "PS4", "GCONV_PATH", "IFS",
    }
)  # fmt: skip


class SudoersError(ValueError):
    """cvtsudoers' output is not the JSON it documents."""


def load(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise SudoersError(f"cvtsudoers printed no JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SudoersError("cvtsudoers' JSON is not an object")
    return data


def _who(entry: dict[str, Any], aliases: dict[str, Any], depth: int = 0) -> list[str]:
    """A User_List entry as names: `root`, `%group`, `ALL`, `#uid`, `+netgroup` (aliases
    expanded)."""
    if "useralias" in entry and depth < 8:
        return [w for e in aliases.get(entry["useralias"], []) for w in _who(e, aliases, depth + 1)]
    if "username" in entry:
        return [str(entry["username"])]
    if "usergroup" in entry:
        return [f"%{entry['usergroup']}"]
    if "userid" in entry:
        return [f"#{entry['userid']}"]
    if "netgroup" in entry:
        return [f"+{entry['netgroup']}"]
    if "nonunixgroup" in entry:
        return [f"%:{entry['nonunixgroup']}"]
    return [json.dumps(entry, sort_keys=True)]


def _options(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        for key, value in item.items():
            if key != "operation":
                out[key] = value
    return out


def _commands(spec: dict[str, Any]) -> list[str]:
    out = []
    for c in spec.get("Commands", []):
        if c.get("negated"):
            continue
        out.append(str(c.get("command") or c.get("cmndalias") or json.dumps(c, sort_keys=True)))
    return out


def grants(policy: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(grantee, commands, authenticates) of every positive grant in the policy."""
    aliases = policy.get("User_Aliases", {})
    out = []
    for spec in policy.get("User_Specs", []):
        grantees = [w for e in spec.get("User_List", []) for w in _who(e, aliases)]
        for cmnd in spec.get("Cmnd_Specs", []):
            commands = _commands(cmnd)
            if not commands:
                continue  # only negated commands: a restriction, not a grant
            authenticates = _options(cmnd.get("Options", [])).get("authenticate", True) is not False
            out += [(who, ", ".join(commands), authenticates) for who in grantees]
    return out


def default_findings(policy: dict[str, Any]) -> list[str]:
    """Defaults that switch authentication off or pass the caller's environment to root."""
    found = []
    aliases = policy.get("User_Aliases", {})
    for entry in policy.get("Defaults", []):
        bound = [w for e in entry.get("Binding", []) for w in _who(e, aliases)]
        scope = f"Defaults:{','.join(bound)}" if bound else "Defaults"
        if bound == ["root"]:
            continue  # root is never asked for a password anyway
        for item in entry.get("Options", []):
            for key, value in item.items():
                if key == "authenticate" and value is False:
                    found.append(f"{scope} !authenticate: no password asked")
                elif key == "env_reset" and value is False:
                    found.append(f"{scope} !env_reset: the caller's environment reaches root")
                elif key == "setenv" and value is True:
                    found.append(f"{scope} setenv: the caller may hand root any variable (sudo -E)")
                elif key in ("env_keep", "env_check") and isinstance(value, list):
                    risky = sorted(set(value) & DANGEROUS_ENV)
                    if risky and item.get("operation") != "list_remove":
                        found.append(f"{scope} {key} keeps {', '.join(risky)} for root")
    return found


def policy_findings(policy: dict[str, Any], allowed: dict[str, Any]) -> list[str]:
    """Everything in `policy` beyond the template's: grants other than root's and the admin
    groups' (with a password), unless `allowed` (cloud-init's own file for the seed's user)
    holds the very same grant; and weakening Defaults."""
    granted_by_seed = set(grants(allowed))
    found = []
    for grant in grants(policy):
        who, commands, authenticates = grant
        if grant in granted_by_seed:
            continue
        if who == "root":
            continue
        if who.startswith("%") and who[1:] in ADMIN_GROUPS:
            if not authenticates:
                found.append(f"{who} may run {commands} without a password (NOPASSWD)")
            continue
        note = "" if authenticates else " without a password (NOPASSWD)"
        found.append(f"{who} may run {commands} as another user{note}")
    return found + default_findings(policy)


def front_end_findings(sudo_conf: str, nsswitch_sudoers: str, other_tools: str) -> list[str]:
    """How sudo gets its policy, and other tools that grant root: a policy plugin other than
    sudoers.so, sudoers from a directory (nsswitch `sudoers:` beyond files), doas."""
    found = []
    for raw in sudo_conf.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) >= 3 and words[0] == "Plugin" and words[1] == "sudoers_policy":
            if words[2].rsplit("/", 1)[-1] != "sudoers.so":
                found.append(f"/etc/sudo.conf: the policy plugin is {words[2]}, not sudoers.so")
            files = [w.split("=", 1)[1] for w in words[3:] if w.startswith("sudoers_file=")]
            if files and files[0] != "/etc/sudoers":
                found.append(f"/etc/sudo.conf: sudo reads its policy from {files[0]}")
        elif len(words) >= 3 and words[0] == "Plugin" and words[1].endswith("_policy"):
            found.append(f"/etc/sudo.conf: another policy plugin {words[1]} ({words[2]})")
    sources = nsswitch_sudoers.split(":", 1)[-1].split() if nsswitch_sudoers.strip() else []
    extra = [src for src in sources if src != "files" and not src.startswith("[")]
    if extra:
        found.append(f"nsswitch.conf: sudoers also come from {', '.join(extra)}")
    for path in other_tools.split():
        found.append(f"{path}: another tool that grants root (the template ships none)")
    return found
