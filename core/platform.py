"""The contract every platform fulfils, so neither the build nor the checks care where a VM runs.

Kept in the core: the build phase calls it and the platforms implement it, and neither may
import the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from core.model import BootedVM, BuildResult, TemplateSpec


class Platform(Protocol):
    name: str
    has_xen: bool  # False on QEMU: checks that need Xen skip with code platform-has-no-xen

    def preflight(self, specs: Sequence[TemplateSpec] = (), building: bool = True) -> list[str]:
        """Problems found (unreachable, bad credentials, no SR, no room, what the selected OSes
        need from the platform), one line each. `building`: Packer will build them (else
        existing artifacts are only booted)."""
        ...

    def build_vars(
        self, spec: TemplateSpec, workdir: Path, log: Callable[[str], None]
    ) -> dict[str, str]:
        """Packer variables this platform feeds the build (passed as PKR_VAR_* environment,
        never on the command line). The local platform prepares its base disk and build seed
        here; XCP-ng passes pool host, credentials, SR and network. Only variables the template
        declares are passed. `workdir` is private to this build and removed after it."""
        ...

    def recipe_digest(self, spec: TemplateSpec) -> dict[str, str]:
        """Build inputs of this platform's own beyond the packer/ tree (e.g. the local base
        disk's recipe); a change means a rebuild."""
        ...

    def boot(
        self, spec: TemplateSpec, build: BuildResult, workdir: Path
    ) -> AbstractContextManager[BootedVM]:
        """Boot a clone of the artifact with its own NoCloud seed; always remove what it created."""
        ...
