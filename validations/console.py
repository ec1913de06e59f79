"""No unauthenticated root shell on a console: the judgements of `system-console-shell`.

A console shell needs no network and no key: whoever reaches the VM's console (XCP-ng's
console tab, a serial line) gets root. The ways a template opens one, each read from what
the OS obeys:

- systemd's units (validations/units.py): `debug-shell.service` enabled, wanted by any unit
  or running; any unit on a terminal (StandardInput=tty*, TTYPath=) that can start without
  an admin and runs a shell, or a getty that skips login (`agetty -n`, a `-l` program other
  than login, login options `-f`); rescue and emergency units that run a shell instead of
  sulogin, or force sulogin (`SYSTEMD_SULOGIN_FORCE`, `sulogin -e`), which then opens a root
  shell for a locked root account;
- the kernel command line of the running clone and of the next boot (GRUB's defaults and
  grub.cfg, boot loader entries, /etc/kernel/cmdline): `systemd.debug_shell`, `rd.shell`,
  `rd.break`, `init=` a shell, booting into single, rescue or emergency by default.

Autologin (`agetty --autologin`, display managers) is `system-console-autologin`'s.
Pure: units and files come in as values and readers.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable

from validations.conftext import uncommented
from validations.offline import OfflineImage
from validations.persistence import assignments
from validations.units import PROBE, Unit

SHELLS = frozenset(
    {
        "sh", "bash", "rbash", "dash", "ash", "zsh", "ksh", "ksh93", "mksh", "lksh", "pdksh",
        "oksh", "posh", "yash", "csh", "tcsh", "fish", "busybox", "su", "runuser",
    }
)  # fmt: skip
GETTYS = frozenset({"agetty", "getty", "mingetty", "fgetty", "mgetty", "ngetty"})
LOGIN_PROGRAMS = frozenset({"/bin/login", "/usr/bin/login", "/sbin/login", "/usr/sbin/login"})
SULOGIN = frozenset({"sulogin", "systemd-sulogin-shell", "dracut-emergency"})
WRAPPERS = frozenset({"env", "setsid", "nice", "nohup", "stdbuf", "ionice", "exec"})
# Units systemd starts on a failure or on request from the kernel command line, enabled or not.
RESCUE_UNITS = ("rescue.service", "emergency.service", "dracut-emergency.service")
# Unit file states from which a unit starts without an admin asking for it.
STARTS_BY_ITSELF = frozenset(
    {"enabled", "enabled-runtime", "linked", "linked-runtime", "indirect", "generated",
     "transient", "alias"}
)  # fmt: skip
TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
FALSE = frozenset({"0", "no", "n", "false", "f", "off"})

# agetty's options (util-linux agetty.c): short letters taking an argument, long ones too.
_AGETTY_SHORT_ARG = set("aCdfHIlLortP")
_AGETTY_LONG_ARG = {
    "autologin", "chdir", "delay", "issue-file", "host", "init-string", "login-program",
    "login-options", "nice", "timeout", "erase-chars", "kill-chars",
}  # fmt: skip


def is_shell(path: str, listed: Iterable[str] = ()) -> bool:
    """A shell: a known one by name, or one /etc/shells lists (the OS's own list)."""
    return posixpath.basename(path) in SHELLS or path in set(listed)


def _is_python(path: str) -> bool:
    return re.fullmatch(r"python[\d.]*", posixpath.basename(path)) is not None


def _program(argv: list[str]) -> list[str]:
    """argv without leading wrappers (env, setsid, nice ...) and their options."""
    while argv and posixpath.basename(argv[0]) in WRAPPERS:
        argv = argv[1:]
        while argv and (argv[0].startswith("-") or "=" in argv[0]):
            argv = argv[1:]
    return argv


def shell_problem(argv: list[str], shells: Iterable[str] = ()) -> str | None:
    """Why a command started on a terminal hands out a shell, None when it does not.

    A shell started without `-c` is interactive; with `-c`, the command it runs is looked at
    the same way (`sh -c 'exec bash'`). An interpreter running a script is not a shell."""
    argv = _program(argv)
    if not argv:
        return None
    exe = argv[0]
    if _is_python(exe):
        scripts = [a for a in argv[1:] if not a.startswith("-")]
        return None if scripts and "-i" not in argv else f"starts {exe}, an interactive interpreter"
    if not is_shell(exe, shells):
        return None
    if "-c" in argv:
        rest = argv[argv.index("-c") + 1 :]
        inner = [w for w in " ".join(rest).replace(";", " ").split() if w]
        if any(is_shell(w, shells) for w in inner if w.startswith("/") or w in SHELLS):
            return f"starts {exe} -c with a shell in its command"
        return None
    return f"starts {exe} instead of login"


def getty_problem(argv: list[str]) -> str | None:
    """A getty that lets in without a password: skip-login, another login program, or login
    options with -f (pre-authenticated). `systemctl show` joins argv with blanks, so a `--`
    inside quoted login options (`-o '-p -- \\u'`) is read as a word, not as the end of
    options."""
    argv = _program(argv)
    if not argv or posixpath.basename(argv[0]) not in GETTYS:
        return None
    problems = []
    words = argv[1:]
    i = 0
    while i < len(words):
        word = words[i]
        value: str | None = None
        if word.startswith("--") and len(word) > 2:
            name, eq, inline = word[2:].partition("=")
            if eq:
                value = inline
            elif name in _AGETTY_LONG_ARG and i + 1 < len(words):
                value = words[i + 1]
                i += 1
            if name == "skip-login":
                problems.append("--skip-login: no login prompt")
            elif name in ("login-program", "loginprog") and value is not None:
                if value not in LOGIN_PROGRAMS:
                    problems.append(f"{word.split('=')[0]} {value}: runs {value} instead of login")
            elif name == "login-options" and value is not None and value.startswith("-f"):
                problems.append(f"--login-options {value}: login -f skips the password")
        elif word.startswith("-") and len(word) > 1 and word != "--":
            letters = word[1:]
            for j, letter in enumerate(letters):
                if letter == "n":
                    problems.append(f"{word}: -n skips the login prompt")
                if letter in _AGETTY_SHORT_ARG:
                    value = letters[j + 1 :] or (words[i + 1] if i + 1 < len(words) else "")
                    if not letters[j + 1 :]:
                        i += 1
                    if letter == "l" and value not in LOGIN_PROGRAMS:
                        problems.append(f"-l {value}: runs {value} instead of login")
                    if letter == "o" and value.startswith("-f"):
                        problems.append(f"-o {value}: login -f skips the password")
                    break
        i += 1
    return "; ".join(problems) or None


def _truthy(value: str) -> bool:
    return value.strip().strip("\"'").lower() in TRUE


def sulogin_forced(pairs: Iterable[tuple[str, str]]) -> bool:
    return any(name == "SYSTEMD_SULOGIN_FORCE" and _truthy(v) for name, v in pairs)


def _starts_by_itself(unit: Unit) -> str | None:
    """Why the unit starts without an admin, every reason (None: it does not)."""
    reasons = []
    if unit.get("ActiveState") in ("active", "activating", "reloading"):
        reasons.append("running")
    state = unit.get("UnitFileState")
    if state in STARTS_BY_ITSELF:
        reasons.append(state)
    if unit.wanted:
        reasons.append(f"wanted by {', '.join(unit.wanted)}")
    if f"@{PROBE}." in unit.id:
        reasons.append("a template: logind, udev or a socket start its instances on demand")
    return ", ".join(reasons) or None


def unit_findings(
    units: list[Unit],
    manager_env: list[str],
    env_files: dict[str, str],
    shells: Iterable[str] = (),
) -> list[str]:
    shells = list(shells)
    found: list[str] = []
    forced_everywhere = sulogin_forced(e.partition("=")[::2] for e in manager_env)
    if forced_everywhere:
        found.append(
            "systemd's DefaultEnvironment sets SYSTEMD_SULOGIN_FORCE: rescue and emergency "
            "open a root shell without a password when root is locked"
        )
    for unit in units:
        if not unit.loaded:
            continue
        names = set(unit.words("Names")) | {unit.id}
        why = _starts_by_itself(unit)
        if "debug-shell.service" in names and why:
            tty = unit.get("TTYPath") or "a console"
            found.append(f"debug-shell.service is {why}: a root shell on {tty} with no password")
            continue
        env = [e.partition("=")[::2] for e in unit.environment]
        for path in unit.environment_files:
            env += assignments(env_files.get(path, ""))
        rescue = bool(names & set(RESCUE_UNITS))
        if rescue and sulogin_forced(env):
            found.append(
                f"{unit.id}: SYSTEMD_SULOGIN_FORCE set: sulogin opens a root shell without a "
                "password when root is locked"
            )
        if not (unit.tty or rescue):
            continue
        for cmd in unit.commands:
            if cmd.kind not in ("ExecStart", "ExecStartPre", "ExecStartPost"):
                continue
            argv = list(cmd.argv) or [cmd.path]
            program = posixpath.basename(_program(argv)[0]) if _program(argv) else ""
            if rescue:
                if program in SULOGIN:
                    if "-e" in argv or "--force" in argv:
                        found.append(f"{unit.id} {cmd.kind}: {' '.join(argv)}: sulogin forced")
                    continue
                problem = shell_problem(argv, shells)
                if problem:
                    found.append(f"{unit.id} {cmd.kind}: {problem}, skipping sulogin")
                continue
            if why is None:
                continue
            problem = getty_problem(argv) or shell_problem(argv, shells)
            if problem:
                tty = unit.get("TTYPath") or unit.get("StandardInput")
                found.append(f"{unit.id} ({why}, on {tty}) {cmd.kind}: {problem}")
    return found


# -- the kernel command line ---------------------------------------------------------------------

_RUNLEVEL_WORDS = {
    "single": "rescue.target", "s": "rescue.target", "S": "rescue.target",
    "-s": "rescue.target", "1": "rescue.target", "rescue": "rescue.target",
    "emergency": "emergency.target", "-b": "emergency.target",
}  # fmt: skip
_SHELL_UNITS = {"rescue.target", "emergency.target", "rescue.service", "emergency.service",
                "debug-shell.service"}  # fmt: skip


def cmdline_words(text: str) -> list[str]:
    try:
        return shlex.split(text, posix=True)
    except ValueError:
        return text.split()


def cmdline_findings(text: str, where: str, recovery_entry: bool = False) -> list[str]:
    """Debug switches that open a shell on the console, in one kernel command line.
    A recovery entry (GRUB's "recovery mode") may boot single-user: it is not a default."""
    found = []
    for word in cmdline_words(text):
        key, eq, value = word.partition("=")
        bare = key.removeprefix("rd.") if key.startswith("rd.systemd.") else key
        if bare in ("systemd.debug_shell", "systemd.crash_shell"):
            if not eq or value.lower() not in FALSE:
                found.append(f"{where}: {word} (a root shell on a console, no password)")
        elif key == "rd.shell" and (not eq or value.lower() not in FALSE):
            found.append(f"{where}: {word} (the initramfs drops to a root shell on failure)")
        elif key == "rd.break":
            found.append(f"{where}: {word} (the initramfs stops in a root shell)")
        elif key in ("init", "rdinit") and eq and is_shell(value):
            found.append(f"{where}: {word} (PID 1 is a root shell)")
        elif bare == "systemd.unit" and value in _SHELL_UNITS:
            found.append(f"{where}: {word} (boots into a root shell)")
        elif key == "systemd.setenv" and sulogin_forced([value.partition("=")[::2]]):
            found.append(f"{where}: {word} (sulogin opens a root shell for a locked root)")
        elif not eq and word in _RUNLEVEL_WORDS and not recovery_entry:
            found.append(f"{where}: {word} (boots into {_RUNLEVEL_WORDS[word]} by default)")
    return found


GRUB_DEFAULTS = "/etc/default/grub"
GRUB_CFGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg")
GRUBENV = ("/boot/grub/grubenv", "/boot/grub2/grubenv")
LOADER_ENTRIES = "/boot/loader/entries"
KERNEL_CMDLINES = ("/etc/kernel/cmdline", "/usr/lib/kernel/cmdline")
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def _text(image: OfflineImage, path: str) -> str | None:
    try:
        if image.exists(path) and image.stat(path).is_file:
            return image.read_text(path)
    except (FileNotFoundError, IsADirectoryError):
        pass
    return None


def _listed(image: OfflineImage, folder: str, pattern: str) -> list[str]:
    if not image.exists(folder) or not image.stat(folder).is_dir:
        return []
    return [posixpath.join(folder, n) for n in image.listdir(folder) if fnmatch.fnmatch(n, pattern)]


def grub_defaults(texts: list[str]) -> dict[str, str]:
    """The variables /etc/default/grub and /etc/default/grub.d/*.cfg leave set, sourced in
    that order as grub-mkconfig does (`$VAR` references expanded)."""
    env: dict[str, str] = {}
    for text in texts:
        for name, value in assignments(text):
            env[name] = _VAR.sub(lambda m: env.get(m.group(1), ""), value)
    return env


Judge = Callable[[str, str, bool], list[str]]  # (command line, where, recovery entry)


def grub_cfg_findings(text: str, where: str, judge: Judge | None = None) -> list[str]:
    judge = judge or cmdline_findings
    found = []
    title = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("menuentry ", "submenu ")):
            title = line
            continue
        words = line.split(None, 2)
        if words and words[0] in ("linux", "linux16", "linuxefi") and len(words) == 3:
            recovery = "recovery mode" in title.lower() or "rescue" in title.lower()
            found += judge(words[2], f"{where} ({title[:60] or 'linux'})", recovery)
        elif line.startswith("set kernelopts="):
            found += judge(line.partition("=")[2].strip("\"'"), f"{where} kernelopts", False)
    return found


def boot_config_findings(image: OfflineImage, judge: Judge | None = None) -> list[str]:
    """The kernel command line of the next boot, from every place that makes it, judged by
    `judge` (by default: console shells)."""
    judge = judge or cmdline_findings
    found: list[str] = []
    sources = [GRUB_DEFAULTS, *sorted(_listed(image, "/etc/default/grub.d", "*.cfg"))]
    texts = [t for t in (_text(image, p) for p in sources) if t is not None]
    env = grub_defaults(texts)
    for name in ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"):
        if env.get(name):
            found += judge(env[name], f"GRUB's {name} (/etc/default/grub, grub.d)", False)
    for path in GRUB_CFGS:
        text = _text(image, path)
        if text is not None:
            found += grub_cfg_findings(text, path, judge)
    for path in GRUBENV:
        for raw in (_text(image, path) or "").splitlines():
            if raw.startswith("kernelopts="):
                found += judge(raw.partition("=")[2], f"{path} kernelopts", False)
    for path in sorted(_listed(image, LOADER_ENTRIES, "*.conf")):
        for raw in (_text(image, path) or "").splitlines():
            line = uncommented(raw)
            if line.startswith("options"):
                found += judge(line[len("options") :], path, False)
    for path in KERNEL_CMDLINES:
        text = _text(image, path)
        if text is not None:
            found += judge(" ".join(uncommented(x) for x in text.splitlines()), path, False)
    return found


def listed_shells(image: OfflineImage) -> list[str]:
    """/etc/shells: the shells the OS itself lists."""
    return [
        uncommented(x) for x in (_text(image, "/etc/shells") or "").splitlines() if uncommented(x)
    ]
