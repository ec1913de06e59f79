"""PAM's authentication stacks, judged by how libpam walks them, not by grepping for a module.

Debian's own common-auth ends in `auth required pam_permit.so`, and that is sound: a failed
pam_unix jumps to nothing and hits `requisite pam_deny.so` first. Whether pam_permit (or any
module) opens a door depends on the control flow, so this module parses a service the way
libpam does and walks every outcome each module could return, with libpam's own rules:

- parsing (libpam/pam_handlers.c, pam_misc.c, pam_assemble_line.h): `#` ends a line and a
  trailing backslash continues it unless the line holds a `#`; type and control keywords are
  case-insensitive, `[value=action ...]` tokens are not (a bad token makes every action `bad`;
  `default=` fills only the values not set yet); a line libpam cannot use (no control, no
  module, unknown type, an include it cannot open, includes nested 16 deep) becomes a module
  that always fails with the line's actions (PAM_HT_MUST_FAIL), never a silent pass;
  `include` and Debian's `@include` splice a file in at the same level, `substack` one level
  down, behind a placeholder that counts as one module for jumps; a relative file name is
  looked up in /etc/pam.d, then in the vendor folder /usr/lib/pam.d;
- dispatch (libpam/pam_dispatch.c, `_pam_dispatch_aux`): impression and status, `ok`/`done`
  only while nothing failed, `bad`/`die`, jumps that count a substack as one module and fail
  the stack when they run past its end, `reset` to the state saved on entering the substack,
  `done`/`die` ending only the current substack; a service with no auth line uses `other`'s.

A service is unsafe when some walk ends in PAM_SUCCESS although no credential module
(pam_unix, pam_sss, ...) returned success on it: the stack lets someone in without a
credential. `nullok` counts as such a walk, since pam_unix then succeeds for an account with an
empty password. Every module but a few whose answer is known (pam_permit, pam_deny,
pam_rootok) may return anything, so a conditional module (pam_succeed_if, pam_wheel trust,
pam_exec, pam_localuser) that can end a stack with success is reported as a bypass.

Pure: the caller passes a reader for service files (the offline image's, in the checks).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

SERVICE_DIRS = ("/etc/pam.d", "/usr/lib/pam.d")  # libpam's order: the vendor folder second
MAX_INCLUDE_LEVEL = 16  # PAM_SUBSTACK_MAX_LEVEL

# PAM return values by the names `[value=action]` controls use, in libpam's table order
# (pam_tokens.h): a token is matched by prefix in this order, case-sensitively.
SUCCESS = "success"
IGNORE = "ignore"
NEW_AUTHTOK = "new_authtok_reqd"
MUST_FAIL = "perm_denied"  # PAM_MUST_FAIL_CODE
RETURN_NAMES = (
    "success", "open_err", "symbol_err", "service_err", "system_err", "buf_err",
    "perm_denied", "auth_err", "cred_insufficient", "authinfo_unavail", "user_unknown",
    "maxtries", "new_authtok_reqd", "acct_expired", "session_err", "cred_unavail",
    "cred_expired", "cred_err", "no_module_data", "conv_err", "authtok_err",
    "authtok_recover_err", "authtok_lock_busy", "authtok_disable_aging", "try_again",
    "ignore", "abort", "authtok_expired", "module_unknown", "bad_item", "conv_again",
    "incomplete",
)  # fmt: skip
ACTION_NAMES = ("ignore", "ok", "done", "bad", "die", "reset")
# What a module may return to the dispatcher (PAM_INCOMPLETE pauses the stack instead).
ALL_VALUES = tuple(v for v in RETURN_NAMES if v != "incomplete")
FAILURES = tuple(v for v in ALL_VALUES if v not in (SUCCESS, IGNORE, NEW_AUTHTOK))

# Modules that authenticate by a credential: their success is what a password check means.
CREDENTIAL_MODULES = frozenset(
    {
        "pam_unix", "pam_unix2", "pam_sss", "pam_ldap", "pam_krb5", "pam_winbind",
        "pam_pwdb", "pam_userdb", "pam_google_authenticator", "pam_u2f", "pam_yubico",
        "pam_oath", "pam_radius_auth", "pam_fprintd", "pam_p11", "pam_pkcs11", "pam_tacplus",
    }
)  # fmt: skip
# What a module can return when a non-root user authenticates. pam_rootok succeeds only for a
# caller that is root already, so it never lets a user in; pam_unix's pam_sm_authenticate never
# answers PAM_IGNORE (modules/pam_unix/pam_unix_auth.c), which matters after an earlier
# success: `required pam_env` then `required pam_unix` is sound. Any other module, credential
# modules included (pam_sss ignore_unknown_user, pam_krb5 minimum_uid), may return anything.
ALWAYS = {
    "pam_permit": (SUCCESS,),
    "pam_deny": ("auth_err",),
    "pam_rootok": (MUST_FAIL,),
    "pam_unix": tuple(v for v in ALL_VALUES if v != IGNORE),
}
# A credential module's success without a credential: pam_unix with nullok, for an account
# whose password field is empty.
NO_CREDENTIAL = "success-without-credential"

_KEYWORDS = {
    # pam_handlers.c: the four keywords as actions; values not named get the last one
    "required": ({SUCCESS: "ok", NEW_AUTHTOK: "ok", IGNORE: "ignore"}, "bad"),
    "requisite": ({SUCCESS: "ok", NEW_AUTHTOK: "ok", IGNORE: "ignore"}, "die"),
    "optional": ({SUCCESS: "ok", NEW_AUTHTOK: "ok"}, "ignore"),
    "sufficient": ({SUCCESS: "done", NEW_AUTHTOK: "done"}, "ignore"),
}
_TYPES = ("auth", "account", "password", "session")

# Rule kinds: a module line, a substack's placeholder (skipped, counts as one for jumps), a
# line libpam installs as always failing.
MODULE, SUBSTACK, BROKEN = "module", "substack", "broken"


@dataclass(frozen=True)
class Rule:
    """One handler of a stack, after includes were resolved."""

    module: str  # pam_unix (no folder, no .so); for others, what the line was
    args: tuple[str, ...]
    actions: dict[str, str] = field(hash=False, compare=False)  # every value -> action
    level: int  # substack depth
    where: str  # file:line, for the message
    kind: str = MODULE
    why: str = ""  # for BROKEN: what libpam refused

    def outcomes(self) -> tuple[str, ...]:
        if self.kind == BROKEN:
            return (MUST_FAIL,)
        values = ALWAYS.get(self.module, ALL_VALUES)
        if self.module in CREDENTIAL_MODULES and nullok(self.args):
            return (*values, NO_CREDENTIAL)
        return values


def nullok(args: tuple[str, ...]) -> bool:
    """pam_unix's nullok (and Debian's older nullok_secure): an empty password is accepted."""
    return any(a == "nullok" or a.startswith("nullok_") for a in args)


def _module_name(path: str) -> str:
    return re.sub(r"\.so(\.\d+)*$", "", posixpath.basename(path))


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """libpam's _pam_assemble_line: a backslash at the end of a line without `#` joins the
    next; `#` ends a line; blank results are dropped. (line number of the first part, text)"""
    out: list[tuple[int, str]] = []
    pending: str | None = None
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if pending is None:
            start = number
        stripped = raw.rstrip(" \t")
        continues = stripped.endswith("\\") and "#" not in raw
        part = stripped[:-1] + " " if continues else raw.split("#", 1)[0]
        pending = (pending or "") + part
        if continues:
            continue
        joined = pending.strip()
        pending = None
        if joined:
            out.append((start, joined))
    if pending and pending.strip():  # a continuation at the end of the file
        out.append((start, pending.strip()))
    return out


def _tokens(line: str) -> list[str]:
    """libpam's _pam_StrTok on blanks: `[...]` is one token without its brackets, ended by the
    first `]` (`\\]` stands for a literal `]`)."""
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t\n":
            i += 1
        if i >= n:
            break
        if line[i] == "[":
            i += 1
            word = ""
            while i < n and line[i] != "]":
                if line[i] == "\\" and i + 1 < n and line[i + 1] == "]":
                    i += 1
                word += line[i]
                i += 1
            i += 1  # past the closing bracket
            words.append(word)
            continue
        j = i
        while j < n and line[j] not in " \t\n":
            j += 1
        words.append(line[i:j])
        i = j
    return words


def _all(action: str) -> dict[str, str]:
    return dict.fromkeys(ALL_VALUES, action)


def parse_control(control: str) -> dict[str, str]:
    """A control field (a keyword, or the inside of its brackets) as {return value: action}
    for every value, with libpam's parsing rules (_pam_parse_control)."""
    keyword = control.lower()
    if keyword in _KEYWORDS:
        mapping, default = _KEYWORDS[keyword]
        return {**_all(default), **mapping}
    actions: dict[str, str] = {}
    text, i = control, 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        name = next((r for r in (*RETURN_NAMES, "default") if text.startswith(r, i)), None)
        if name is None:
            return _all("bad")  # parse_error: every value is bad
        i += len(name)
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text) or text[i] != "=":
            return _all("bad")
        i += 1
        while i < len(text) and text[i].isspace():
            i += 1
        action = next((a for a in ACTION_NAMES if text.startswith(a, i)), None)
        if action is not None:
            i += len(action)
        else:
            m = re.match(r"\d+", text[i:])
            if not m or int(m.group()) == 0:
                return _all("bad")
            action = str(int(m.group()))
            i += len(m.group())
        if name == "default":
            for value in ALL_VALUES:
                actions.setdefault(value, action)
        elif name in ALL_VALUES:
            actions[name] = action
    return {**_all("bad"), **actions}  # values still unset are bad


ReadService = Callable[[str], str | None]


def stack(
    service: str,
    kind: str,
    read: ReadService,
    *,
    level: int = 0,
    depth: int = 0,
    requested: str | None = None,
) -> list[Rule]:
    """The `kind` (auth, account, ...) handlers of a service file, includes resolved; `[]`
    when the file does not exist. `requested` is the type an including line asked for (None
    at the top and through @include: every type)."""
    text = read(service)
    if text is None:
        return []
    rules: list[Rule] = []
    for number, line in _logical_lines(text):
        where = f"{service}:{number}"
        words = _tokens(line)
        if words[0] == "@include":  # Debian: the file's lines, spliced in at this level
            target = words[1] if len(words) > 1 else ""
            rules += _included(
                target, kind, read, where, level=level, depth=depth, requested=requested
            )
            continue
        ltype = words[0].lstrip("-").lower() if words[0] != "-" else ""
        if ltype not in _TYPES:  # libpam: the most sensitive type, and it always fails
            ltype = requested or "auth"
            if ltype == kind:
                rules.append(_broken(where, level, _all("bad"), f"unknown type {words[0]!r}"))
            continue
        if ltype != kind:
            continue
        if len(words) < 2:
            rules.append(_broken(where, level, _all("bad"), "no control"))
            continue
        control = words[1]
        if control.lower() in ("include", "substack"):
            target = words[2] if len(words) > 2 else ""
            sub = control.lower() == "substack"
            rules += _included(
                target, kind, read, where, level=level, depth=depth, requested=kind, substack=sub
            )
            continue
        actions = parse_control(control)
        if len(words) < 3:
            rules.append(_broken(where, level, actions, "no module"))
            continue
        rules.append(Rule(_module_name(words[2]), tuple(words[3:]), actions, level, where))
    return rules


def _broken(where: str, level: int, actions: dict[str, str], why: str) -> Rule:
    return Rule("(refused line)", (), actions, level, where, BROKEN, why)


def _included(
    target: str,
    kind: str,
    read: ReadService,
    where: str,
    *,
    level: int,
    depth: int,
    requested: str | None,
    substack: bool = False,
) -> list[Rule]:
    """An include, substack or @include line: the target's rules, or the failing handler
    libpam installs when it cannot read them."""
    rules: list[Rule] = []
    if substack:
        rules.append(Rule(f"(substack {target})", (), _all("ignore"), level, where, SUBSTACK))
    inner = level + (1 if substack else 0)
    text = read(target) if target and depth + 1 < MAX_INCLUDE_LEVEL else None
    if text is None:
        deep = target and depth + 1 >= MAX_INCLUDE_LEVEL
        why = "includes nest too deep" if deep else f"cannot open {target!r}"
        return [*rules, _broken(where, level, _all("bad"), why)]
    return rules + stack(target, kind, read, level=inner, depth=depth + 1, requested=requested)


@dataclass(frozen=True)
class _State:
    """libpam's running verdict: impression (-1, 0, +1) and status, the level of the handler
    looked at last, the states saved on entering each substack (for `reset`), and whether a
    credential module succeeded."""

    impression: int
    status: str
    prev_level: int
    saved: tuple[tuple[int, int, str], ...]
    credential: bool


START = _State(0, MUST_FAIL, 0, ((0, 0, MUST_FAIL),), False)


def _step(rules: list[Rule], i: int, state: _State, value: str) -> tuple[int, _State]:
    """Handler `i` returned `value`: the next handler to run and the new state
    (_pam_dispatch_aux's loop body)."""
    rule = rules[i]
    saved = {lvl: (im, st) for lvl, im, st in state.saved}
    imp, st = state.impression, state.status
    if state.prev_level < rule.level:  # entering a substack: remember
        saved[rule.level] = (imp, st)
    if rule.kind == SUBSTACK:  # the placeholder is skipped
        frozen = tuple(sorted((lvl, im, stt) for lvl, (im, stt) in saved.items()))
        return i + 1, _State(imp, st, rule.level, frozen, state.credential)
    ret = SUCCESS if value == NO_CREDENTIAL else value
    action = rule.actions.get(ret, "bad")
    nxt = i + 1
    if action == "reset":
        imp, st = saved.get(rule.level, (0, MUST_FAIL))
    elif action in ("ok", "done"):
        if imp == 0 or (imp > 0 and st == SUCCESS):
            imp, st = 1, ret
        if action == "done" and imp > 0:
            nxt = _end_of_level(rules, i, rule.level)
    elif action in ("bad", "die"):
        if imp >= 0:
            imp, st = -1, (MUST_FAIL if ret == IGNORE else ret)
        if action == "die":
            nxt = _end_of_level(rules, i, rule.level)
    elif action.isdigit():
        last, left = _jump(rules, i, rule.level, int(action))
        nxt = last + 1
        if left:  # a jump past the end of its (sub)stack: libpam fails it and goes on
            imp, st = -1, MUST_FAIL
    credential = state.credential or (value == SUCCESS and rule.module in CREDENTIAL_MODULES)
    frozen = tuple(sorted((lvl, im, stt) for lvl, (im, stt) in saved.items()))
    return nxt, _State(imp, st, rule.level, frozen, credential)


def _end_of_level(rules: list[Rule], i: int, level: int) -> int:
    """The handler after the rest of the current (sub)stack: where done/die continue."""
    j = i
    while j + 1 < len(rules) and rules[j + 1].level >= level:
        j += 1
    return j + 1


def _jump(rules: list[Rule], i: int, level: int, count: int) -> tuple[int, int]:
    """Skip `count` handlers of this level, a substack (placeholder and body) counting as one,
    as libpam does: (the last handler skipped, the count left when the level ended)."""
    j = i
    while j + 1 < len(rules) and rules[j + 1].level >= level and count > 0:
        j += 1
        while j + 1 < len(rules) and rules[j + 1].level > level:
            j += 1
        count -= 1
    return j, count


def bypasses(rules: list[Rule], limit: int = 5) -> list[str]:
    """Walks of the stack that end in PAM_SUCCESS with no credential module's success on them,
    each as the modules that returned success, in order ([] when none)."""
    found: list[str] = []
    seen: set[tuple[int, _State]] = set()
    todo: list[tuple[int, _State, tuple[str, ...]]] = [(0, START, ())]
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
        values = ("",) if rule.kind == SUBSTACK else rule.outcomes()
        for value in values:
            nxt, after = _step(rules, i, state, value)
            label = f"{rule.module}({rule.where}{', nullok' if value == NO_CREDENTIAL else ''})"
            succeeded = value in (SUCCESS, NO_CREDENTIAL)
            todo.append((nxt, after, (*path, label) if succeeded else path))
    return found


@dataclass(frozen=True)
class Finding:
    service: str
    problem: str


def auth_rules(service: str, read: ReadService) -> tuple[list[Rule], str]:
    """The auth handlers libpam runs for `service`, and whose they are: its own file's, or
    `other`'s when the file is missing or has no auth line (_pam_dispatch's fallback)."""
    rules = stack(service, "auth", read)
    if rules or service == "other":
        return rules, service
    return stack("other", "auth", read), "other"


def audit(services: list[str], read: ReadService) -> list[Finding]:
    """Every service whose auth stack can succeed without a credential, and every `nullok`.
    A service with no auth handler at all (nor in `other`) fails closed: no finding."""
    findings: list[Finding] = []
    for service in sorted(set(services) | {"other"}):
        rules, _owner = auth_rules(service, read)
        for rule in rules:
            if rule.kind == MODULE and rule.module in CREDENTIAL_MODULES and nullok(rule.args):
                findings.append(
                    Finding(
                        service, f"{rule.where}: {rule.module} nullok (an empty password logs in)"
                    )
                )
        for walk in bypasses(rules):
            findings.append(Finding(service, f"succeeds with no credential checked: {walk}"))
    unique: dict[tuple[str, str], Finding] = {(f.service, f.problem): f for f in findings}
    return list(unique.values())


# pam_unix's hash tokens (modules/pam_unix/support.h, unix_args' is_hash_algo), matched as its
# _set_ctrl does: login.defs' ENCRYPT_METHOD first (case-insensitive prefix), then each module
# argument in order (case-sensitive prefix), the last one winning. None of them: DES crypt.
HASH_TOKENS = ("md5", "bigcrypt", "sha256", "sha512", "blowfish", "gost_yescrypt", "yescrypt")
# What a password set through this stack is stored with, when that is crackable: DES keeps 8
# characters, bigcrypt is DES in pieces, md5-crypt falls to a GPU in hours.
WEAK_HASHES = {
    None: "DES crypt (no hash option)",
    "md5": "md5-crypt",
    "bigcrypt": "bigcrypt (DES)",
}


def _hash_token(word: str, case_sensitive: bool) -> str | None:
    for token in HASH_TOKENS:
        head = word[: len(token)]
        if head == token or (not case_sensitive and head.lower() == token):
            return token
    return None


def login_defs_value(login_defs: str, key: str) -> str | None:
    """A login.defs key as pam_modutil_search_key reads it: the first line naming it."""
    for raw in login_defs.splitlines():
        words = raw.split("#", 1)[0].replace("=", " ").split()
        if len(words) >= 2 and words[0] == key:
            return words[1]
    return None


def password_hash(args: tuple[str, ...], encrypt_method: str | None) -> str | None:
    """The hash pam_unix stores a new password with, for a `password` line's arguments."""
    algo = _hash_token(encrypt_method, case_sensitive=False) if encrypt_method else None
    for arg in args:
        algo = _hash_token(arg, case_sensitive=True) or algo
    return algo


def weak_hashing(services: list[str], read: ReadService, login_defs: str) -> list[Finding]:
    """Every pam_unix `password` line that would store a new password with a crackable hash
    (its own options, else login.defs' ENCRYPT_METHOD, else DES)."""
    method = login_defs_value(login_defs, "ENCRYPT_METHOD")
    found: dict[str, Finding] = {}
    for service in sorted(set(services) | {"other"}):
        for rule in stack(service, "password", read):
            if rule.kind != MODULE or rule.module != "pam_unix":
                continue
            algo = password_hash(rule.args, method)
            if algo in WEAK_HASHES and rule.where not in found:
                source = (
                    "its options"
                    if any(_hash_token(a, True) for a in rule.args)
                    else (f"login.defs ENCRYPT_METHOD {method}" if method else "no option anywhere")
                )
                found[rule.where] = Finding(
                    service,
                    f"{rule.where}: pam_unix stores new passwords as {WEAK_HASHES[algo]} "
                    f"({source}); want yescrypt or sha512",
                )
    return list(found.values())
