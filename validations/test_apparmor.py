"""Mandatory access control on Debian and Ubuntu: AppArmor enabled in the kernel, its service
loading the profiles at boot, and every profile the image ships loaded in the mode its file
declares (enforce unless the file itself says otherwise). EL's parity is SELinux enforcing
(validations/test_el_security.py).

Read from the kernel's own state (/sys/module/apparmor, /sys/kernel/security/apparmor/profiles)
and from apparmor_parser's reading of the profile files (`-N`: the names each file defines).
"""

from __future__ import annotations

import re
from typing import Any

from core.checks import check
from validations import systemd
from validations.remote import ask

PROFILE_DIR = "/etc/apparmor.d"
_LOADED = re.compile(r"^(?P<name>.+) \((?P<mode>[a-z]+)\)$")
_FLAGS = re.compile(r"flags\s*=\s*\(([^)]*)\)")

PROBE = {
    # the profiles the packages ship (dpkg's conffiles: path and md5), and what is there now
    "shipped": (
        "dpkg-query -W -f='${Conffiles}\\n' 2>/dev/null | "
        'awk \'$1 ~ "^/etc/apparmor.d/[^/]+$" && $3 != "obsolete" {print $1, $2}\''
    ),
    "md5": f'for f in {PROFILE_DIR}/*; do [ -f "$f" ] && md5sum "$f"; done; true',
    "enabled": "cat /sys/module/apparmor/parameters/enabled",
    "lsm": "cat /sys/kernel/security/lsm",
    "loaded": "cat /sys/kernel/security/apparmor/profiles",
    "switched": f"find {PROFILE_DIR}/disable {PROFILE_DIR}/force-complain -mindepth 1 2>/dev/null",
    # name<TAB>file<TAB>declared flags, for each profile of each file apparmor.service loads
    "declared": (
        f'for f in {PROFILE_DIR}/*; do [ -f "$f" ] || continue; '
        f'[ -e "{PROFILE_DIR}/disable/${{f##*/}}" ] && continue; '
        'flags=$(grep -o "flags *= *([^)]*)" "$f" | head -n 1); '
        'apparmor_parser -N "$f" 2>/dev/null | '
        'while read -r n; do printf "%s\\t%s\\t%s\\n" "$n" "$f" "$flags"; done; '
        "done"
    ),
}


def loaded_profiles(text: str) -> dict[str, str]:
    """/sys/kernel/security/apparmor/profiles -> {profile: mode}."""
    out = {}
    for line in text.splitlines():
        match = _LOADED.match(line.strip())
        if match:
            out[match.group("name")] = match.group("mode")
    return out


def declared(text: str) -> list[tuple[str, str, set[str]]]:
    """`name<TAB>file<TAB>flags=(...)` lines -> (profile, its file, modes its file allows:
    enforce unless the file's flags say otherwise)."""
    out = []
    for line in text.splitlines():
        name, _, rest = line.partition("\t")
        path, _, flags = rest.partition("\t")
        if not name.strip():
            continue
        match = _FLAGS.search(flags)
        words = {w.strip() for w in match.group(1).replace(",", " ").split()} if match else set()
        modes = words & {"complain", "unconfined", "kill", "prompt", "enforce"}
        out.append((name.strip(), path.strip(), modes or {"enforce"}))
    return out


def declared_modes(text: str) -> dict[str, set[str]]:
    """{profile: modes its file allows}."""
    return {name: modes for name, _path, modes in declared(text)}


def package_findings(shipped: str, md5sums: str, declared_text: str) -> list[str]:
    """Profiles the packages ship that are gone, or edited into a mode other than enforce
    (aa-complain writes flags=(complain) into the file itself)."""
    now = {}
    for line in md5sums.splitlines():
        digest, _, path = line.partition("  ")
        now[path.strip()] = digest
    weakened = {path for _name, path, modes in declared(declared_text) if modes != {"enforce"}}
    found = []
    for line in shipped.splitlines():
        path, _, digest = line.strip().partition(" ")
        if not path:
            continue
        if path not in now:
            found.append(f"{path}, a profile its package ships, is gone")
        elif now[path] != digest.strip() and path in weakened:
            found.append(f"{path} was edited out of enforce mode (aa-complain writes the flag)")
    return found


def problems(answers: dict[str, str]) -> list[str]:
    found = []
    if answers["enabled"].strip() != "Y":
        found.append(
            "the kernel's AppArmor is off (/sys/module/apparmor/parameters/enabled: "
            f"{answers['enabled'].strip() or 'missing'}; apparmor=0 or security= on the "
            "command line?)"
        )
    if "apparmor" not in answers["lsm"].split(","):
        found.append(f"AppArmor is not among the active LSMs ({answers['lsm'].strip()})")
    state = answers["service"].split()
    if state[:2] != ["enabled", "active"]:
        found.append(f"apparmor.service is {' / '.join(state) or 'missing'}, want enabled / active")
    switched = answers["switched"].split()
    if switched:
        found.append(
            f"profiles switched off or to complain mode by the image: {', '.join(switched)}"
        )
    loaded = loaded_profiles(answers["loaded"])
    declared = declared_modes(answers["declared"])
    found += package_findings(answers["shipped"], answers["md5"], answers["declared"])
    if not loaded:
        found.append("no AppArmor profile is loaded: nothing is confined")
    for name, modes in sorted(declared.items()):
        if name not in loaded:
            found.append(f"profile {name} ({PROFILE_DIR}) is not loaded")
        elif loaded[name] not in modes:
            found.append(
                f"profile {name} is in {loaded[name]} mode, its file says {'/'.join(sorted(modes))}"
            )
    return found


@check(
    "system-apparmor",
    "AppArmor enabled in the kernel, its service enabled and active, and every profile the image "
    "ships loaded in the mode its file declares (read from the kernel)",
)
def test_apparmor(host: Any) -> None:
    answers = {name: a.stdout for name, a in ask(host, PROBE).items()}
    unit = systemd.units(host, ["apparmor.service"])["apparmor.service"]
    answers["service"] = f"{unit.file_state or unit.load} {unit.active}"
    found = problems(answers)
    assert not found, "mandatory access control:\n" + "\n".join(found)
