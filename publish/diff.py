"""What changed between two builds of an OS, read from their SBOMs (`xcpng-golden store diff`,
and the catalog page's "changes since the previous build").

Packages are matched by (name, architecture); versions are compared by the package manager's
rules (pkgdb.versions). An upgrade is marked security when the newer build's SBOM says the
distribution's security suite published that version (`xcpng-golden:security-update`, set
from the harness's archive cache when the image was read); unknown where it could not say.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UsageError
from pkgdb.versions import compare
from publish.sbom import Listed, SbomError, listed_packages
from publish.source import Build, build_folders, find_build, load_build
from publish.stores.base import IntegrityError, Store
from publish.trust import check_build, verified_bytes

KINDS = ("upgraded", "downgraded", "added", "removed")


@dataclass(frozen=True)
class Change:
    kind: str  # upgraded, downgraded, added, removed
    name: str
    arch: str
    old: str | None
    new: str | None
    security: bool | None = None  # upgrades only: the new version is a security update

    def line(self) -> str:
        name = f"{self.name}:{self.arch}" if self.arch not in ("", "all") else self.name
        if self.kind == "added":
            what = f"{name} {self.new}"
        elif self.kind == "removed":
            what = f"{name} {self.old}"
        else:
            what = f"{name} {self.old} -> {self.new}"
        mark = "  [security]" if self.security else ""
        return f"  {self.kind:<10} {what}{mark}"


@dataclass
class Diff:
    os_name: str
    base: str  # build ids
    build: str
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    @property
    def security(self) -> int:
        return sum(1 for c in self.changes if c.security)

    def summary(self) -> str:
        parts = [f"{self.count(k)} {k}" for k in KINDS if self.count(k)]
        if self.security:
            parts[0] += f" ({self.security} security)"
        return ", ".join([*parts, f"{self.unchanged} unchanged"])

    def lines(self) -> list[str]:
        head = f"{self.os_name}: {self.base} -> {self.build}"
        return [head, *(c.line() for c in self.changes), f"  {self.summary()}"]

    def to_json(self) -> dict[str, Any]:
        return {
            "os": self.os_name,
            "base": self.base,
            "build": self.build,
            "changes": [asdict(c) for c in self.changes],
            "unchanged": self.unchanged,
        }


def diff_packages(
    old: dict[tuple[str, str], Listed], new: dict[tuple[str, str], Listed]
) -> tuple[list[Change], int]:
    """The changes from `old` to `new`, sorted by kind then name, and how many stayed."""
    changes: list[Change] = []
    unchanged = 0
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if a is None and b is not None:
            changes.append(Change("added", b.name, b.arch, None, b.version))
        elif b is None and a is not None:
            changes.append(Change("removed", a.name, a.arch, a.version, None))
        elif a is not None and b is not None:
            order = compare(b.kind, a.version, b.version)
            if order == 0:
                unchanged += 1
            elif order < 0:
                changes.append(Change("upgraded", a.name, a.arch, a.version, b.version, b.security))
            else:
                changes.append(Change("downgraded", a.name, a.arch, a.version, b.version))
    changes.sort(key=lambda c: (KINDS.index(c.kind), c.name, c.arch))
    return changes, unchanged


def sbom_of(build: Build, allowed_signers: Path | None, allow_unsigned: bool) -> bytes:
    """The build's SBOM, checked against its SHA256SUMS (and that file's signature when
    allowed signers are given); UsageError for a build published without one."""
    sbom = build.meta.get("sbom")
    if not isinstance(sbom, dict):
        raise UsageError(
            f"{build.os_name} build {build.build_id} has no SBOM (published with metadata "
            f"{build.meta['schema']}, before SBOMs); compare two newer builds"
        )
    trust = check_build(
        build, allowed_signers, allow_unsigned=allow_unsigned or allowed_signers is None
    )
    return verified_bytes(build, str(sbom["name"]), trust)


def diff_of(
    base: Build, build: Build, allowed_signers: Path | None = None, allow_unsigned: bool = False
) -> Diff:
    try:
        old = listed_packages(sbom_of(base, allowed_signers, allow_unsigned))
        new = listed_packages(sbom_of(build, allowed_signers, allow_unsigned))
    except SbomError as e:
        raise IntegrityError(f"{build.os_name}: {e}") from None
    changes, unchanged = diff_packages(old, new)
    return Diff(build.os_name, base.build_id, build.build_id, changes, unchanged)


def previous_build(store: Store, build: Build) -> Build | None:
    """The newest complete build of the same OS older than `build` (by build id)."""
    older = [(b, f) for b, f in build_folders(store, build.os_name) if b < build.build_id]
    return load_build(store, older[0][1]) if older else None


def diff_builds(
    store: Store,
    os_name: str,
    build_id: str | None,
    base_id: str | None,
    *,
    allowed_signers: Path | None = None,
    allow_unsigned: bool = False,
) -> Diff:
    """`store diff`: --build (default latest) against --base (default the one before it)."""
    build = find_build(store, os_name, build_id)
    base = find_build(store, os_name, base_id) if base_id else previous_build(store, build)
    if base is None:
        raise UsageError(
            f"{os_name} has no complete build older than {build.build_id} at {store.url}; "
            "pass --base BUILD to compare with another one"
        )
    if base.build_id == build.build_id:
        raise UsageError(f"--base and --build are the same build ({build.build_id})")
    return diff_of(base, build, allowed_signers, allow_unsigned)
