"""Preflight: every problem that would sink the run later, found in its first minute.

It lists all problems at once (missing settings by name, Packer, disk space, the platform's
and the store's own reachability and credentials) rather than stopping at the first.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from build.packer import packer_version
from core.errors import UsageError
from core.model import TemplateSpec
from core.settings import Settings
from platforms.leftovers import Tidy


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def version_satisfies(version: str, constraint: str) -> bool:
    """Packer-style constraints: '>= 1.9.0', '= 1.6.6', '~> 1.10', comma-separated."""
    have = _version_tuple(version)
    for part in (p.strip() for p in constraint.split(",") if p.strip()):
        m = re.match(r"^(>=|<=|!=|~>|=|>|<)?\s*v?([\d.]+)$", part)
        if not m:
            continue
        op, want_s = m.group(1) or "=", m.group(2)
        want = _version_tuple(want_s)
        h = have + (0,) * (len(want) - len(have))
        ok = {
            ">=": h >= want,
            "<=": h[: len(want)] <= want,
            ">": h > want,
            "<": h < want,
            "=": h[: len(want)] == want,
            "!=": h[: len(want)] != want,
            "~>": h >= want and h[: len(want) - 1] == want[: len(want) - 1],
        }[op]
        if not ok:
            return False
    return True


PLUGIN_PACKER = (1, 7)  # packer init and required_plugins
XCPNG_PACKER_HELP = (
    "install HashiCorp's Packer >= 1.7 (releases.hashicorp.com, or the hashicorp/setup-packer "
    "action in CI) and put it first on PATH or pass --packer-bin; Debian's packer 1.6.6, which "
    "scripts/setup installs, serves --platform local only (docs/operator/pool.md)"
)


def check_packer(settings: Settings, specs: list[TemplateSpec], platform: str) -> list[str]:
    """One line per template whose Packer needs this Packer does not meet. A template with
    required_plugins (the xcpng one) needs `packer init`, which Packer < 1.7 lacks: that line
    says what to install."""
    problems: list[str] = []
    try:
        version = packer_version(settings.packer_bin)
    except UsageError as exc:
        if platform == "xcpng":
            return [f"{exc}; the xcpng platform needs Packer >= 1.7: {XCPNG_PACKER_HELP}"]
        return [str(exc)]
    for spec in specs:
        try:
            tpl = spec.template_for(platform)
        except UsageError as exc:
            problems.append(str(exc))
            continue
        if tpl.plugins and _version_tuple(version) < PLUGIN_PACKER:
            problems.append(
                f"template {tpl.path.parent.name}/{tpl.path.name} needs Packer >= 1.7 for its "
                f"plugins ({', '.join(tpl.plugins)}), found {version} at {settings.packer_bin}: "
                + XCPNG_PACKER_HELP
            )
        elif tpl.required_version and not version_satisfies(version, tpl.required_version):
            problems.append(
                f"{spec.name}: template {tpl.path.name} needs Packer {tpl.required_version}, "
                f"found {version} at {settings.packer_bin}; install that version or pass "
                "--packer-bin"
            )
    return sorted(set(problems))


def check_disk(settings: Settings, n_os: int) -> list[str]:
    need = settings.min_free_disk * max(n_os, 1)
    problems = []
    for name in ("artifacts_dir", "cache_dir"):
        path: Path = getattr(settings, name)
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        if free < need:
            problems.append(
                f"only {free / 2**30:.1f} GiB free under {path} ({name}); {n_os} OS(es) need "
                f"{need / 2**30:.1f} GiB (--min-free-disk per OS): free space or point "
                f"--{name.replace('_', '-')} elsewhere"
            )
    return problems


def check_settings(settings: Settings, phases: set[str]) -> list[str]:
    missing = settings.missing(phases)
    if not missing:
        return []
    names = ", ".join(f"{o.env} (--{o.dest.replace('_', '-')})" for o in missing)
    return [f"missing settings: {names}; set them in the environment (CI secrets) or as options"]


def run_preflight(
    settings: Settings,
    specs: list[TemplateSpec],
    platform_name: str,
    building: bool,
    hooks: list[tuple[str, Callable[[], list[str]]]],
) -> list[str]:
    """All problems, each one line; [] when the run may start."""
    phases = {platform_name} if platform_name == "xcpng" else set()
    if settings.publish and settings.publish_to.is_s3:
        phases.add("s3")
    if settings.publish and settings.cloudstack.enabled:
        phases.add("cloudstack")
    problems = check_settings(settings, phases)
    if settings.publish and settings.cloudstack.enabled:
        from publish.api import cloudstack_settings_problems

        problems += [
            p
            for p in cloudstack_settings_problems(settings, settings.publish_to)
            if not p.startswith("TEMPLATE_CLOUDSTACK=1 needs")  # listed as missing settings
        ]
    if building:
        problems += check_packer(settings, specs, platform_name)
        problems += check_disk(settings, len(specs))
    if not problems:  # reachability only makes sense with the settings present
        for label, hook in hooks:
            try:
                problems += [f"{label}: {p}" for p in hook()]
            except Exception as exc:  # a hook must not hide the others
                problems.append(f"{label}: preflight crashed: {type(exc).__name__}: {exc}")
    return problems


def ensure_dir_writable(path: Path) -> list[str]:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".preflight-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return [f"cannot write to {path}: {exc.strerror}"]
    return []


def report_leftovers(report: Tidy, write: Callable[[str], None], shown: int = 10) -> None:
    """What earlier runs, killed outright, had left: removed now, or named with its command."""
    if report.removed:
        write(f"harness: removed what runs killed earlier left ({len(report.removed)}):")
        for line in report.removed[:shown]:
            write(f"  {line}")
        if len(report.removed) > shown:
            write(f"  ... and {len(report.removed) - shown} more")
    for line in report.notes:
        write(f"harness: left by an earlier run: {line}")
    for line in report.problems:
        write(f"harness: could not remove a leftover: {line}")
