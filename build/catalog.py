"""The OS catalog: Packer templates and var files read with python-hcl2 into one spec per OS.

python-hcl2 parses but does not evaluate, so identity (os_name, os_family, os_version) must be
written literally, in a var file or as a variable default. A value the catalog could only infer
(the version from an ISO URL, the name from a folder) is marked as inferred, and a value that
contradicts what the template says is a usage error, as is any file that does not parse.

Layout rules (see docs/operator/session.md, "Catalog"):
- a template folder is any folder under the packer directory holding `*.pkr.hcl` files
  (`scripts/`, `http/` and `os/` are not template folders);
- `os/<name>.pkrvars.hcl` var files are shared: each applies to every template folder whose
  `supported_families` variable (if declared) lists its family;
- a `*.pkrvars.hcl` file inside a template folder applies to that folder only;
  `*.auto.pkrvars.hcl` files are loaded by Packer itself and merged into the defaults;
- a template folder without any var file is one OS described by its own variable defaults;
- a template folder may declare `required_os_variables`: an OS whose var file does not set
  them all cannot be built there (packer/local needs the Debian suite and kernel package of
  its base disk), and selecting it for that platform is a usage error naming what is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from core.errors import UsageError
from core.files import display_path
from core.model import FAMILIES, TemplateRef, TemplateSpec

IDENTITY = ("os_name", "os_family", "os_version")
NOT_TEMPLATE_DIRS = {"scripts", "http", "os", "files"}
SHARED_VARS_DIR = "os"
# Source attributes through which a template hands installer files to the VM.
INSTALLER_SOURCE_KEYS = ("http_directory", "http_content", "cd_files", "cd_content", "floppy_files")

SOURCE_PLATFORM = {
    "xenserver-iso": "xcpng",
    "xenserver-xva": "xcpng",
    "qemu": "local",
}

FAMILY_OF_NAME = (
    ("debian", "debian"),
    ("ubuntu", "debian"),
    ("almalinux", "el"),
    ("alma", "el"),
    ("rocky", "el"),
    ("centos", "el"),
    ("rhel", "el"),
    ("fedora", "el"),
    ("oracle", "el"),
)

_OPTS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_heredocs=False
)
_VERSION_IN_URL = re.compile(
    r"(?i)(?:debian|ubuntu|rocky|almalinux|alma|centos-stream|centos|fedora)"
    r"[-_a-z]*?[-_]?(\d+(?:\.\d+)*)"
)
# Architecture names hold digits that are no version: Fedora-Server-netinst-x86_64-44-1.7.iso.
_ARCH_IN_NAME = re.compile(r"(?i)x86[-_]64|amd64|aarch64|arm64|i[3-6]86|ppc64le|s390x")


@dataclass
class _Template:
    path: Path
    files: list[Path]
    defaults: dict[str, Any]  # literal variable defaults, auto var files and literal locals
    declared: set[str]
    sources: list[tuple[str, str, dict[str, Any]]]
    plugins: dict[str, str]
    supported_families: list[str] | None
    required_version: str | None = None
    auto_var_files: list[Path] = field(default_factory=list)
    required_os_variables: list[str] = field(default_factory=list)

    def builds_family(self, family: str) -> bool:
        """The `supported_families` rule: no list means every family."""
        return self.supported_families is None or family in self.supported_families

    @property
    def platform(self) -> str:
        kinds = {SOURCE_PLATFORM.get(t, "any") for t, _, _ in self.sources}
        return kinds.pop() if len(kinds) == 1 else "any"

    def ref(self) -> TemplateRef:
        return TemplateRef(
            path=self.path,
            platform=self.platform,
            sources=tuple(f"{t}.{n}" for t, n, _ in self.sources),
            plugins=dict(self.plugins),
            declared=tuple(sorted(self.declared)),
            required_version=self.required_version,
            serves_installer=any(
                key in body for _, _, body in self.sources for key in INSTALLER_SOURCE_KEYS
            ),
        )


@dataclass
class Catalog:
    packer_dir: Path
    specs: dict[str, TemplateSpec]

    def names(self) -> list[str]:
        return sorted(self.specs)

    def buildable_on(self, platform: str) -> list[str]:
        """The OSes a template of `platform` (or a platform-neutral one) can build."""
        return [
            n
            for n in self.names()
            if platform not in self.specs[n].refused
            and (platform in self.specs[n].templates or "any" in self.specs[n].templates)
        ]

    def select(self, wanted: str | None, platform: str | None = None) -> list[TemplateSpec]:
        """Resolve `--os`: 'all' or a comma list; unknown names list the known ones. With a
        platform, 'all' means every OS that platform can build (a named OS it cannot build
        is refused later, by TemplateSpec.template_for, naming why)."""
        if not wanted:
            raise UsageError(
                "no OS selected: pass --os all or --os NAME[,NAME] (known: "
                + ", ".join(self.names())
                + ")"
            )
        if wanted.strip() == "all":
            names = self.names() if platform is None else self.buildable_on(platform)
            if not names:
                raise UsageError(
                    f"--os all: no OS of the catalog can be built on platform {platform!r}; "
                    "see --list-os"
                )
            return [self.specs[n] for n in names]
        picked: list[TemplateSpec] = []
        unknown: list[str] = []
        for name in (w.strip() for w in wanted.split(",")):
            if not name:
                continue
            if name in self.specs:
                if self.specs[name] not in picked:
                    picked.append(self.specs[name])
            else:
                unknown.append(name)
        if unknown:
            raise UsageError(
                f"unknown OS {', '.join(unknown)} in --os; known: {', '.join(self.names())} "
                "(or 'all')"
            )
        if not picked:
            raise UsageError("--os names no OS; pass --os all or a comma list")
        return picked


def parse_hcl(path: Path) -> dict[str, Any]:
    """Parse one HCL file; a syntax error becomes a usage error naming the file and line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = hcl2.loads(text, serialization_options=_OPTS)
    except (UnexpectedToken, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput) as exc:
        line = getattr(exc, "line", "?")
        col = getattr(exc, "column", "?")
        got = getattr(exc, "token", None) or getattr(exc, "char", None)
        detail = f"unexpected {str(got).strip()!r}" if got not in (None, "") else "syntax error"
        raise UsageError(
            f"{path}:{line}:{col}: malformed HCL ({detail}); fix the file and run again"
        ) from None
    except Exception as exc:  # python-hcl2 raises bare exceptions for some inputs
        raise UsageError(
            f"{path}: malformed HCL ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: malformed HCL (not a body of blocks and attributes)")
    return data


def is_literal(value: Any) -> bool:
    if isinstance(value, str):
        return "${" not in value
    if isinstance(value, list):
        return all(is_literal(v) for v in value)
    if isinstance(value, dict):
        return all(is_literal(v) for v in value.values())
    return isinstance(value, (int, float, bool)) or value is None


def _read_template(folder: Path) -> _Template:
    files = sorted(folder.glob("*.pkr.hcl"))
    defaults: dict[str, Any] = {}
    declared: set[str] = set()
    sources: list[tuple[str, str, dict[str, Any]]] = []
    plugins: dict[str, str] = {}
    literal_locals: dict[str, Any] = {}
    required_version: str | None = None
    for f in files:
        data = parse_hcl(f)
        for block in data.get("variable", []):
            for name, raw in block.items():
                declared.add(name)
                body = raw or {}
                if "default" in body and is_literal(body["default"]):
                    defaults[name] = body["default"]
        for block in data.get("locals", []):
            for name, value in block.items():
                if is_literal(value):
                    literal_locals[name] = value
        for block in data.get("local", []):
            for name, body in block.items():
                if is_literal((body or {}).get("expression")):
                    literal_locals[name] = body["expression"]
        for block in data.get("source", []):
            for stype, named in block.items():
                for sname, body in (named or {}).items():
                    sources.append((stype, sname, body or {}))
        for block in data.get("packer", []):
            if isinstance(block.get("required_version"), str):
                required_version = block["required_version"]
            for req in block.get("required_plugins", []):
                for pname, spec in req.items():
                    if isinstance(spec, dict):
                        plugins[pname] = str(spec.get("version", "")).strip()
    auto = sorted(folder.glob("*.auto.pkrvars.hcl"))
    for f in auto:
        for k, v in parse_hcl(f).items():
            if is_literal(v):
                defaults[k] = v
    for k, v in literal_locals.items():
        defaults.setdefault(k, v)
    fams = defaults.get("supported_families")
    supported = [str(x) for x in fams] if isinstance(fams, list) else None
    required = defaults.get("required_os_variables")
    return _Template(
        folder,
        files,
        defaults,
        declared,
        sources,
        plugins,
        supported,
        required_version,
        auto,
        [str(x) for x in required] if isinstance(required, list) else [],
    )


def _family_of(name: str) -> str | None:
    low = name.lower()
    for prefix, fam in FAMILY_OF_NAME:
        if low.startswith(prefix):
            return fam
    return None


def _iso_url(values: dict[str, Any], tpl: _Template) -> str | None:
    for key in ("iso_url", "iso_urls"):
        v = values.get(key)
        if isinstance(v, list) and v and is_literal(v[0]):
            return str(v[0])
        if isinstance(v, str) and is_literal(v):
            return v
    for _, _, body in tpl.sources:
        for key in ("iso_url", "iso_urls"):
            v = body.get(key)
            if isinstance(v, list) and v and is_literal(v[0]):
                return str(v[0])
            if isinstance(v, str) and is_literal(v):
                return v
    return None


def _version_from_url(url: str | None) -> str | None:
    if not url:
        return None
    url = _ARCH_IN_NAME.sub("", url)
    m = _VERSION_IN_URL.search(url.rsplit("/", 1)[-1]) or _VERSION_IN_URL.search(url)
    return m.group(1) if m else None


def _versions_agree(declared: str, inferred: str) -> bool:
    return (
        inferred == declared
        or inferred.startswith(declared + ".")
        or declared.startswith(inferred + ".")
    )


def _identity(
    tpl: _Template, var_file: Path | None, values: dict[str, Any]
) -> tuple[dict[str, str], tuple[str, ...]]:
    where = var_file or (tpl.files[0] if tpl.files else tpl.path)
    ident: dict[str, str] = {}
    inferred: list[str] = []
    for key in IDENTITY:
        v = values.get(key)
        if v is not None and not is_literal(v):
            raise UsageError(
                f"{where}: {key} must be a literal string (python-hcl2 does not evaluate "
                f"expressions), got {v!r}"
            )
        if v not in (None, ""):
            ident[key] = str(v)
    url_version = _version_from_url(_iso_url(values, tpl))
    if "os_name" not in ident:
        if var_file is None and _family_of(tpl.path.name):
            ident["os_name"] = tpl.path.name
            inferred.append("os_name")
        else:
            raise UsageError(
                f'{where}: no os_name; set os_name = "..." in the var file or as the default '
                'of variable "os_name"'
            )
    name = ident["os_name"]
    if "os_family" not in ident:
        fam = _family_of(name)
        if fam is None:
            raise UsageError(
                f"{where}: no os_family for {name}; set os_family to one of {', '.join(FAMILIES)}"
            )
        ident["os_family"] = fam
        inferred.append("os_family")
    if ident["os_family"] not in FAMILIES:
        raise UsageError(
            f"{where}: os_family {ident['os_family']!r} is not one of {', '.join(FAMILIES)}"
        )
    name_family = _family_of(name)
    if name_family and name_family != ident["os_family"]:
        raise UsageError(
            f"{where}: contradictory identity: os_name {name!r} is a {name_family} OS but "
            f"os_family is {ident['os_family']!r}"
        )
    if "os_version" not in ident:
        if url_version is None:
            raise UsageError(
                f'{where}: no os_version for {name}; set os_version = "..." in the var file'
            )
        ident["os_version"] = url_version
        inferred.append("os_version")
    elif url_version and not _versions_agree(ident["os_version"], url_version):
        raise UsageError(
            f"{where}: contradictory identity: os_version is {ident['os_version']!r} but the "
            f"ISO URL says {url_version!r}; fix one of them"
        )
    return ident, tuple(inferred)


def _template_folders(packer_dir: Path) -> list[Path]:
    return sorted(
        {
            p.parent
            for p in packer_dir.rglob("*.pkr.hcl")
            if not (set(p.relative_to(packer_dir).parts[:-1]) & NOT_TEMPLATE_DIRS)
        }
    )


def _var_files_for(
    tpl: _Template, shared: list[tuple[Path, dict[str, Any]]]
) -> list[tuple[Path | None, dict[str, Any]]]:
    """The var files a template is built with: its own, then the shared ones of a family it
    supports; none means the template describes one OS by its own defaults."""
    own = [
        f
        for f in sorted(tpl.path.glob("*.pkrvars.hcl"))
        if not f.name.endswith(".auto.pkrvars.hcl")
    ]
    pairs: list[tuple[Path | None, dict[str, Any]]] = [(f, parse_hcl(f)) for f in own]
    for f, vals in shared:
        fam = vals.get("os_family") or _family_of(str(vals.get("os_name", "")))
        if tpl.builds_family(str(fam)):
            pairs.append((f, vals))
    if not pairs and (not shared or "os_name" in tpl.defaults):
        pairs.append((None, {}))
    return pairs


def _missing_os_variables(tpl: _Template, var_file: Path | None, vals: dict[str, Any]) -> list[str]:
    """The variables `tpl` requires from an OS var file that this one does not set."""
    if var_file is None:
        return []
    return [v for v in tpl.required_os_variables if vals.get(v) in (None, "", [])]


def _refusal(tpl: _Template, missing: list[str]) -> str:
    """Why `tpl` cannot build an OS, short enough for a --list-os cell."""
    return f"sets no {', '.join(missing)}, which {tpl.path.parent.name}/{tpl.path.name} needs"


def _refuse_other_families(found: dict[str, dict[str, Any]], tpl: _Template) -> None:
    """A template's `supported_families` keeps other families' var files out of it; say so for
    each such OS, so that asking for it on that platform names the rule, not a missing file."""
    if tpl.supported_families is None:
        return
    platform = tpl.ref().platform
    for e in found.values():
        family = e["ident"]["os_family"]
        if platform in e["templates"] or platform in e["refused"]:
            continue
        if not tpl.builds_family(family):
            e["refused"][platform] = (
                f"names family {family}, which {tpl.path.parent.name}/{tpl.path.name} does not "
                f"build (its supported_families: {', '.join(tpl.supported_families)})"
            )


def _add(
    found: dict[str, dict[str, Any]], tpl: _Template, var_file: Path | None, vals: dict[str, Any]
) -> None:
    """Record that `tpl` builds the OS `var_file` describes (one template per platform), or
    why it cannot."""
    values = {**tpl.defaults, **{k: v for k, v in vals.items() if is_literal(v) or k in IDENTITY}}
    ident, inferred = _identity(tpl, var_file, values)
    name = ident["os_name"]
    entry = found.setdefault(
        name,
        {
            "ident": ident,
            "inferred": inferred,
            "templates": {},
            "refused": {},
            "var_file": var_file,
            "values": values,
            "where": var_file or tpl.path,
        },
    )
    if entry["ident"] != ident:
        raise UsageError(
            f"contradictory identity for {name}: {entry['where']} says "
            f"{entry['ident']} but {var_file or tpl.path} says {ident}"
        )
    ref = tpl.ref()
    missing = _missing_os_variables(tpl, var_file, vals)
    if var_file is not None and missing:
        entry["refused"][ref.platform] = _refusal(tpl, missing)
        return
    if ref.platform in entry["templates"]:
        raise UsageError(
            f"{name} has two templates for platform {ref.platform}: "
            f"{entry['templates'][ref.platform].path} and {tpl.path}; keep one"
        )
    entry["templates"][ref.platform] = ref
    if entry["var_file"] is None:
        entry["var_file"] = var_file
    entry["values"] = {**values, **entry["values"]}


def _spec(name: str, e: dict[str, Any]) -> TemplateSpec:
    disk = e["values"].get("disk_size_mb")
    return TemplateSpec(
        name=name,
        family=e["ident"]["os_family"],
        version=e["ident"]["os_version"],
        templates=e["templates"],
        var_file=e["var_file"],
        variables=e["values"],
        inferred=e["inferred"],
        disk_size_mb=int(disk)
        if isinstance(disk, (int, float, str)) and str(disk).isdigit()
        else None,
        refused=dict(e["refused"]),
    )


def load_catalog(packer_dir: Path) -> Catalog:
    """Read every template and var file under packer_dir; raise UsageError on the first problem."""
    packer_dir = packer_dir.absolute()
    if not packer_dir.is_dir():
        raise UsageError(
            f"Packer directory {packer_dir} does not exist; pass --packer-dir or run from the "
            "repository root"
        )
    templates = [_read_template(f) for f in _template_folders(packer_dir)]
    shared_var_files = sorted((packer_dir / SHARED_VARS_DIR).glob("*.pkrvars.hcl"))
    shared = [(f, parse_hcl(f)) for f in shared_var_files]
    found: dict[str, dict[str, Any]] = {}
    for tpl in templates:
        for var_file, vals in _var_files_for(tpl, shared):
            _add(found, tpl, var_file, vals)
    for tpl in templates:
        _refuse_other_families(found, tpl)
    if not found:
        raise UsageError(
            f"no OS templates under {packer_dir}: expected folders with *.pkr.hcl files and "
            f"var files in {packer_dir / SHARED_VARS_DIR}"
        )
    return Catalog(packer_dir, {name: _spec(name, e) for name, e in found.items()})


def describe(spec: TemplateSpec, root: Path) -> dict[str, Any]:
    """One row of --list-os (also its JSON form)."""

    return {
        "name": spec.name,
        "family": spec.family,
        "version": spec.version,
        "templates": {k: display_path(v.path, root) for k, v in sorted(spec.templates.items())},
        "var_file": display_path(spec.var_file, root),
        "inferred": list(spec.inferred),
        "refused": dict(sorted(spec.refused.items())),
    }
