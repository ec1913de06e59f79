"""Build one OS: reuse a cached image whose inputs are unchanged, else run Packer once.

Every outcome, failures included, is written to artifacts/<os>/build.json, and the Packer
output (secrets redacted) to artifacts/<os>/build.log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from build import packer
from build.cache import ImageCache, detect_format, write_seal
from build.inputs_digest import inputs_digest
from core.errors import ImageDefect, InfrastructureError, UsageError, failure_class
from core.files import display_path, sha256_file, write_json_atomic
from core.model import BuildResult, TemplateSpec
from core.ownership import temp_dir
from core.platform import Platform
from core.redact import Redactor
from core.signals import deferred
from core.trees import remove_tree, remove_trees

IMAGE_SUFFIXES = (".xva", ".raw", ".img", ".qcow2")
# Messages from Packer that point at the template or its scripts rather than the environment.
IMAGE_DEFECT_HINTS = (
    "Script exited with non-zero exit status",
    "provisioner",
    "Error processing command",
    "preseed",
    "kickstart",
)

# Failures of the Packer plugin that say nothing about the image, each with what it means: the
# build is run once more, and classed infrastructure if it fails that way again.
KNOWN_FLAKES = (
    (
        re.compile(r"error parsing ProtocolVersion"),
        "the plugin's VNC console lost the RFB greeting (vatesfr/packer-plugin-xenserver issue 38)",
    ),
    (
        re.compile(r"HANDLE_INVALID.{0,40}\btask\b|\btask\b.{0,80}HANDLE_INVALID", re.I),
        "a XAPI task was lost (the pool's toolstack restarted)",
    ),
)


@dataclass
class BuildContext:
    platform_name: str
    platform: Platform
    run_id: str
    packer_bin: str
    packer_dir: Path
    repo_root: Path
    artifacts_dir: Path
    cache: ImageCache
    timeout_s: float
    max_age_s: float
    rebuild: bool
    redactor: Redactor
    provided_artifact: Path | None = None
    status: Callable[[str, str, str], None] = lambda os_name, phase, detail: None
    # Why a cached image that matches by digest and age must still be rebuilt (pending
    # security updates, harness/freshness.py), or None to reuse it; it may note to the log.
    stale_reason: Callable[[TemplateSpec, BuildResult, Callable[[str], None]], str | None] = (
        lambda spec, hit, note: None
    )
    _packer_version: str | None = field(default=None, repr=False)

    def packer_version(self) -> str:
        if self._packer_version is None:
            self._packer_version = packer.packer_version(self.packer_bin)
        return self._packer_version


def write_record(ctx: BuildContext, result: BuildResult) -> Path:
    """artifacts/<os>/build.json, for operators (the verdict reads the build-once record)."""
    return write_json_atomic(ctx.artifacts_dir / result.os_name / "build.json", result.to_json())


def provided(ctx: BuildContext, spec: TemplateSpec, artifact: Path) -> BuildResult:
    """`--xva PATH`: no build, the operator's artifact as it is."""
    if not artifact.is_file():
        raise UsageError(f"--xva {artifact}: no such file; pass the path of an existing artifact")
    started = time.monotonic()
    ctx.status(spec.name, "build", "hashing the provided artifact")
    result = BuildResult(
        os_name=spec.name,
        status="provided",
        artifact=str(artifact.absolute()),
        artifact_format=detect_format(artifact),
        sha256=sha256_file(artifact),
        size=artifact.stat().st_size,
        log_path=None,
        duration_s=time.monotonic() - started,
        packer_version=None,
        plugins={},
        inputs_digest=None,
        template=None,
        var_file=display_path(spec.var_file, ctx.repo_root),
        built_at=artifact.stat().st_mtime,
        platform=ctx.platform_name,
        guest_tools=None,
    )
    write_record(ctx, result)
    return result


def _pick_image(files: list[str], output_dir: Path) -> Path | None:
    candidates = [Path(f) if Path(f).is_absolute() else output_dir.parent / f for f in files]
    candidates = [p for p in candidates if p.is_file()] or [
        p for p in output_dir.rglob("*") if p.is_file()
    ]
    preferred = [p for p in candidates if p.suffix in IMAGE_SUFFIXES]
    pool = preferred or candidates
    return max(pool, key=lambda p: p.stat().st_size) if pool else None


def _classify(run: packer.PackerRun) -> str:
    if run.timed_out or run.interrupted:
        return "infrastructure"
    text = "\n".join(run.output.errors + run.output.ui[-50:])
    return "image-defect" if any(h in text for h in IMAGE_DEFECT_HINTS) else "infrastructure"


def known_flake(run: packer.PackerRun) -> str | None:
    """What a failed run's flake means, when it failed of one and of nothing the image did."""
    if run.ok or run.timed_out or run.interrupted or _classify(run) != "infrastructure":
        return None
    text = "\n".join(run.output.errors)
    return next((why for pattern, why in KNOWN_FLAKES if pattern.search(text)), None)


class _Attempt:
    """One build of one OS: its log, its clock, and the records it leaves."""

    def __init__(self, ctx: BuildContext, spec: TemplateSpec):
        self.ctx, self.spec = ctx, spec
        self.tpl = spec.template_for(ctx.platform_name)
        self.log_path = ctx.artifacts_dir / spec.name / "build.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")
        self.started = time.monotonic()
        self.digest: str | None = None

    def note(self, msg: str) -> None:
        with self.log_path.open("a") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} [harness] {self.ctx.redactor(msg)}\n")

    def status(self, detail: str) -> None:
        self.ctx.status(self.spec.name, "build", detail)

    def result(self, status: str, **fields: Any) -> BuildResult:
        ctx, tpl = self.ctx, self.tpl
        values: dict[str, Any] = {
            "os_name": self.spec.name,
            "status": status,
            "artifact": None,
            "artifact_format": None,
            "sha256": None,
            "size": None,
            "log_path": str(self.log_path),
            "duration_s": time.monotonic() - self.started,
            "packer_version": ctx._packer_version,
            "plugins": dict(tpl.plugins),
            "inputs_digest": self.digest,
            "template": display_path(tpl.path, ctx.repo_root),
            "var_file": display_path(self.spec.var_file, ctx.repo_root),
            "built_at": None,
            "platform": ctx.platform_name,
        }
        values.update(fields)
        return BuildResult(**values)

    def failed(self, message: str, klass: str) -> BuildResult:
        self.note(f"build failed: {message}")
        result = self.result("failed", message=self.ctx.redactor(message), failure_class=klass)
        write_record(self.ctx, result)
        return result


def build_os(
    ctx: BuildContext, spec: TemplateSpec, on_packer_start: Callable[[int], None]
) -> BuildResult:
    """Build (or reuse) the image of one OS; never raises for a failed build, records it."""
    if ctx.provided_artifact is not None:
        return provided(ctx, spec, ctx.provided_artifact)
    attempt = _Attempt(ctx, spec)
    try:
        attempt.digest = _inputs_digest(ctx, spec)
    except OSError as exc:
        return attempt.failed(f"cannot compute the inputs digest: {exc}", "infrastructure")
    digest = attempt.digest
    attempt.note(
        f"{spec.name}: template {display_path(attempt.tpl.path, ctx.repo_root)}, "
        f"inputs digest {digest[:16]}"
    )
    with FileLock(str(ctx.cache.lock_path(spec.name, ctx.platform_name, digest))):
        hit = _cache_hit(attempt, digest)
        if hit is not None:
            return hit
        return _build_fresh(attempt, digest, on_packer_start)


def _inputs_digest(ctx: BuildContext, spec: TemplateSpec) -> str:
    version = ctx.packer_version()
    extra = ctx.platform.recipe_digest(spec)
    return inputs_digest(spec, ctx.platform_name, ctx.packer_dir, version, extra)


def _cache_hit(attempt: _Attempt, digest: str) -> BuildResult | None:
    ctx, spec = attempt.ctx, attempt.spec
    if ctx.rebuild:
        attempt.note("--rebuild: not looking in the cache")
        return None
    attempt.status("checking cache")
    hit, why = ctx.cache.lookup(spec.name, ctx.platform_name, digest, ctx.max_age_s)
    attempt.note(why)
    if hit is None:
        return None
    attempt.status("checking the cached image for security updates")
    stale = ctx.stale_reason(spec, hit, attempt.note)
    if stale:
        attempt.note(f"the cached image is rebuilt: {stale}")
        return None
    hit.status = "cached"
    hit.duration_s = time.monotonic() - attempt.started
    hit.log_path = str(attempt.log_path)
    write_record(ctx, hit)
    return hit


def _packer_vars(attempt: _Attempt, scratch: Path, output_dir: Path) -> dict[str, str]:
    """The platform's variables plus the harness's own, restricted to what the template
    declares; secret values join the redactor before Packer sees them."""
    ctx, spec = attempt.ctx, attempt.spec
    pvars: dict[str, str] = {}
    pvars.update(ctx.platform.build_vars(spec, scratch, attempt.note))
    for s in _secret_values(pvars):
        ctx.redactor.add(s)
    pvars.update(
        {
            "output_directory": str(output_dir),
            "vm_name": f"tpl-{spec.name}-{ctx.run_id}",
            "run_id": ctx.run_id,
        }
    )
    attempt.note(f"Packer VM name {pvars['vm_name']} (the janitor finds leftovers by run id)")
    declared = set(attempt.tpl.declared)
    skipped = sorted(set(pvars) - declared)
    if skipped:
        attempt.note(f"variables not declared by the template, not passed: {', '.join(skipped)}")
    return {k: v for k, v in pvars.items() if k in declared}


def _run_packer(
    attempt: _Attempt,
    pvars: dict[str, str],
    scratch: Path,
    on_packer_start: Callable[[int], None],
) -> packer.PackerRun:
    ctx, spec, tpl = attempt.ctx, attempt.spec, attempt.tpl
    if tpl.plugins:
        attempt.status("packer init")
        packer.run_init(ctx.packer_bin, tpl.path, attempt.log_path, ctx.redactor)
    attempt.status("packer build")

    def on_text(text: str) -> None:
        if text.strip():
            attempt.status(text.strip().splitlines()[-1][:80])

    return packer.run_build(
        ctx.packer_bin,
        tpl.path,
        var_file=spec.var_file,
        variables=pvars,
        log_path=attempt.log_path,
        timeout_s=ctx.timeout_s,
        redactor=ctx.redactor,
        cwd=ctx.repo_root,
        on_start=on_packer_start,
        # ISO and disk downloads are cached beside the images, never in the repository
        extra_env={
            "PACKER_CACHE_DIR": str(ctx.cache.root / "packer_cache"),
            # Packer's own temporary files (logs, scripts) in the build's scratch folder, which
            # goes with the build, or with the next run if this one is killed
            "TMPDIR": str(scratch),
        },
        on_text=on_text,
    )


def _commit(
    attempt: _Attempt, digest: str, tmp: Path, image: Path, guest_tools: str | None
) -> BuildResult:
    """Move the image into the cache entry (atomically, with its record) and record it."""
    ctx, spec = attempt.ctx, attempt.spec
    fmt = detect_format(image)
    final_name = f"image.{fmt}"
    image.rename(tmp / final_name)
    for problem in remove_tree(tmp / "output"):
        attempt.note(f"left behind: {problem}")
    attempt.status("hashing image")
    entry_path = ctx.cache.entry(spec.name, ctx.platform_name, digest)
    result = attempt.result(
        "built",
        artifact=str(entry_path / final_name),
        artifact_format=fmt,
        sha256=sha256_file(tmp / final_name),
        size=(tmp / final_name).stat().st_size,
        packer_version=ctx.packer_version(),
        built_at=time.time(),
        guest_tools=guest_tools,
    )
    write_json_atomic(tmp / "build.json", result.to_json())
    write_seal(tmp / final_name, str(result.sha256))  # lookups and the publisher skip a rehash
    ctx.cache.commit(tmp, spec.name, ctx.platform_name, digest)
    attempt.note(f"built {final_name} ({result.size} bytes, sha256 {result.sha256})")
    write_record(ctx, result)
    return result


def _build_fresh(
    attempt: _Attempt, digest: str, on_packer_start: Callable[[int], None]
) -> BuildResult:
    ctx, spec = attempt.ctx, attempt.spec
    tmp = ctx.cache.new_tmp(spec.name, ctx.platform_name, digest, ctx.run_id)
    scratch = temp_dir(f"xcpng-build-{spec.name}")
    try:
        attempt.status("preparing")
        pvars = _packer_vars(attempt, scratch, tmp / "output")
        run = _run_packer(attempt, pvars, scratch, on_packer_start)
        flake = known_flake(run)
        if flake is not None:
            attempt.note(
                f"{run.failure_message()}: a known infrastructure flake ({flake}); building "
                "once more"
            )
            for problem in remove_tree(tmp / "output"):
                attempt.note(f"left behind: {problem}")
            run = _run_packer(attempt, pvars, scratch, on_packer_start)
            if not run.ok and known_flake(run) is not None:
                return attempt.failed(
                    f"{run.failure_message()}, again after one retry ({flake})", "infrastructure"
                )
        if not run.ok:
            return attempt.failed(run.failure_message(), _classify(run))
        image = _pick_image(run.output.files(), tmp / "output")
        if image is None:
            return attempt.failed(
                "Packer succeeded but reported no artifact file; check the template's "
                "output_directory and format",
                "image-defect",
            )
        guest_tools = pvars.get("guest_tools_source") or spec.variables.get("guest_tools_source")
        return _commit(attempt, digest, tmp, image, str(guest_tools) if guest_tools else None)
    except (InfrastructureError, ImageDefect) as exc:
        return attempt.failed(str(exc), failure_class(exc))
    finally:
        with deferred():  # held: a second signal must not cut the removal short
            for problem in remove_trees([scratch, tmp]):
                attempt.note(f"left behind: {problem}")


def _secret_values(pvars: dict[str, str]) -> list[str]:
    return [v for k, v in pvars.items() if any(w in k for w in ("password", "secret", "token"))]
