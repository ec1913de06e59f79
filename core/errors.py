"""The three ways a run can fail, each with its own exit and its own remedy."""

from __future__ import annotations

FAILURE_CLASSES = ("infrastructure", "image-defect")


class UsageError(Exception):
    """Bad input from the operator: one line, exit non-zero, nothing run or published."""


class InfrastructureError(Exception):
    """Something outside the image failed (pool, QEMU, network, store): rerun it."""


class ImageDefect(Exception):
    """The image itself is wrong (a provisioning step failed, it won't boot): fix the template."""


def failure_class(exc: BaseException) -> str:
    """The verdict's class of a failure: its cause decides, not where it surfaced. An error
    may carry its class (`failure_class` attribute) or wrap its cause (`raise ... from`)."""
    seen: BaseException | None = exc
    while seen is not None:
        klass = getattr(seen, "failure_class", None)
        if klass in FAILURE_CLASSES:
            return str(klass)
        if isinstance(seen, ImageDefect):
            return "image-defect"
        if isinstance(seen, InfrastructureError):
            return "infrastructure"
        seen = seen.__cause__
    return "infrastructure"
