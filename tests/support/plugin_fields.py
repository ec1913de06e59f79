"""The xenserver-iso source of every template against the pinned plugin's field list.

Packer cannot load packer/xcpng here (Debian's 1.6.6 refuses required_plugins, and the plugin
is not installed), so its `source "xenserver-iso"` blocks are read with python-hcl2 and each
attribute is looked up in the plugin's own list (tests/data/plugin-fields/, from the plugin's
config.hcl2spec.go at the pinned tag). A small shared helper: the EL var files reach the source
only through variables, and the fleet's tests may grow a fuller one.
"""

from __future__ import annotations

from pathlib import Path

from build.catalog import parse_hcl

FIELDS = Path(__file__).resolve().parents[1] / "data" / "plugin-fields"


def pinned_version(packer_dir: Path) -> str:
    """The xenserver plugin version packer/xcpng/plugins.pkr.hcl pins ("0.11.4")."""
    (block,) = parse_hcl(packer_dir / "xcpng" / "plugins.pkr.hcl")["packer"]
    (plugins,) = block["required_plugins"]
    return str(plugins["xenserver"]["version"]).lstrip("= ").strip()


def field_list(version: str) -> tuple[set[str], set[str]]:
    """(source attributes, attributes of a nested disks block) of xenserver-iso `version`."""
    path = FIELDS / f"xenserver-iso-v{version}.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"no field list for xenserver plugin {version}: add {path} from the plugin's "
            "builder/xenserver/common/config.hcl2spec.go at that tag"
        )
    top: set[str] = set()
    disks: set[str] = set()
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            (disks if line.startswith("  ") else top).add(line.strip())
    return top, disks


def source_field_problems(packer_dir: Path) -> list[str]:
    """One line per attribute of a xenserver-iso source that the pinned plugin does not know."""
    top, disks = field_list(pinned_version(packer_dir))
    problems = []
    for path in sorted(packer_dir.rglob("*.pkr.hcl")):
        for block in parse_hcl(path).get("source", []):
            for name, body in (block.get("xenserver-iso") or {}).items():
                where = f"{path.relative_to(packer_dir.parent)}: xenserver-iso.{name}"
                for key, value in (body or {}).items():
                    if key not in top:
                        problems.append(f"{where}: {key!r} is not a field of the plugin")
                    elif key == "disks":
                        for disk in value if isinstance(value, list) else [value]:
                            problems += [
                                f"{where}: disks.{k!r} is not a field of the plugin"
                                for k in disk
                                if k not in disks
                            ]
    return problems
