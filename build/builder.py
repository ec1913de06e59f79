"""Build one OS: reuse a cached image whose inputs are unchanged, else run Packer once.

Every outcome, failures included, is written to artifacts/<os>/build.json, and the Packer
output (secrets redacted) to artifacts/<os>/build.log.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from build import packer
from build.cache import ImageCache, detect_format, sha256_file
from build.digest import inputs_digest
from core.errors import ImageDefect, InfrastructureError, UsageError
from core.model import BuildResult, TemplateSpec
from core.redact import Redactor

IMAGE_SUFFIXES = (".xva", ".raw", ".img", ".qcow2")
# Messages from Packer that point at the template or its scripts rather than the environment.
IMAGE_DEFECT_HINTS = (
    "Script exited with non-zero exit status",
    "provisioner",
    "Error processing command",
    "preseed",
    "kickstart",
)


@dataclass
class BuildContext:
    platform_name: str
    platform: object  # platforms.base.Platform (kept loose so tests can pass a stub)
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
    _packer_version: str | None = field(default=None, repr=False)

    def packer_version(self) -> str:
        if self._packer_version is None:
            self._packer_version = packer.packer_version(self.packer_bin)
        return self._packer_version


def _rel(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def write_record(ctx: BuildContext, result: BuildResult) -> Path:
    out = ctx.artifacts_dir / result.os_name / "build.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return out


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
        var_file=_rel(spec.var_file, ctx.repo_root),
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


def build_os(
    ctx: BuildContext, spec: TemplateSpec, on_packer_start: Callable[[int], None]
) -> BuildResult:
    """Build (or reuse) the image of one OS; never raises for a failed build, records it."""
    if ctx.provided_artifact is not None:
        return provided(ctx, spec, ctx.provided_artifact)
    tpl = spec.template_for(ctx.platform_name)
    log_path = ctx.artifacts_dir / spec.name / "build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    started = time.monotonic()

    def note(msg: str) -> None:
        with log_path.open("a") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} [harness] {ctx.redactor(msg)}\n")

    def failed(message: str, klass: str, digest: str | None = None) -> BuildResult:
        note(f"build failed: {message}")
        result = BuildResult(
            os_name=spec.name,
            status="failed",
            artifact=None,
            artifact_format=None,
            sha256=None,
            size=None,
            log_path=str(log_path),
            duration_s=time.monotonic() - started,
            packer_version=ctx._packer_version,
            plugins=dict(tpl.plugins),
            inputs_digest=digest,
            template=_rel(tpl.path, ctx.repo_root),
            var_file=_rel(spec.var_file, ctx.repo_root),
            built_at=None,
            platform=ctx.platform_name,
            message=ctx.redactor(message),
            failure_class=klass,
        )
        write_record(ctx, result)
        return result

    try:
        version = ctx.packer_version()
        recipe = getattr(ctx.platform, "recipe_digest", None)
        extra = recipe(spec) if callable(recipe) else {}
        digest = inputs_digest(spec, ctx.platform_name, ctx.packer_dir, version, extra)
    except UsageError:
        raise
    except OSError as exc:
        return failed(f"cannot compute the inputs digest: {exc}", "infrastructure")
    note(f"{spec.name}: template {_rel(tpl.path, ctx.repo_root)}, inputs digest {digest[:16]}")

    with FileLock(str(ctx.cache.lock_path(spec.name, ctx.platform_name, digest))):
        if not ctx.rebuild:
            ctx.status(spec.name, "build", "checking cache")
            hit, why = ctx.cache.lookup(spec.name, ctx.platform_name, digest, ctx.max_age_s)
            note(why)
            if hit is not None:
                hit.status = "cached"
                hit.duration_s = time.monotonic() - started
                hit.log_path = str(log_path)
                write_record(ctx, hit)
                return hit
        else:
            note("--rebuild: not looking in the cache")

        tmp = ctx.cache.new_tmp(spec.name, ctx.platform_name, digest, ctx.run_id)
        scratch = Path(tempfile.mkdtemp(prefix=f"build-{spec.name}-"))
        try:
            ctx.status(spec.name, "build", "preparing")
            build_vars_fn = getattr(ctx.platform, "build_vars", None)
            pvars: dict[str, str] = {}
            if callable(build_vars_fn):
                pvars.update(build_vars_fn(spec, scratch, note))
            for s in _secret_values(pvars):
                ctx.redactor.add(s)
            output_dir = tmp / "output"
            pvars.update(
                {
                    "output_directory": str(output_dir),
                    "vm_name": f"tpl-{spec.name}-{ctx.run_id}",
                    "run_id": ctx.run_id,
                }
            )
            note(f"Packer VM name {pvars['vm_name']} (the janitor finds leftovers by run id)")
            declared = set(tpl.declared)
            passed = {k: v for k, v in pvars.items() if k in declared}
            skipped = sorted(set(pvars) - declared)
            if skipped:
                note(f"variables not declared by the template, not passed: {', '.join(skipped)}")
            if tpl.plugins:
                ctx.status(spec.name, "build", "packer init")
                packer.run_init(ctx.packer_bin, tpl.path, log_path, ctx.redactor)
            ctx.status(spec.name, "build", "packer build")
            run = packer.run_build(
                ctx.packer_bin,
                tpl.path,
                var_file=spec.var_file,
                variables=passed,
                log_path=log_path,
                timeout_s=ctx.timeout_s,
                redactor=ctx.redactor,
                cwd=ctx.repo_root,
                on_start=on_packer_start,
                # ISO and disk downloads are cached beside the images, never in the repository
                extra_env={"PACKER_CACHE_DIR": str(ctx.cache.root / "packer_cache")},
                on_text=lambda t: (
                    ctx.status(spec.name, "build", t.strip().splitlines()[-1][:80])
                    if t.strip()
                    else None
                ),
            )
            if not run.ok:
                return failed(run.failure_message(), _classify(run), digest)
            image = _pick_image(run.output.files(), output_dir)
            if image is None:
                return failed(
                    "Packer succeeded but reported no artifact file; check the template's "
                    "output_directory and format",
                    "image-defect",
                    digest,
                )
            fmt = detect_format(image)
            final_name = f"image.{fmt}"
            image.rename(tmp / final_name)
            shutil.rmtree(output_dir, ignore_errors=True)
            ctx.status(spec.name, "build", "hashing image")
            entry_path = ctx.cache.entry(spec.name, ctx.platform_name, digest)
            result = BuildResult(
                os_name=spec.name,
                status="built",
                artifact=str(entry_path / final_name),
                artifact_format=fmt,
                sha256=sha256_file(tmp / final_name),
                size=(tmp / final_name).stat().st_size,
                log_path=str(log_path),
                duration_s=time.monotonic() - started,
                packer_version=version,
                plugins=dict(tpl.plugins),
                inputs_digest=digest,
                template=_rel(tpl.path, ctx.repo_root),
                var_file=_rel(spec.var_file, ctx.repo_root),
                built_at=time.time(),
                platform=ctx.platform_name,
                guest_tools=str(
                    pvars.get("guest_tools_source")
                    or spec.variables.get("guest_tools_source")
                    or ""
                )
                or None,
            )
            (tmp / "build.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
            ctx.cache.commit(tmp, spec.name, ctx.platform_name, digest)
            note(f"built {final_name} ({result.size} bytes, sha256 {result.sha256})")
            write_record(ctx, result)
            return result
        except (InfrastructureError, ImageDefect) as exc:
            klass = "image-defect" if isinstance(exc, ImageDefect) else "infrastructure"
            return failed(str(exc), klass)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _secret_values(pvars: dict[str, str]) -> list[str]:
    return [v for k, v in pvars.items() if any(w in k for w in ("password", "secret", "token"))]
