"""Which OSes may be published: passed, complete run, right platform, artifact present.

The artifact's sha256 is re-checked by the publisher in the same pass that computes the
upload digests, before anything is uploaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.destination import Destination
from core.errors import UsageError
from core.results_file import Results

PUBLISHABLE_BUILDS = ("built", "cached", "provided")
PLATFORM_CHOICES = ("xcpng", "local", "any")


@dataclass
class Candidate:
    """One OS cleared for publishing, with everything the uploader needs."""

    os_name: str
    results: Results
    record: dict[str, Any]  # results["os"][name]
    artifact: Path
    log: Path | None
    junit: Path | None
    platform: str
    inventory: Path | None = None  # the package inventory the session read from the image

    @property
    def build(self) -> dict[str, Any]:
        return self.record["build"]


@dataclass
class Gate:
    accepted: list[Candidate] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (os, one-line reason)


def required_platform(destination: Destination, configured: str | None) -> str:
    """The platform a pass must come from: as configured, else xcpng for S3, any for a folder."""
    if configured:
        if configured not in PLATFORM_CHOICES:
            raise UsageError(
                f"publish_require_platform={configured!r} is not valid; "
                f"choose one of {', '.join(PLATFORM_CHOICES)}"
            )
        return configured
    return "xcpng" if destination.is_s3 else "any"


def check_run(results: Results) -> None:
    """A partial run is refused as a whole: its verdicts are not about the full check set."""
    if results.data["partial"]:
        why = "; ".join(results.data.get("partial_reasons") or []) or "narrowed or interrupted"
        raise UsageError(
            f"{results.path}: the run was partial ({why}); nothing from it is published, "
            "rerun without -k/-m/--deselect/--lf"
        )


def gate(results: Results, require: str) -> Gate:
    check_run(results)
    out = Gate()
    for name, rec in sorted(results.data["os"].items()):
        reason = _refusal(results, rec, require)
        if reason:
            out.refused.append((name, reason))
            continue
        build = rec["build"]
        out.accepted.append(
            Candidate(
                os_name=name,
                results=results,
                record=rec,
                artifact=results.resolve(build["artifact"]),  # type: ignore[arg-type]
                log=results.resolve(build.get("log_path")),
                junit=(results.base / rec["junit"]) if rec.get("junit") else None,
                platform=rec.get("validated_platform") or results.data["platform"],
                inventory=results.resolve((rec.get("inventory") or {}).get("path")),
            )
        )
    return out


def _refusal(results: Results, rec: dict[str, Any], require: str) -> str | None:
    build, checks = rec["build"], rec["checks"]
    if rec["verdict"] != "passed":
        why = "; ".join(rec.get("reasons") or []) or "verdict failed"
        return f"not passed ({why})"
    if checks["failed"] or checks["missing"]:
        return (
            f"verdict says passed but checks failed {checks['failed']} or missing "
            f"{checks['missing']}: results are inconsistent, not published"
        )
    if build["status"] not in PUBLISHABLE_BUILDS:
        return f"build status {build['status']!r} has no artifact to publish"
    platform = rec.get("validated_platform") or results.data["platform"]
    if require not in ("any", platform):
        return (
            f"validated on {platform!r} but the destination requires {require!r} "
            "(set publish_require_platform to publish elsewhere)"
        )
    for key in ("artifact", "sha256", "size", "built_at"):
        if build.get(key) in (None, ""):
            return f"build record has no {key}"
    artifact = results.resolve(build["artifact"])
    if artifact is None or not artifact.is_file():
        return f"artifact {build['artifact']} is missing"
    if artifact.stat().st_size != build["size"]:
        size = artifact.stat().st_size
        return f"artifact {artifact} is {size} bytes, the build record says {build['size']}"
    return None
