"""PAM's authentication stacks, judged by how libpam walks them, not by grepping for a module.

Debian's own common-auth ends in `auth required pam_permit.so`, and that is sound: a failed
pam_unix jumps to nothing and hits `requisite pam_deny.so` first. Whether pam_permit (or any
module) opens a door depends on the control flow, so this module parses a service the way
libpam does (`@include`, `include`, `substack`, `[value=action]` controls, jumps, the `other`
fallback) and walks every outcome each module could return, with the rules of libpam's
`_pam_dispatch_aux` (libpam/pam_dispatch.c). A service is unsafe when some walk ends in
PAM_SUCCESS although no credential module (pam_unix, pam_sss, ...) returned success on it: the
stack lets someone in without a credential. `nullok` counts as such a walk, since pam_unix then
succeeds for an account with an empty password.

Pure: the caller passes a reader for service files (the offline image's, in the checks).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

SERVICE_DIRS = ("/etc/pam.d", "/usr/lib/pam.d")  # libpam's vendor folder, when /etc has none

# PAM return values by the names `[value=action]` controls use (pam(3), pam.conf(5)).
SUCCESS = "success"
IGNORE = "ignore"
NEW_AUTHTOK = "new_authtok_reqd"
FAILURES = (
    "open_err", "symbol_err", "service_err", "system_err", "buf_err", "perm_denied",
    "auth_err", "cred_insufficient", "authinfo_unavail", "user_unknown", "maxtries",
    "acct_expired", "session_err", "cred_unavail", "cred_expired", "cred_err",
    "no_module_data", "conv_err", "authtok_err", "authtok_recover_err", "authtok_lock_busy",
    "authtok_disable_aging", "try_again", "abort", "authtok_expired", "module_unknown",
    "bad_item", "conv_again", "incomplete",
)  # fmt: skip
ALL_VALUES = (SUCCESS, IGNORE, NEW_AUTHTOK, *FAILURES)

# Modules that authenticate by a credential: their success is what a password check means.
CREDENTIAL_MODULES = frozenset(
    {
        "pam_unix", "pam_unix2", "pam_sss", "pam_ldap", "pam_krb5", "pam_winbind",
        "pam_pwdb", "pam_userdb", "pam_google_authenticator", "pam_u2f", "pam_yubico",
        "pam_oath", "pam_radius_auth", "pam_fprintd", "pam_p11", "pam_pkcs11", "pam_tacplus",
    }
)  # fmt: skip
# What a module can return when a non-root user authenticates. pam_rootok succeeds only for a
# caller that is root already, so it never lets a user in.
ALWAYS = {"pam_permit": (SUCCESS,), "pam_deny": ("auth_err",), "pam_rootok": ("perm_denied",)}
# A credential module's success without a credential: pam_unix with nullok, for an account
# whose password field is empty.
NO_CREDENTIAL = "success-without-credential"

_KEYWORDS = {
    # pam_handlers.c: the four keywords as [value=action] maps, default = the last action
    "required": ({SUCCESS: "ok", NEW_AUTHTOK: "ok", IGNORE: "ignore"}, "bad"),
    "requisite": ({SUCCESS: "ok", NEW_AUTHTOK: "ok", IGNORE: "ignore"}, "die"),
    "optional": ({SUCCESS: "ok", NEW_AUTHTOK: "ok"}, "ignore"),
    "sufficient": ({SUCCESS: "done", NEW_AUTHTOK: "done"}, "ignore"),
}


@dataclass(frozen=True)
class Rule:
    """One module line of a stack, after includes were resolved."""

    module: str  # pam_unix (no folder, no .so)
    args: tuple[str, ...]
    actions: dict[str, str] = field(hash=False, compare=False)
    level: int  # substack depth
    where: str  # file:line, for the message

    def outcomes(self) -> tuple[str, ...]:
        if self.module in ALWAYS:
            return ALWAYS[self.module]
        base: tuple[str, ...] = (SUCCESS, IGNORE, NEW_AUTHTOK, *FAILURES)
        if self.module in CREDENTIAL_MODULES and "nullok" in self.args:
            return (*base, NO_CREDENTIAL)
        return base


class PamSyntaxError(ValueError):
    """A line libpam would refuse; libpam then fails the whole stack (PAM_HT_MUST_FAIL)."""


def _module_name(path: str) -> str:
    return re.sub(r"\.so(\.\d+)*$", "", posixpath.basename(path))


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined and comments removed, with line numbers."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = raw.split("#", 1)[0] if not pending else raw
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined = (pending + line).strip()
        pending = ""
        if joined:
            out.append((start, joined))
    return out


def _split(line: str) -> list[str]:
    """Words of a line; a bracketed control (`[a=b c=d]`) and bracketed args stay whole."""
    words, current, depth = [], "", 0
    for ch in line:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch.isspace() and depth == 0:
            if current:
                words.append(current)
            current = ""
        else:
            current += ch
    if current:
        words.append(current)
    return words


def parse_control(control: str) -> dict[str, str]:
    """A control field as {return value: action}; `default` holds the rest."""
    if control in _KEYWORDS:
        mapping, default = _KEYWORDS[control]
        return {**mapping, "default": default}
    if not (control.startswith("[") and control.endswith("]")):
        raise PamSyntaxError(f"unknown control {control!r}")
    actions: dict[str, str] = {}
    for pair in control[1:-1].split():
        value, sep, action = pair.partition("=")
        if not sep:
            raise PamSyntaxError(f"control {control!r}: {pair!r} is not value=action")
        actions[value.lower()] = action.lower()
    actions.setdefault("default", "bad")  # pam_handlers.c: unset values are 'bad'
    return actions


ReadService = Callable[[str], str | None]


def stack(service: str, kind: str, read: ReadService, level: int = 0, depth: int = 0) -> list[Rule]:
    """The `kind` (auth, account, ...) rules of a service, includes and substacks resolved."""
    if depth > 16:
        raise PamSyntaxError(f"{service}: includes nest too deep (a loop?)")
    text = read(service)
    if text is None:
        raise PamSyntaxError(f"{service}: no such PAM service file")
    rules: list[Rule] = []
    for number, line in _logical_lines(text):
        where = f"{service}:{number}"
        if line.startswith("@include"):
            target = line.split(None, 1)[1].strip() if " " in line else ""
            rules += stack(target, kind, read, level, depth + 1)  # all its lines, same level
            continue
        words = _split(line)
        if len(words) < 3:
            raise PamSyntaxError(f"{where}: {line!r} has no module")
        ltype, control, path, *args = words
        if ltype.lstrip("-").lower() != kind:
            continue
        if control in ("include", "substack"):
            inner = level + (1 if control == "substack" else 0)
            rules += stack(path, kind, read, inner, depth + 1)
            continue
        rules.append(Rule(_module_name(path), tuple(args), parse_control(control), level, where))
    return rules


def _action(rule: Rule, value: str) -> str:
    key = SUCCESS if value == NO_CREDENTIAL else value
    return rule.actions.get(key, rule.actions["default"])


@dataclass(frozen=True)
class _State:
    """libpam's running verdict: impression (-1, 0, +1) and status, the states saved on
    entering each substack (for `reset`), and whether a credential module succeeded."""

    impression: int
    status: str
    saved: tuple[tuple[int, int, str], ...]
    credential: bool


def _step(rules: list[Rule], i: int, state: _State, value: str) -> tuple[int, _State]:
    """Module `i` returned `value`: the next module to run and the new state
    (_pam_dispatch_aux's switch on the action)."""
    rule = rules[i]
    ret = SUCCESS if value == NO_CREDENTIAL else value
    action = _action(rule, value)
    imp, st, nxt = state.impression, state.status, i + 1
    saved = {lvl: (im, stt) for lvl, im, stt in state.saved}
    if rule.level > (rules[i - 1].level if i else 0):  # entering a substack: remember
        saved[rule.level] = (imp, st)
    if action == "reset":
        imp, st = saved.get(rule.level, (0, "perm_denied"))
    elif action in ("ok", "done"):
        if (imp == 0 or (imp > 0 and st == SUCCESS)) and ret != IGNORE:
            imp, st = 1, ret
        if action == "done" and imp > 0:
            nxt = _end_of_level(rules, i, rule.level)
    elif action in ("bad", "die"):
        if imp >= 0:
            imp, st = -1, ("perm_denied" if ret == IGNORE else ret)
        if action == "die":
            nxt = _end_of_level(rules, i, rule.level)
    elif action.isdigit():
        target = _jump(rules, i, rule.level, int(action))
        if target is None:  # a jump past the end: libpam fails the stack
            imp, st, nxt = -1, "perm_denied", len(rules)
        else:
            nxt = target
    elif action != IGNORE:  # an unknown action: libpam refuses the line, the stack fails
        imp, st = -1, "perm_denied"
    credential = state.credential or (value == SUCCESS and rule.module in CREDENTIAL_MODULES)
    frozen = tuple(sorted((lvl, im, stt) for lvl, (im, stt) in saved.items()))
    return nxt, _State(imp, st, frozen, credential)


def bypasses(rules: list[Rule], limit: int = 5) -> list[str]:
    """Walks of the stack that end in PAM_SUCCESS with no credential module's success on them,
    each as the modules that returned success, in order ([] when none)."""
    found: list[str] = []
    seen: set[tuple[int, _State]] = set()
    todo: list[tuple[int, _State, tuple[str, ...]]] = [
        (0, _State(0, "perm_denied", ((0, 0, "perm_denied"),), False), ())
    ]
    while todo and len(found) < limit:
        i, state, path = todo.pop()
        if (i, state) in seen:
            continue
        seen.add((i, state))
        if i >= len(rules):
            if state.status == SUCCESS and state.impression > 0 and not state.credential:
                walk = " -> ".join(path) or "(no module)"
                if walk not in found:
                    found.append(walk)
            continue
        rule = rules[i]
        for value in rule.outcomes():
            nxt, after = _step(rules, i, state, value)
            label = f"{rule.module}({rule.where}{', nullok' if value == NO_CREDENTIAL else ''})"
            succeeded = value in (SUCCESS, NO_CREDENTIAL)
            todo.append((nxt, after, (*path, label) if succeeded else path))
    return found


def _end_of_level(rules: list[Rule], i: int, level: int) -> int:
    """The index after the rest of the current (sub)stack: where done/die continue."""
    j = i + 1
    while j < len(rules) and rules[j].level >= level:
        j += 1
    return j


def _jump(rules: list[Rule], i: int, level: int, count: int) -> int | None:
    """Skip `count` modules of this level (a substack counts as one), as libpam does."""
    j = i
    while count > 0 and j + 1 < len(rules) and rules[j + 1].level >= level:
        j += 1
        while j + 1 < len(rules) and rules[j + 1].level > level:
            j += 1
        count -= 1
    if count:
        return None
    return j + 1


@dataclass(frozen=True)
class Finding:
    service: str
    problem: str


def audit(services: list[str], read: ReadService) -> list[Finding]:
    """Every service whose auth stack can succeed without a credential, and every `nullok`."""
    findings: list[Finding] = []
    for service in sorted(set(services) | {"other"}):
        try:
            rules = stack(service, "auth", read)
            if not rules and service != "other":  # libpam falls back to `other`'s auth rules
                rules = stack("other", "auth", read)
        except PamSyntaxError as exc:
            if service == "other" and read("other") is None:
                continue  # no `other`: libpam then has no fallback and fails closed
            findings.append(Finding(service, f"unreadable stack ({exc}): libpam fails it"))
            continue
        for rule in rules:
            if rule.module in CREDENTIAL_MODULES and "nullok" in rule.args:
                findings.append(
                    Finding(
                        service, f"{rule.where}: {rule.module} nullok (an empty password logs in)"
                    )
                )
        for walk in bypasses(rules):
            findings.append(Finding(service, f"succeeds with no credential checked: {walk}"))
    unique: dict[tuple[str, str], Finding] = {(f.service, f.problem): f for f in findings}
    return list(unique.values())
