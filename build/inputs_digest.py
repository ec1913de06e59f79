"""The inputs digest: what, if unchanged, lets a cached image be reused instead of rebuilt."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from core.model import TemplateSpec

INSTALLER_SUFFIXES = (".cfg", ".ks", ".seed", ".preseed")
SKIP_PARTS = {".packer.d", "packer_cache", "__pycache__", "output"}


def _files_under(folder: Path) -> Iterable[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not (set(p.relative_to(folder).parts) & SKIP_PARTS)
    )


def installer_files(spec: TemplateSpec, packer_dir: Path) -> list[Path]:
    """The installer files of this OS: its family's folder under http/ (the first folder of
    install_config_path), e.g. every Debian release shares http/debian/, and the files at the
    top of http/ that every family's installer fetches (guest-tools.sh). Without an
    install_config_path, the whole of http/."""
    http = packer_dir / "http"
    path = str(spec.variables.get("install_config_path") or "")
    family = path.split("/", 1)[0] if "/" in path else ""
    if not family:
        return list(_files_under(http))
    shared = sorted(p for p in http.glob("*") if p.is_file())
    return [*shared, *_files_under(http / family)]


def input_files(spec: TemplateSpec, platform: str, packer_dir: Path) -> list[Path]:
    """Every file whose content shapes the image for this OS on this platform: the template
    folder, the var file, the shared scripts and the data they install (packer/files), and,
    when the template serves them to the VM (packer/xcpng does, packer/local does not), the
    OS's installer files."""
    tpl = spec.template_for(platform)
    files: set[Path] = set(_files_under(tpl.path))
    if spec.var_file is not None:
        files.add(spec.var_file)
    files.update(_files_under(packer_dir / "scripts"))
    files.update(_files_under(packer_dir / "files"))
    if tpl.serves_installer:
        files.update(installer_files(spec, packer_dir))
        for p in packer_dir.glob("*"):
            if p.is_file() and p.suffix in INSTALLER_SUFFIXES:
                files.add(p)
    return sorted(files)


def inputs_digest(
    spec: TemplateSpec,
    platform: str,
    packer_dir: Path,
    packer_version: str,
    extra: dict[str, str] | None = None,
) -> str:
    """sha256 over file paths and contents, the Packer and plugin versions, and extra facts
    (e.g. the local platform's base-disk recipe)."""
    packer_dir = packer_dir.absolute()
    h = hashlib.sha256()
    h.update(f"os={spec.name}\nplatform={platform}\npacker={packer_version}\n".encode())
    for name, version in sorted(spec.template_for(platform).plugins.items()):
        h.update(f"plugin {name}={version}\n".encode())
    for key, value in sorted((extra or {}).items()):
        h.update(f"extra {key}={value}\n".encode())
    for path in input_files(spec, platform, packer_dir):
        try:
            rel = path.relative_to(packer_dir)
        except ValueError:
            rel = path
        fh = hashlib.sha256(path.read_bytes()).hexdigest()
        h.update(f"file {rel} {fh}\n".encode())
    return h.hexdigest()
