"""The contract every platform fulfils, so the validations do not care where a VM runs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from core.model import BootedVM, BuildResult, TemplateSpec
from core.redact import Redactor
from core.settings import Settings


class Platform(Protocol):
    name: str
    has_xen: bool  # False on QEMU: checks that need Xen skip with code platform-has-no-xen

    def preflight(self) -> list[str]:
        """Problems found (unreachable, bad credentials, no SR, no room), one line each."""
        ...

    def build_vars(
        self, spec: TemplateSpec, workdir: Path, log: Callable[[str], None]
    ) -> dict[str, str]:
        """Packer variables this platform feeds the build (passed as PKR_VAR_* environment,
        never on the command line). The local platform prepares its base disk and build seed
        here; XCP-ng passes pool host, credentials, SR and network. Only variables the template
        declares are passed. `workdir` is private to this build and removed after it."""
        ...

    def boot(
        self, spec: TemplateSpec, build: BuildResult, workdir: Path
    ) -> AbstractContextManager[BootedVM]:
        """Boot a clone of the artifact with its own NoCloud seed; always remove what it created."""
        ...


def get_platform(name: str, settings: Settings, run_id: str, redactor: Redactor) -> Platform:
    """The platform by name, imported lazily: `pytest tests/` needs neither XenAPI nor QEMU."""
    if name == "local":
        from platforms.local import LocalPlatform

        return LocalPlatform(settings, run_id)
    if name == "xcpng":
        from platforms.xcpng import XcpngPlatform

        return XcpngPlatform(settings, run_id, redactor=redactor)
    from core.errors import UsageError

    raise UsageError(f"unknown platform {name!r}; choose xcpng or local")
