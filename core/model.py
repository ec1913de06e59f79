"""Records that travel between phases: catalog, build, boot, validate, verdict, publish.

They are plain dataclasses so that they serialise to the JSON files that carry them between
xdist workers, the controller and the separate `xcpng-golden publish` step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UsageError


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of a record class found in `data` (records written by a newer harness may
    carry more)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


FAMILIES = ("debian", "el")
"""OS families: `debian` (Debian, Ubuntu) and `el` (AlmaLinux, Rocky, CentOS Stream, Fedora)."""

PLATFORMS = ("xcpng", "local")


@dataclass(frozen=True)
class TemplateRef:
    """One Packer template folder and what it is for."""

    path: Path
    platform: str  # "xcpng", "local" or "any" (null/file builders in tests)
    sources: tuple[str, ...]  # "type.name" of every source block
    plugins: dict[str, str] = field(default_factory=dict)  # required_plugins: name -> version
    declared: tuple[str, ...] = ()  # variables the template declares (only these get PKR_VAR_*)
    required_version: str | None = None  # packer { required_version = "..." }
    # Serves installer files to the VM (http_directory, cd_files): they are build inputs then.
    serves_installer: bool = True


@dataclass(frozen=True)
class TemplateSpec:
    """One OS as the catalog found it."""

    name: str
    family: str
    version: str
    templates: dict[str, TemplateRef]  # platform -> template
    var_file: Path | None = None
    variables: dict[str, Any] = field(default_factory=dict)  # literal values after var files
    inferred: tuple[str, ...] = ()  # identity fields only inferred (from an ISO URL or path)
    disk_size_mb: int | None = None
    # platform -> why its template cannot build this OS (packer/local needs a base-disk suite)
    refused: dict[str, str] = field(default_factory=dict)

    def template_for(self, platform: str) -> TemplateRef:
        if platform in self.refused:
            raise UsageError(
                f"{self.name} cannot be built on the {platform} platform: its var file "
                f"{self.var_file} {self.refused[platform]}; choose another --platform, or "
                "check an existing artifact with --xva"
            )
        ref = self.templates.get(platform) or self.templates.get("any")
        if ref is None:
            have = ", ".join(sorted(self.templates)) or "none"
            raise UsageError(
                f"{self.name}: no Packer template for platform {platform!r} "
                f"(templates for: {have}); "
                f"add one under the packer directory or choose --platform {have.split(',')[0]}"
            )
        return ref


@dataclass
class BuildResult:
    """What the build phase hands to boot and publish; kept as artifacts/<os>/build.json."""

    os_name: str
    status: str  # "built", "cached", "provided" (--xva), or "failed"
    artifact: str | None  # absolute path of the image (raw, qcow2 or xva)
    artifact_format: str | None  # "raw", "qcow2" or "xva"
    sha256: str | None
    size: int | None
    log_path: str | None
    duration_s: float
    packer_version: str | None
    plugins: dict[str, str]
    inputs_digest: str | None
    template: str | None
    var_file: str | None
    built_at: float | None  # epoch seconds the image was produced (for --max-image-age)
    platform: str
    message: str | None = None  # the failure, when status == "failed"
    failure_class: str | None = None  # "infrastructure" or "image-defect" when failed
    guest_tools: str | None = None  # the guest-tools source the build used, "none" when it had none
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildResult:
        return cls(**_known_fields(cls, data))


@dataclass
class BootedVM:
    """A running clone of a template, reachable over SSH, that the checks are run against."""

    os_name: str
    platform: str
    address: str
    port: int
    user: str
    key_path: Path
    known_hosts: Path | None
    instance_id: str  # from the NoCloud seed; proves the checks reached this VM
    hostname: str  # from the NoCloud seed
    marker: str  # a user-data marker written by the seed
    facts: dict[str, Any] = field(default_factory=dict)  # platform facts, e.g. guest metrics
    # Set by the harness before the boot context exits (core.settings.keep_decision): the
    # platform then leaves the clone running and describes it in `kept`.
    keep: bool = False
    kept: KeptVM | None = None


@dataclass(frozen=True)
class KeptVM:
    """A clone --keep-vm left running: how to reach it, how to stop it, until when.

    Stored as kept.json in the clone's folder under <artifacts>/vms/, beside its key and
    known_hosts, which stay there until the janitor stops the clone after `expires_at`."""

    name: str
    os_name: str
    platform: str
    run_id: str
    folder: str
    expires_at: float
    ssh: str  # the command that logs in
    stop: str  # the command that removes it now
    details: dict[str, Any] = field(default_factory=dict)  # e.g. QEMU pid, XAPI uuid

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeptVM:
        return cls(**_known_fields(cls, data))
