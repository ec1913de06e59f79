"""The platforms by name (the contract they fulfil is core.platform.Platform)."""

from __future__ import annotations

from core.platform import Platform
from core.redact import Redactor
from core.settings import Settings


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
