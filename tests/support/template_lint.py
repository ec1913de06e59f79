"""Static checks of the packer/ tree for what cannot run on these machines (the installers, the
xenserver-iso plugin): each returns a list of problems, one line each, empty when all is well.

They take the packer folder as an argument, so the tests run them on the repository and on a
temporary copy with a new OS or a planted defect (tests/integration/test_installer_files.py,
tests/integration/test_add_an_os.py). The tools are each ecosystem's own where one runs here:
debconf-set-selections for a preseed, subiquity's published JSON schema and cloud-init's
`cloud-init schema` for autoinstall user-data, the plugin's field list for the source blocks.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from build.catalog import load_catalog, parse_hcl
from core.model import TemplateSpec
from tests.support import cloudinit

DATA = Path(__file__).resolve().parents[1] / "data"
AUTOINSTALL_SCHEMA = DATA / "subiquity" / "autoinstall-schema.json"
PLUGIN_FIELDS = DATA / "packer-plugin-xenserver"
PATH_ROOT = re.compile(r"\$\{path\.root\}/([^\"}$]+)")


def _rel(path: Path, packer_dir: Path) -> str:
    try:
        return str(path.relative_to(packer_dir.parent))
    except ValueError:
        return str(path)


# --- the plugin's field list -------------------------------------------------------------
def plugin_version(packer_dir: Path) -> str:
    """The xenserver plugin version pinned in packer/xcpng/plugins.pkr.hcl ("0.11.4")."""
    (block,) = parse_hcl(packer_dir / "xcpng" / "plugins.pkr.hcl")["packer"]
    (plugins,) = block["required_plugins"]
    return str(plugins["xenserver"]["version"]).lstrip("= ").strip()


def plugin_fields(version: str) -> tuple[set[str], set[str]]:
    """(source attributes, attributes of a nested `disks` block) of xenserver-iso `version`."""
    path = PLUGIN_FIELDS / f"xenserver-iso-v{version}.fields"
    if not path.is_file():
        raise FileNotFoundError(
            f"no field list for xenserver plugin {version} ({path}); add one from the plugin's "
            "builder/xenserver/common/config.hcl2spec.go at that tag"
        )
    top: set[str] = set()
    disks: set[str] = set()
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            (disks if line.startswith("  ") else top).add(line.strip())
    return top, disks


def plugin_field_problems(packer_dir: Path) -> list[str]:
    """Every attribute of every xenserver-iso source is one the pinned plugin accepts."""
    top, disks = plugin_fields(plugin_version(packer_dir))
    problems = []
    for path in sorted(packer_dir.rglob("*.pkr.hcl")):
        for block in parse_hcl(path).get("source", []):
            for name, body in (block.get("xenserver-iso") or {}).items():
                where = f"{_rel(path, packer_dir)}: source xenserver-iso.{name}"
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


# --- files the templates and var files reference -----------------------------------------
def _installer_keys(packer_dir: Path) -> dict[str, set[str]]:
    """The installer families packer/xcpng knows: keys of installer_args and boot_credentials."""
    found: dict[str, set[str]] = {"installer_args": set(), "boot_credentials": set()}
    for path in (packer_dir / "xcpng").glob("*.pkr.hcl"):
        data = parse_hcl(path)
        for block in data.get("locals", []):
            if isinstance(block.get("installer_args"), dict):
                found["installer_args"] |= set(block["installer_args"])
        for block in data.get("local", []):
            body = block.get("boot_credentials") or {}
            if isinstance(body.get("expression"), dict):
                found["boot_credentials"] |= set(body["expression"])
    return found


def referenced_file_problems(packer_dir: Path) -> list[str]:
    """Files named by `${path.root}/...` in a template, and each var file's installer file
    (with its family's companions and the template's arguments for that family), exist."""
    problems = []
    for path in sorted(packer_dir.rglob("*.pkr.hcl")):
        for ref in PATH_ROOT.findall(path.read_text()):
            target = (path.parent / ref).resolve()
            if not target.exists():
                problems.append(f"{_rel(path, packer_dir)}: references {ref}, which does not exist")
    families = _installer_keys(packer_dir)
    for spec in load_catalog(packer_dir).specs.values():
        where = _rel(spec.var_file, packer_dir) if spec.var_file else spec.name
        config = str(spec.variables.get("install_config_path") or "")
        if not config:
            problems.append(f"{where}: no install_config_path")
            continue
        target = packer_dir / "http" / config
        if not target.is_file():
            problems.append(
                f"{where}: install_config_path {config!r}: {_rel(target, packer_dir)} does not exist"
            )
        family = config.split("/", 1)[0]
        for companion in COMPANIONS.get(family, ()):
            if not (target.parent / companion).is_file():
                problems.append(f"{where}: {family} needs {companion} beside {config}, missing")
        for local_name, keys in families.items():
            if family not in keys:
                problems.append(
                    f"{where}: packer/xcpng has no {local_name} entry for installer family "
                    f"{family!r} (known: {', '.join(sorted(keys)) or 'none'})"
                )
    return problems


# --- installer files, per family ------------------------------------------------------------
def preseed_problems(path: Path, spec: TemplateSpec | None = None) -> list[str]:
    done = subprocess.run(
        ["debconf-set-selections", "--checkonly", str(path)], capture_output=True, text=True
    )
    return (
        [] if done.returncode == 0 else [f"{path}: debconf-set-selections: {done.stderr.strip()}"]
    )


def autoinstall_problems(path: Path, spec: TemplateSpec | None = None) -> list[str]:
    """Subiquity's autoinstall schema on the `autoinstall:` section of cloud-config user-data."""
    text = path.read_text()
    if not text.startswith("#cloud-config"):
        return [
            f"{path}: user-data must start with #cloud-config (subiquity reads it as cloud-config)"
        ]
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"{path}: not YAML: {exc}"]
    if not isinstance(doc, dict) or not isinstance(doc.get("autoinstall"), dict):
        return [f"{path}: no autoinstall: mapping (subiquity would ask every question)"]
    schema: dict[str, Any] = json.loads(AUTOINSTALL_SCHEMA.read_text())
    # Subiquity refuses cloud-config with an autoinstall keyword outside `autoinstall:`
    # (doc/reference/autoinstall-schema.rst, "How the delivery is verified"); some of them,
    # e.g. timezone or packages, are valid cloud-config too, so cloud-init's schema passes them.
    misplaced = [
        f"{path}: {key!r} is an autoinstall key outside autoinstall: (subiquity refuses it)"
        for key in doc
        if key != "autoinstall" and key in schema["properties"]
    ]
    validator = jsonschema.Draft7Validator(schema)
    return misplaced + [
        f"{path}: autoinstall.{'.'.join(str(p) for p in err.absolute_path) or '(top)'}: {err.message}"
        for err in sorted(validator.iter_errors(doc["autoinstall"]), key=lambda e: list(e.path))
    ]


def cloud_config_problems(path: Path, spec: TemplateSpec | None = None) -> list[str]:
    return [f"{path}: {p}" for p in _cloud_config_verdict(path.read_text())]


@functools.cache
def _cloud_config_verdict(text: str) -> tuple[str, ...]:
    """One `cloud-init schema` run per distinct content (several OSes share one user-data)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "user-data"
        config.write_text(text)
        done = cloudinit.schema_check(config)
    if done.returncode == 0:
        return ()
    version = cloudinit.cloud_init_version()
    return (f"cloud-init schema ({version}):\n{done.stdout}{done.stderr}",)


def syntax_version(os_name: str, version: str) -> str:
    """pykickstart's syntax version for an EL var file: F<release> or RHEL<major>."""
    major = version.split(".", maxsplit=1)[0]
    return f"F{major}" if os_name.startswith("fedora") else f"RHEL{major}"


def kickstart_problems(path: Path, spec: TemplateSpec | None = None) -> list[str]:
    """pykickstart's ksvalidator, in the syntax of the OS's release (RHEL9 when unknown)."""
    version = syntax_version(spec.name, spec.version) if spec else "RHEL9"
    ksvalidator = Path(sys.executable).with_name("ksvalidator")
    done = subprocess.run(
        [str(ksvalidator), "-v", version, str(path)], capture_output=True, text=True, timeout=60
    )
    out = (done.stdout + done.stderr).strip()
    return [] if done.returncode == 0 else [f"{path}: ksvalidator -v {version}: {out}"]


# Installer family (the packer/http/ folder) -> files that must sit beside the installer file,
# and the validators of the installer file.
COMPANIONS: dict[str, tuple[str, ...]] = {"ubuntu": ("meta-data",)}
VALIDATORS: dict[str, tuple[Callable[[Path, TemplateSpec | None], list[str]], ...]] = {
    "debian": (preseed_problems,),
    "ubuntu": (autoinstall_problems, cloud_config_problems),
    "el": (kickstart_problems,),
}


def installer_problems(packer_dir: Path, os_name: str) -> list[str]:
    """Every validator of the OS's installer family on its installer file."""
    spec = load_catalog(packer_dir).specs[os_name]
    config = str(spec.variables.get("install_config_path") or "")
    family = config.split("/", 1)[0]
    if family not in VALIDATORS:
        return [
            f"{os_name}: no validator for installer family {family!r} (tests/support/template_lint.py)"
        ]
    path = packer_dir / "http" / config
    return [p for check in VALIDATORS[family] for p in check(path, spec)]


def all_problems(packer_dir: Path) -> list[str]:
    problems = plugin_field_problems(packer_dir) + referenced_file_problems(packer_dir)
    for name in load_catalog(packer_dir).names():
        problems += installer_problems(packer_dir, name)
    return problems
