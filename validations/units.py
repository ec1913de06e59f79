"""systemd's units as systemd itself resolved them: `systemctl show` output, parsed.

What the clone's systemd reports is what runs, after every drop-in, specifier, generator and
template instance: the checks read that instead of the unit files. One `systemctl show` lists
every unit systemd knows; `LISTING` finds their names (the unit folders systemd searches, as
`systemd-analyze unit-paths` lists them, and every loaded unit), templates instantiated with
PROBE where no instance is loaded. Pure: the commands are run by validations/remote.ask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PROBE = "xcpng-probe"  # the instance name given to templates no loaded unit instantiates
UNIT_TYPES = ("service", "socket")

EXEC_KINDS = (
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPre",  # sockets
    "ExecStopPost",
)
PROPERTIES = (
    "Id", "Names", "LoadState", "UnitFileState", "ActiveState", "User", "DynamicUser",
    *EXEC_KINDS, *(f"{k}Ex" for k in EXEC_KINDS if k != "ExecStopPre"),
    "Environment", "EnvironmentFiles", "WorkingDirectory", "RootDirectory", "RootImage",
    "FragmentPath", "DropInPaths", "SourcePath", "TriggeredBy", "Accept", "StandardInput",
    "TTYPath", "WantedBy", "RequiredBy", "UpheldBy", "UMask",
)  # fmt: skip

GENERATOR_DIRS = "systemd-path systemd-search-system-generator"

# The names to show, one per line: every service and socket file in the folders systemd
# searches (aliases, masked units and links to other names left out: their target is listed
# under its own name), the units named by drop-in folders, and every loaded unit; a template
# with no loaded instance becomes TEMPLATE@PROBE. Also printed, tab-separated: each entry of
# the unit and generator folders ("unit"/"generator", path, link target), for the checks that
# judge the files themselves.
LISTING = r"""
IFS=:; set -- $(systemd-path systemd-search-system-generator); unset IFS
gens=; for d; do gens="$gens $d ${d%system-generators}system-environment-generators"; done
find $gens -mindepth 1 -maxdepth 1 -printf 'generator\t%p\t%l\n' 2>/dev/null
find $(systemd-analyze unit-paths) -mindepth 1 -maxdepth 2 -printf 'unit\t%p\t%l\n' 2>/dev/null
systemctl list-units --all --plain --no-legend --no-pager | awk '{print "loaded\t" $1 "\t" $2}'
"""

_NAMES_AWK = r"""
BEGIN { FS = "\t" }
function base(p) { sub(/.*\//, "", p); return p }
function parent(p) { sub(/\/[^\/]*$/, "", p); return p }
$1 == "loaded" { if ($3 == "loaded" && $2 ~ /\.(service|socket)$/) keep[$2] = 1; next }
$1 != "unit" { next }
{ name = base($2); dir = base(parent($2)) }
dir ~ /\.(service|socket)\.d$/ { sub(/\.d$/, "", dir); keep[dir] = 1; next }
name !~ /\.(service|socket)$/ || $3 == "/dev/null" { next }
dir ~ /\.(wants|requires|upholds)$/ { keep[name] = 1; next }
$3 == "" || base($3) == name { keep[name] = 1 }
END {
  for (u in keep) if (u ~ /@[^.]+\./) { t = u; sub(/@[^.]*\./, "@.", t); inst[t] = 1 }
  for (u in keep) {
    if (u ~ /@\./) { if (u in inst) continue; sub(/@\./, "@PROBE.", u) }
    print u
  }
}
"""


def show_command(listing_file: str) -> str:
    """`systemctl show` of every unit named by the LISTING output saved in `listing_file`, in
    two halves side by side: the client's own parsing and printing is most of its cost under
    TCG, and the clone has two vCPUs. Blocks stay whole (one half goes through a file)."""
    awk = _NAMES_AWK.replace("PROBE", PROBE)
    show = f"systemctl show --no-pager -p {','.join(PROPERTIES)} --"
    return (  # a subshell: its exits end this command only, not a script it is part of
        f"(names=$(awk '{awk}' \"{listing_file}\" | sort -u)\n"
        f'[ -n "$names" ] || {{ echo "no unit names found" >&2; exit 3; }}\n'
        "o=$(mktemp) || exit 97\n"
        "set -- $names; n=$((($# + 1) / 2)); a=; b=\n"
        'for u; do if [ "$n" -gt 0 ]; then a="$a $u"; n=$((n - 1)); else b="$b $u"; fi; done\n'
        f'{show} $a >"$o" & pid=$!\n'
        f'rc=0; [ -z "$b" ] || {show} $b || rc=$?\n'
        'wait "$pid" || rc=$?\n'
        'echo; cat "$o"; rm -f "$o"; exit "$rc")'
    )


@dataclass(frozen=True)
class Command:
    kind: str  # ExecStart, ExecStartPre, ...
    path: str  # the executable as systemd will look it up (absolute, or a bare name)
    argv: tuple[str, ...]  # argv as `systemctl show` prints it: words joined by blanks
    flags: frozenset[str]  # ignore-failure, privileged (+), no-setuid (!), ambient (!!), ...

    @property
    def as_root_anyway(self) -> bool:
        """`+` and `!` run the command with full privileges, whatever User= says."""
        return bool(self.flags & {"privileged", "no-setuid"})


@dataclass(frozen=True)
class Unit:
    id: str
    props: dict[str, list[str]] = field(hash=False)
    commands: tuple[Command, ...] = ()

    def get(self, key: str) -> str:
        values = self.props.get(key) or [""]
        return values[-1].strip()

    def words(self, key: str) -> list[str]:
        return [w for v in self.props.get(key, []) for w in v.split()]

    @property
    def loaded(self) -> bool:
        return self.get("LoadState") == "loaded"

    @property
    def runs_as_root(self) -> bool:
        """User= unset, root or 0, and no DynamicUser (which allocates an unprivileged uid)."""
        return self.get("User") in ("", "root", "0") and self.get("DynamicUser") != "yes"

    @property
    def tty(self) -> bool:
        """Its standard input is a terminal: a console program (getty, shells, sulogin)."""
        return self.get("StandardInput").startswith("tty") or bool(self.get("TTYPath"))

    @property
    def wanted(self) -> list[str]:
        """The units that pull it in (WantedBy, RequiredBy, UpheldBy)."""
        return sorted(
            {w for key in ("WantedBy", "RequiredBy", "UpheldBy") for w in self.words(key)}
        )

    @property
    def environment(self) -> list[str]:
        return self.words("Environment")

    @property
    def environment_files(self) -> list[str]:
        return [_ENVFILE.sub("", v).strip() for v in self.props.get("EnvironmentFiles", []) if v]


_ENVFILE = re.compile(r" \(ignore_errors=\w+\)$")
_EXEC = re.compile(
    r"^\{ path=(?P<path>.*?) ; argv\[\]=(?P<argv>.*) ; "
    r"(?:flags=(?P<flags>[a-z -]*)|ignore_errors=(?P<ignore>yes|no)) ; start_time=\["
)


def parse_command(kind: str, value: str) -> Command:
    m = _EXEC.match(value.strip())
    if not m:
        raise ValueError(f"{kind}: not a command as systemctl show prints it: {value[:200]!r}")
    flags = set((m.group("flags") or "").split())
    if m.group("ignore") == "yes":
        flags.add("ignore-failure")
    return Command(kind, m.group("path"), tuple(m.group("argv").split()), frozenset(flags))


def parse_show(text: str) -> list[Unit]:
    """The units in `systemctl show` output (blocks of KEY=VALUE separated by blank lines;
    a key repeats once per command or environment file)."""
    units = []
    for block in re.split(r"\n\s*\n", text.strip()):
        props: dict[str, list[str]] = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props.setdefault(key, []).append(value)
        if not props.get("Id"):
            continue
        commands: list[Command] = []
        for kind in EXEC_KINDS:
            values = props.get(f"{kind}Ex") or props.get(kind) or []
            commands += [parse_command(kind, v) for v in values if v.strip()]
        units.append(Unit(props["Id"][-1].strip(), props, tuple(commands)))
    return units


def parse_listing(text: str) -> list[tuple[str, str, str]]:
    """LISTING's output: (kind, path, link target or "") rows."""
    rows = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            rows.append((parts[0], parts[1], parts[2]))
    return rows


# The service manager's environment (`systemctl show -p Environment` with no unit:
# DefaultEnvironment= and set-environment, inherited by every unit), systemd's search path for
# bare command names, and the running kernel's command line.
MANAGER = r"""
systemctl show -p Environment
printf 'search\t%s\n' "$(systemd-path search-binaries-default)"
read -r cmdline </proc/cmdline; printf 'cmdline\t%s\n' "$cmdline"
"""


@dataclass(frozen=True)
class Manager:
    environment: list[str]
    search_path: list[str]
    cmdline: str


def parse_manager(text: str) -> Manager:
    env: list[str] = []
    search: list[str] = []
    cmdline = ""
    for line in text.splitlines():
        key, _, value = line.partition("=" if line.startswith("Environment=") else "\t")
        if key == "Environment":
            env = value.split()
        elif key == "search":
            search = [d for d in value.split(":") if d.startswith("/")]
        elif key == "cmdline":
            cmdline = value.strip()
    return Manager(env, search, cmdline)
