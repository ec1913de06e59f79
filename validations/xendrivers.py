"""The Xen paravirtual front-end drivers a clone needs on XCP-ng, read offline from the image:
present in every kernel it can boot, and not switched off by the module configuration.

On XCP-ng a guest's network card and disks are `vif` and `vbd` devices on xenbus; without
xen-netfront a clone has no network, without xen-blkfront it sees no disk once the PV drivers
take over from the emulated ones. The local QEMU platform uses virtio, so only reading the
image can catch a template that would boot here and fail on the pool.

Read as kmod reads it: a driver is there when the kernel's `modules.builtin` or `modules.dep`
names it (any compression suffix); `blacklist NAME` stops its loading by alias (the way xenbus
loads front ends), `install NAME COMMAND` replaces its loading by COMMAND (off unless the
command loads the module itself), both from every modprobe.d folder with kmod's precedence
(a file in /etc hides a same-named one in the library folders); the kernel's
`module_blacklist=` and `modprobe.blacklist=` (judged by the caller on each boot command line).
Module names compare with `-` and `_` as one. Pure.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

# driver -> what a clone on XCP-ng loses without it
REQUIRED = {
    "xen_netfront": "its network (vif)",
    "xen_blkfront": "its disks (vbd)",
}
MODULE_DIRS = ("/lib/modules", "/usr/lib/modules")
# kmod's configuration folders, highest precedence first (libkmod-config.c, default_config_paths)
CONFIG_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d",
               "/usr/lib/modprobe.d", "/lib/modprobe.d")  # fmt: skip
_KO = re.compile(r"\.ko(\.(xz|gz|zst))?$")

Read = Callable[[str], str | None]
ListDir = Callable[[str], list[str]]


def normalise(name: str) -> str:
    return name.replace("-", "_")


def _module_names(text: str) -> set[str]:
    """Module names in modules.builtin or modules.dep (paths before any `:`)."""
    names = set()
    for line in text.splitlines():
        path = line.split(":", 1)[0].strip()
        if path:
            names.add(normalise(_KO.sub("", posixpath.basename(path))))
    return names


def kernel_findings(read: Read, listdir: ListDir) -> list[str]:
    """Each installed kernel that lacks a required driver."""
    found, seen = [], set()
    for top in MODULE_DIRS:
        for version in sorted(listdir(top)):
            if version in seen:  # /lib is a link to /usr/lib on merged-/usr systems
                continue
            seen.add(version)
            folder = f"{top}/{version}"
            dep, builtin = read(f"{folder}/modules.dep"), read(f"{folder}/modules.builtin")
            if dep is None and builtin is None:
                continue  # not a kernel's folder (or a link to the other top)
            have = _module_names(dep or "") | _module_names(builtin or "")
            for name, loses in REQUIRED.items():
                if name not in have:
                    found.append(
                        f"kernel {version} has no {name.replace('_', '-')} (neither built in "
                        f"nor a module): a clone on XCP-ng would lose {loses}"
                    )
    return found


def config_files(listdir: ListDir) -> list[str]:
    """The modprobe.d files kmod reads, a name in a higher folder hiding the same name lower."""
    chosen: dict[str, str] = {}
    for folder in CONFIG_DIRS:
        for name in listdir(folder):
            if name.endswith(".conf") and name not in chosen:
                chosen[name] = posixpath.join(folder, name)
    return [chosen[n] for n in sorted(chosen)]


def config_findings(read: Read, listdir: ListDir) -> list[str]:
    """Required drivers blacklisted or replaced by an install command in modprobe.d."""
    found = []
    for path in config_files(listdir):
        text = read(path) or ""
        for number, raw in enumerate(text.splitlines(), 1):
            words = raw.split("#", 1)[0].split()
            if len(words) < 2 or normalise(words[1]) not in REQUIRED:
                continue
            name = normalise(words[1])
            if words[0] == "blacklist":
                found.append(
                    f"{path}:{number}: blacklist {words[1]}: xenbus cannot load it, so a clone on "
                    f"XCP-ng would lose {REQUIRED[name]}"
                )
            elif words[0] == "install":
                command = " ".join(words[2:])
                loads_it = "modprobe" in command and any(normalise(w) == name for w in words[2:])
                if not loads_it:
                    found.append(
                        f"{path}:{number}: install {words[1]} {command}: loading it runs that "
                        f"instead, so a clone on XCP-ng would lose {REQUIRED[name]}"
                    )
    return found


def cmdline_findings(text: str, where: str) -> list[str]:
    """`module_blacklist=` / `modprobe.blacklist=` naming a required driver on a command line."""
    found = []
    for word in text.split():
        key, eq, value = word.strip("\"'").partition("=")
        if eq and key in ("module_blacklist", "modprobe.blacklist"):
            hit = [v for v in value.split(",") if normalise(v) in REQUIRED]
            if hit:
                found.append(
                    f"{where}: {key}={value}: {', '.join(hit)} never loads, so a clone on XCP-ng "
                    "would lose " + " and ".join(REQUIRED[normalise(h)] for h in hit)
                )
    return found
