"""What runs as root later, and who can change it: the judgements of `persistence-root-exec`.

Every mechanism that makes root execute something after the template is cloned, read from the
state the OS itself uses: systemd's units as the clone's systemd resolved them (validations/
units.py), cron's tables, cloud-init's per-boot scripts and merged bootcmd/runcmd, the dynamic
loader's preload and search folders, the environment and PATH root gets, shell start-up files
and rc.local. Each path root executes (or reads to decide what to execute) is judged by
validations/pathtrust.py: it, every folder above it and every link on the way must be owned by
root and writable by neither group nor others.

Pure: the clone's answers and the offline image come in as values and readers.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from validations import cloudcfg, remotecode
from validations.accounts import umask_lets_others_write
from validations.conftext import uncommented
from validations.offline import OfflineImage
from validations.pathtrust import TOKEN, Finding, Inodes
from validations.units import Command, Unit

LOADER_VARIABLES = ("LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT")
_TOKEN = re.compile(TOKEN)
_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def paths_in(text: str) -> list[str]:
    """Absolute paths in a command line or a value, as the clone's walker finds them."""
    return _TOKEN.findall(text)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def assignments(text: str) -> list[tuple[str, str]]:
    """NAME=value lines (shell-style files: /etc/environment, EnvironmentFile=, crontab)."""
    out = []
    for raw in text.splitlines():
        m = None if raw.lstrip().startswith("#") else _ASSIGN.match(raw)
        if m:
            out.append((m.group(1), _unquote(m.group(2))))
    return out


def loader_variables(what: str, pairs: Iterable[tuple[str, str]]) -> list[str]:
    """LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT set for root: every program loads what they name."""
    return [
        f"{what}: {name}={value} (every program started with it loads from there first)"
        for name, value in pairs
        if name in LOADER_VARIABLES and value
    ]


def path_variable(what: str, value: str, inodes: Inodes) -> list[str]:
    """A PATH root searches: an empty or relative entry, or a folder others can write into."""
    out = []
    for entry in value.split(":"):
        if not entry.startswith("/"):
            shown = entry or "(empty: the current folder)"
            out.append(
                f"{what}: PATH entry {shown} is relative: root runs what the current folder holds"
            )
        else:
            out += [str(f) for f in inodes.judge(f"{what} (PATH)", entry)]
    return out


def judge_command_text(what: str, text: str, inodes: Inodes) -> list[Finding]:
    """The files a command line names: each absolute path that names a file or nothing yet
    (whoever can create it decides what runs); folders and devices are arguments, not code,
    except the folder run-parts runs."""
    out: list[Finding] = []
    runs_parts = "run-parts" in text
    for token in paths_in(text):
        kind = inodes.kind(token)
        if kind in ("file", None) or (kind == "dir" and runs_parts):
            out += inodes.judge(what, token)
    return out


# -- systemd, from the clone --------------------------------------------------------------------


@dataclass
class CloneState:
    """What the clone reported (see test_persistence.py, `CloneAnswers`)."""

    units: list[Unit]
    listing: list[tuple[str, str, str]]
    manager_env: list[str]
    search_path: list[str]
    root_paths: dict[str, str]  # who gives root that PATH -> the PATH
    inodes: Inodes
    env_files: dict[str, str] = field(default_factory=dict)
    cmdline: str = ""
    kernel_helpers: dict[str, str] = field(default_factory=dict)  # who -> value (see below)


def _executable(cmd: Command, search: list[str], inodes: Inodes) -> str | None:
    """The file systemd executes: the absolute path, or a bare name looked up in systemd's
    fixed search path (`systemd-path search-binaries-default`)."""
    if cmd.path.startswith("/"):
        return cmd.path
    for folder in search:
        candidate = posixpath.join(folder, cmd.path)
        if inodes.kind(candidate) == "file":
            return candidate
    return None


def _label(unit: Unit) -> str:
    triggers = unit.words("TriggeredBy")
    return f"{unit.id} (started by {', '.join(triggers)})" if triggers else unit.id


def umask_findings(unit: Unit, label: str) -> list[str]:
    """A unit whose UMask= lets others write what it creates (its state, logs, sockets, the
    files it hands root later): group or others for a root unit, others for any unit."""
    value = unit.get("UMask")
    if not re.fullmatch(r"[0-7]{1,4}", value):
        return []
    if not umask_lets_others_write(int(value, 8), unit.runs_as_root):
        return []
    if unit.runs_as_root:
        return [f"{label} runs as root with UMask={value}: what it creates is writable by others"]
    return [f"{label} has UMask={value}: what it creates is writable by everyone"]


def systemd_findings(state: CloneState, read: Callable[[str], str] | None = None) -> list[str]:
    """`read` returns the text of a script root executes (the offline image's), for the code
    it fetches from the network; without it only command lines are read for that."""
    inodes = state.inodes
    found: list[Finding] = []
    lines: list[str] = []
    # the manager: its environment reaches every unit, its PATH finds bare command names
    lines += loader_variables(
        "systemd's DefaultEnvironment", (e.partition("=")[::2] for e in state.manager_env)
    )
    for entry in state.manager_env:
        if entry.startswith("PATH="):
            lines += path_variable("systemd's DefaultEnvironment", entry[5:], inodes)
    for kind, path, _target in state.listing:
        what = "systemd generator" if kind == "generator" else "systemd unit folder"
        if kind in ("generator", "unit"):
            found += inodes.judge(what, path)
    for unit in state.units:
        if not unit.loaded:
            continue
        label = _label(unit)
        for key in ("FragmentPath", "SourcePath", "DropInPaths"):
            for path in unit.words(key):
                found += inodes.judge(f"{unit.id} unit file", path)
        root_unit = unit.runs_as_root
        for cmd in unit.commands:
            if not (root_unit or cmd.as_root_anyway):
                continue
            what = f"{label} {cmd.kind}"
            exe = _executable(cmd, state.search_path, inodes)
            if exe is not None:
                found += inodes.judge(what, exe)
            found += judge_command_text(what, " ".join(cmd.argv[1:]), inodes)
            lines += remotecode.findings(what, " ".join(cmd.argv))
            if exe is not None and read is not None:
                lines += remotecode.findings(f"{what} {exe}", read(exe))
        lines += umask_findings(unit, label)
        if not root_unit:
            continue
        env = [e.partition("=")[::2] for e in unit.environment]
        lines += loader_variables(f"{label} Environment", env)
        lines += [
            x for name, value in env if name == "PATH"
            for x in path_variable(f"{label} Environment", value, inodes)
        ]  # fmt: skip
        for envfile in unit.environment_files:
            found += inodes.judge(f"{label} EnvironmentFile", envfile)
            text = state.env_files.get(envfile, "")
            lines += loader_variables(f"{label} EnvironmentFile {envfile}", assignments(text))
        for key in ("WorkingDirectory", "RootDirectory", "RootImage"):
            value = unit.get(key).lstrip("!-")
            if value == "~":
                value = "/root"
            if value.startswith("/"):
                found += inodes.judge(f"{label} {key}", value)
    for name, value in state.root_paths.items():
        lines += path_variable(name, value, inodes)
    found += kernel_helper_findings(state.kernel_helpers, inodes)
    return _unique([str(f) for f in found] + lines)


KERNEL_HELPERS = {
    "kernel.core_pattern": "the kernel's core dump pipe (root, at every crash)",
    "kernel.modprobe": "the kernel's module loader (root, at every on-demand module load)",
    "kernel.hotplug": "the kernel's uevent helper (root, at every device event)",
}


def kernel_helper_findings(helpers: dict[str, str], inodes: Inodes) -> list[Finding]:
    """The programs the kernel starts as root (persistence_answers.KERNEL_HELPERS): a core
    pattern is a program only when it starts with `|`; an empty helper is none."""
    found: list[Finding] = []
    for who, value in helpers.items():
        if who == "kernel.core_pattern" and not value.startswith("|"):
            continue
        words = value.removeprefix("|").split() if who == "kernel.core_pattern" else value.split()
        program = words[0] if words else ""
        if not program.startswith("/"):
            continue
        what = KERNEL_HELPERS.get(who) or (
            f"{who} interpreter (binfmt_misc: runs every matching program, root's included)"
        )
        found += inodes.judge(what, program)
    return found


def _unique(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


# -- offline: cron, cloud-init, the loader, shells, rc.local, hook folders ----------------------

CRONTAB = "/etc/crontab"
CRON_D = "/etc/cron.d"
RUN_PARTS = ("/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly")
ROOT_CRONTABS = ("/var/spool/cron/crontabs/root", "/var/spool/cron/root")  # Debian, EL
ANACRONTAB = "/etc/anacrontab"
CLOUD_SCRIPTS = tuple(
    f"/var/lib/cloud/scripts/{d}" for d in ("per-boot", "per-instance", "per-once", "vendor")
)
SHELL_FILES = (
    "/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/bash.bash_logout",
    "/etc/csh.cshrc", "/etc/csh.login", "/etc/zshenv", "/etc/zsh/zshenv", "/etc/zsh/zprofile",
    "/etc/zsh/zshrc", "/etc/zsh/zlogin", "/etc/environment",
)  # fmt: skip
ROOT_DOTFILES = (
    ".profile", ".bash_profile", ".bash_login", ".bashrc", ".bash_logout", ".shrc", ".kshrc",
    ".mkshrc", ".cshrc", ".tcshrc", ".login", ".zshenv", ".zprofile", ".zshrc", ".zlogin",
)  # fmt: skip
RC_LOCAL = ("/etc/rc.local", "/etc/rc.d/rc.local")
LD_SO_CONF = "/etc/ld.so.conf"
LD_TRUSTED = ("/lib", "/lib64", "/usr/lib", "/usr/lib64")
# Folders whose files root runs or obeys without a unit or a crontab naming them; judged file
# by file (their contents are the programs' own business).
HOOK_FOLDERS = {
    "/etc/init.d": "SysV init scripts (systemd-sysv-generator)",
    "/etc/rc.d/init.d": "SysV init scripts (systemd-sysv-generator)",
    "/etc/udev/rules.d": "udev rules (RUN+= as root)",
    "/etc/modprobe.d": "modprobe configuration (install commands as root)",
    "/etc/apt/apt.conf.d": "apt configuration (Pre/Post-Invoke hooks as root)",
    "/etc/logrotate.d": "logrotate (postrotate scripts as root)",
    "/etc/dhcp/dhclient-enter-hooks.d": "dhclient hooks",
    "/etc/dhcp/dhclient-exit-hooks.d": "dhclient hooks",
    "/etc/NetworkManager/dispatcher.d": "NetworkManager dispatcher scripts",
    "/etc/kernel/postinst.d": "kernel install hooks",
    "/etc/kernel/postrm.d": "kernel install hooks",
    "/etc/kernel/install.d": "kernel install hooks",
    "/etc/sudoers.d": "sudo's policy",
    "/etc/update-motd.d": "pam_motd (run-parts as root at every login)",
    "/etc/network/if-pre-up.d": "ifupdown hooks",
    "/etc/network/if-up.d": "ifupdown hooks",
    "/etc/network/if-down.d": "ifupdown hooks",
    "/etc/network/if-post-down.d": "ifupdown hooks",
    "/etc/networkd-dispatcher/routable.d": "networkd-dispatcher hooks",
    "/etc/networkd-dispatcher/configured.d": "networkd-dispatcher hooks",
    "/etc/ppp/ip-up.d": "ppp hooks",
    "/etc/pam.d": "PAM stacks (pam_exec runs its command as root)",
    "/etc/grub.d": "update-grub (as root on every kernel update)",
    "/etc/initramfs-tools/hooks": "update-initramfs hooks",
    "/etc/initramfs-tools/scripts": "initramfs scripts (the next boot's early userspace)",
    "/etc/systemd/system-generators": "systemd generators",
    "/etc/cloud/cloud.cfg.d": "cloud-init configuration (bootcmd/runcmd as root)",
}
HOOK_FILES = {
    "/etc/sudoers": "sudo's policy",
    "/etc/logrotate.conf": "logrotate (postrotate scripts as root)",
    "/etc/ld.so.preload": "the dynamic loader",
    "/etc/ld.so.cache": "the dynamic loader",
    "/etc/security/pam_env.conf": "pam_env (the environment of every login, root's included)",
    "/etc/cloud/cloud.cfg": "cloud-init configuration (bootcmd/runcmd as root)",
    "/etc/default/grub": "update-grub (the kernel command line)",
}
# The command lines inside hook files, by the file's format: what each program runs as root.
_UDEV_RUN = re.compile(
    r'\b(?:RUN(?:\{program\})?|PROGRAM|IMPORT\{program\})\s*[+:!=]*=\s*"([^"]*)"'
)
_APT_HOOK = re.compile(
    r'(?:Invoke(?:-Success)?|Pre-Install-Pkgs|Post-Install-Pkgs)"?\s*(?:\{([^}]*)\}|"([^"]*)")',
    re.IGNORECASE,
)
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_LOGROTATE_SCRIPT = re.compile(
    r"^\s*(?:prerotate|postrotate|firstaction|lastaction|preremove)\b(.*?)^\s*endscript\b",
    re.MULTILINE | re.DOTALL,
)


def hook_commands(path: str, text: str) -> list[str]:
    """The command lines a hook file makes root run: udev's RUN/PROGRAM/IMPORT{program},
    modprobe's install/remove, apt's Pre/Post-Invoke and Pre-Install-Pkgs, logrotate's
    scripts, pam_exec's command. Other files' paths are data, not code (a log file logrotate
    rotates is writable by its group by design)."""
    lines = [uncommented(x) for x in text.splitlines()]
    body = "\n".join(lines)
    if path.startswith("/etc/udev/"):
        return _UDEV_RUN.findall(body)
    if path.startswith("/etc/modprobe.d/"):
        return [
            " ".join(w[2:]) for w in (x.split() for x in lines)
            if len(w) > 2 and w[0] in ("install", "remove")
        ]  # fmt: skip
    if path.startswith("/etc/apt/"):
        out = []
        for braces, single in _APT_HOOK.findall(body):
            out += _QUOTED.findall(braces) if braces else [single]
        return out
    if path.startswith("/etc/logrotate"):
        return _LOGROTATE_SCRIPT.findall(text)
    if path.startswith("/etc/pam.d/"):
        return [x for x in lines if "pam_exec" in x]
    return []


def _files_in(image: OfflineImage, folder: str) -> list[str]:
    if not image.exists(folder) or not image.stat(folder).is_dir:
        return []
    return [posixpath.join(folder, n) for n in image.listdir(folder)]


def _read(image: OfflineImage, path: str) -> str:
    try:
        return image.read_text(path) if image.exists(path) and image.stat(path).is_file else ""
    except (IsADirectoryError, FileNotFoundError):
        return ""


# Where packages put their programs: root's vendor binaries are the package database's concern
# (system-package-integrity), and reading each one here would cost a disk read per unit.
VENDOR_PROGRAMS = ("/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/libexec/", "/usr/share/",
                   "/bin/", "/sbin/", "/lib/")  # fmt: skip
MAX_SCRIPT_BYTES = 1 << 20


def script_text(image: OfflineImage, path: str) -> str:
    """The text of a script root runs or sources (empty for binaries, vendor programs, large
    files, folders and what does not exist)."""
    if path.startswith(VENDOR_PROGRAMS) or not image.exists(path):
        return ""
    st = image.stat(path)
    if not st.is_file or st.size > MAX_SCRIPT_BYTES:
        return ""
    data = image.read_bytes(path)
    return "" if b"\0" in data[:4096] else data.decode("utf-8", "replace")


@dataclass(frozen=True)
class CronJob:
    where: str  # file:line
    user: str
    command: str


def cron_jobs(
    text: str, where: str, has_user: bool, anacron: bool = False
) -> tuple[list[CronJob], list[tuple[str, str]]]:
    """The jobs of a crontab (system format with a user field, or a user's own) or of
    anacrontab, and its variable assignments. `%` ends a cron command (the rest is stdin)."""
    jobs: list[CronJob] = []
    env: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _ASSIGN.match(line)  # a job starts with @, a digit or *: never a name
        if m:
            env.append((m.group(1), _unquote(m.group(2))))
            continue
        words = line.split()
        if anacron:
            skip, user = 3, "root"
        elif line.startswith("@"):
            skip, user = (2, words[1] if len(words) > 1 else "") if has_user else (1, "root")
        else:
            skip, user = (6, words[5] if len(words) > 5 else "") if has_user else (5, "root")
        if len(words) <= skip:
            continue
        command = line.split(None, skip)[skip]
        command = re.split(r"(?<!\\)%", command, maxsplit=1)[0]
        jobs.append(CronJob(f"{where}:{number}", user, command))
    return jobs, env


def cron_findings(image: OfflineImage, inodes: Inodes) -> list[str]:
    found: list[Finding] = []
    lines: list[str] = []
    tables: list[tuple[str, bool, bool]] = [(CRONTAB, True, False), (ANACRONTAB, True, True)]
    tables += [(p, True, False) for p in _files_in(image, CRON_D)]
    tables += [(p, False, False) for p in ROOT_CRONTABS]
    found += inodes.judge("cron", CRON_D)
    for path, has_user, anacron in tables:
        if not image.exists(path):
            continue
        found += inodes.judge("cron table", path)
        jobs, env = cron_jobs(_read(image, path), path, has_user, anacron)
        lines += loader_variables(f"cron {path}", env)
        root_jobs = [j for j in jobs if j.user in ("root", "0")]
        for name, value in env:
            if name == "PATH" and root_jobs:
                lines += path_variable(f"cron {path}", value, inodes)
            elif name == "SHELL" and root_jobs and value.startswith("/"):
                found += inodes.judge(f"cron {path} (SHELL)", value)
        for job in root_jobs:
            what = f"cron {job.where} (root)"
            found += judge_command_text(what, job.command, inodes)
            lines += remotecode.findings(what, job.command)
            for script in paths_in(job.command)[:1]:
                lines += remotecode.findings(f"{what} {script}", script_text(image, script))
    for folder in RUN_PARTS:
        found += inodes.judge(f"run-parts {folder} (root)", folder)
        for path in _files_in(image, folder):
            found += inodes.judge(f"run-parts {folder} (root)", path)
            lines += remotecode.findings(f"run-parts {path} (root)", script_text(image, path))
    return _unique([str(f) for f in found] + lines)


def _command_text(entry: object) -> str:
    if isinstance(entry, list):
        return " ".join(str(x) for x in entry)
    return str(entry)


def cloud_init_findings(image: OfflineImage, inodes: Inodes) -> list[str]:
    found: list[Finding] = []
    lines: list[str] = []
    for folder in CLOUD_SCRIPTS:
        what = f"cloud-init scripts-{posixpath.basename(folder)} (root)"
        found += inodes.judge(what, folder)
        for path in _files_in(image, folder):
            found += inodes.judge(what, path)
            lines += remotecode.findings(f"{what} {path}", script_text(image, path))
    if not image.exists(cloudcfg.CLOUD_CFG):
        return _unique([str(f) for f in found] + lines)
    found += inodes.judge("cloud-init configuration", cloudcfg.CLOUD_CFG)
    found += inodes.judge("cloud-init configuration", cloudcfg.CLOUD_CFG_D)
    for path in cloudcfg.sources(image.listdir)[1:]:
        found += inodes.judge("cloud-init configuration", path)
    merged = cloudcfg.merged(image.read_text, image.listdir)
    for key in ("bootcmd", "runcmd"):
        entries = merged.get(key) or []
        for i, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            what = f"cloud-init {key}[{i}] (root)"
            found += judge_command_text(what, _command_text(entry), inodes)
            lines += remotecode.findings(what, _command_text(entry))
    return _unique([str(f) for f in found] + lines)


def ld_so_conf_folders(
    read: Callable[[str], str],
    listdir: Callable[[str], list[str]],
    exists: Callable[[str], bool],
    path: str = LD_SO_CONF,
    depth: int = 0,
) -> tuple[list[str], list[str]]:
    """(folders, configuration files) of ldconfig's search list: `include` globs are relative
    to the including file's folder (glibc's parse_conf_include)."""
    folders: list[str] = []
    files = [path]
    if depth > 8 or not exists(path):
        return folders, files
    for raw in read(path).splitlines():
        line = uncommented(raw)
        if not line or line.startswith("hwcap "):
            continue
        if line.startswith("include "):
            for word in line.split()[1:]:
                pattern = (
                    word if word.startswith("/") else posixpath.join(posixpath.dirname(path), word)
                )
                base, glob = posixpath.split(pattern)
                try:
                    names = sorted(n for n in listdir(base) if fnmatch.fnmatch(n, glob))
                except (FileNotFoundError, NotADirectoryError):
                    names = []
                for name in names:
                    more, more_files = ld_so_conf_folders(
                        read, listdir, exists, posixpath.join(base, name), depth + 1
                    )
                    folders += more
                    files += more_files
            continue
        for word in re.split(r"[\s:,]+", line):
            if word.startswith("/"):
                folders.append(word.split("=", 1)[0])
    return folders, files


def _root_home(image: OfflineImage) -> str:
    for line in _read(image, "/etc/passwd").splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[0] == "root":
            return fields[5] or "/"
    return "/root"


def loader_shell_findings(image: OfflineImage, inodes: Inodes) -> list[str]:
    found: list[Finding] = []
    lines: list[str] = []
    # the dynamic loader: a preload file, and every folder ldconfig searches
    preload = [uncommented(x) for x in _read(image, "/etc/ld.so.preload").split("\n")]
    for entry in (w for x in preload for w in x.split() if w):
        lines.append(
            f"the dynamic loader: /etc/ld.so.preload loads {entry} into every program, root's "
            "included"
        )
    folders, files = ld_so_conf_folders(lambda p: _read(image, p), image.listdir, image.exists)
    for path in files:
        found += inodes.judge("ldconfig configuration", path)
    for folder in [*folders, *LD_TRUSTED]:
        found += inodes.judge("the dynamic loader's search folders", folder)
    # the environment of logins (pam_env) and of su: root's PATH
    env = assignments(_read(image, "/etc/environment"))
    lines += loader_variables("/etc/environment", env)
    lines += [
        x for name, value in env if name == "PATH"
        for x in path_variable("/etc/environment", value, inodes)
    ]  # fmt: skip
    for raw in _read(image, "/etc/security/pam_env.conf").splitlines():
        words = uncommented(raw).split()
        if words and words[0] in LOADER_VARIABLES:
            lines.append(
                f"/etc/security/pam_env.conf: {' '.join(words)} (every login's programs load it)"
            )
    for raw in _read(image, "/etc/login.defs").splitlines():
        words = uncommented(raw).split()
        if len(words) >= 2 and words[0] == "ENV_SUPATH":
            lines += path_variable(
                "su (ENV_SUPATH in /etc/login.defs)", words[1].removeprefix("PATH="), inodes
            )
    # start-up files every root shell runs
    home = _root_home(image)
    found += inodes.judge("root's home", home)
    scripts = [(p, "shell start-up file") for p in SHELL_FILES]
    scripts += [("/etc/profile.d", "shell start-up file (/etc/profile.d)")]
    scripts += [
        (p, "shell start-up file (/etc/profile.d)") for p in _files_in(image, "/etc/profile.d")
    ]
    scripts += [(posixpath.join(home, n), "root's shell start-up file") for n in ROOT_DOTFILES]
    scripts += [(p, "rc.local (rc-local.service, root)") for p in RC_LOCAL]
    for path, what in scripts:
        found += inodes.judge(what, path)
        lines += remotecode.findings(f"{what} {path}", script_text(image, path))
    hooks = list(HOOK_FILES.items())
    for folder, what in HOOK_FOLDERS.items():
        if image.exists(folder):
            found += inodes.judge(what, folder)
            hooks += [(path, what) for path in _files_in(image, folder)]
    for path, what in hooks:
        found += inodes.judge(what, path)
        text = _read(image, path)
        commands = hook_commands(path, text)
        for command in commands:
            found += judge_command_text(f"{what}: {path} runs", command, inodes)
            lines += remotecode.findings(f"{what}: {path} runs", command)
        if not commands:  # a hook folder's own scripts, read once above
            lines += remotecode.findings(f"{what} {path}", text)
    return _unique([str(f) for f in found] + lines)


def image_inodes(image: OfflineImage) -> Inodes:
    """Inodes read from the offline image; group names from the image's /etc/group."""
    groups: dict[int, str] = {}
    for line in _read(image, "/etc/group").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            groups.setdefault(int(fields[2]), fields[0])
    return Inodes(
        lambda p: image.lstat(p) if image.lexists(p) else None,
        image.readlink,
        groups.get,
    )


def offline_findings(image: OfflineImage) -> list[str]:
    """Every offline mechanism (cron, cloud-init, loader, shells, rc.local, hook folders)."""
    inodes = image_inodes(image)
    return (
        cron_findings(image, inodes)
        + cloud_init_findings(image, inodes)
        + loader_shell_findings(image, inodes)
    )
