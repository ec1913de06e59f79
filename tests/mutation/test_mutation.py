"""The mutation suite for real: each broken image (a copy of the good Debian 12 image with one
defect applied offline) is booted by the local platform and checked by the whole validations
suite in a subprocess, exactly as an operator would run it; its results.json must show
exactly the expected checks failing, every other check passing (or skipping with an allowed
code), and the good image passing everything.

The good image is the local platform's Debian 12 build (a cache hit after the end-to-end run,
a real build on a cold cache), or MUTATION_GOOD_IMAGE to use another raw disk. The test command
runs one broken image per concern (marked `mutation`); the whole table is

    .venv/bin/pytest -p no:cacheprovider tests/mutation -m "mutation or mutation_full"
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from defects import ALLOWED_SKIPS, DEFECTS, GOOD_VARIANTS, TIME_DEPENDENT, Defect, GoodVariant
from diskedit import DiskEditor

from core.settings import OPTIONS
from validations.expected import expected_checks

REPO = Path(__file__).resolve().parents[2]
OS_NAME = "debian12"
FAMILY = "debian"
RUN_TIMEOUT_S = int(os.environ.get("MUTATION_RUN_TIMEOUT", "1800"))
# The harness's default: it also bounds the wait for a QEMU slot, which another file's boots
# (the end-to-end fleet's two) may hold for minutes when both workers boot at once.
_HARNESS_BOOT_TIMEOUT = next(o.default for o in OPTIONS if o.flag == "--boot-timeout")
BOOT_TIMEOUT = os.environ.get("MUTATION_BOOT_TIMEOUT", str(_HARNESS_BOOT_TIMEOUT))

# defect name -> {"failed": ids, "seconds": time to the verdict, "notes": [...]}; printed by
# conftest.py and kept as mutation-outcomes.json for table.py
OUTCOMES: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="session")
def good_image(request: pytest.FixtureRequest) -> Path:
    """The raw disk every defect is applied to (a copy each time; the original is never touched)."""
    explicit = os.environ.get("MUTATION_GOOD_IMAGE")
    if explicit:
        return Path(explicit)
    return Path(request.getfixturevalue("debian12_raw_disk"))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    explicit = os.environ.get("MUTATION_WORKDIR")
    if explicit:
        path = Path(explicit)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("mutation")


def run_validations(raw: Path, out: Path) -> tuple[dict[str, Any], float]:
    """The operator's command on one image: results.json's entry for the OS, and the seconds
    from the command's start to its verdict."""
    reports = out / "reports"
    cmd = [
        sys.executable, "-m", "pytest", "validations",
        "--os", OS_NAME, "--platform", "local", "--xva", str(raw),
        "--reports-dir", str(reports), "--artifacts-dir", str(out / "artifacts"),
        "--boot-timeout", BOOT_TIMEOUT, "-p", "no:cacheprovider", "-q",
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    seconds = time.monotonic() - started
    (out / "pytest.log").write_text(proc.stdout + proc.stderr)
    results = reports / "results.json"
    assert results.is_file(), f"no results.json (exit {proc.returncode}); log: {out / 'pytest.log'}"
    return dict(json.loads(results.read_text())["os"][OS_NAME]), seconds


def _check_outcome(
    name: str, entry: dict[str, Any], expected_failed: frozenset[str], seconds: float
) -> None:
    checks = entry["checks"]
    failed = set(checks["failed"])
    notes = []
    pending_updates = entry.get("security_updates") or []
    for cid in sorted((failed - expected_failed) & TIME_DEPENDENT):
        if (
            pending_updates
        ):  # published after the image was built: a true finding, not this defect's
            failed.discard(cid)
            notes.append(
                f"{cid} also failed: {len(pending_updates)} update(s) published since the build"
            )
    boot = [
        t["duration_s"] for t in entry["tests"] if t["outcome"] == "error" and t["phase"] == "setup"
    ]
    OUTCOMES[name] = {
        "failed": sorted(checks["failed"]),
        "seconds": round(seconds),
        "boot_failed_after": round(max(boot)) if boot else None,  # boot start to the diagnosis
        "notes": notes,
    }
    missed = sorted(expected_failed - failed)
    assert failed == expected_failed, (
        f"{name}: unexpected failures {sorted(failed - expected_failed)}, missed {missed}"
    )
    assert checks["missing"] == [], f"{name}: expected checks that did not run: {checks['missing']}"
    for skipped in checks["skipped"]:
        assert ALLOWED_SKIPS.get(skipped["id"]) == skipped["code"], f"{name}: skip {skipped}"
    ran = set(checks["failed"]) | set(checks["passed"]) | {s["id"] for s in checks["skipped"]}
    assert ran == set(expected_checks(FAMILY)), f"{name}: ran {sorted(ran)}"


def _mutate_and_run(defect: Defect, workdir: Path, good: Path) -> None:
    out = workdir / defect.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    broken = out / "broken.raw"
    subprocess.run(["cp", "--sparse=always", str(good), str(broken)], check=True)
    try:
        defect.apply(DiskEditor(broken))
        assert defect.probe(DiskEditor(broken)), f"{defect.name} did not land in the image"
        entry, seconds = run_validations(broken, out)
    finally:
        broken.unlink(missing_ok=True)
    assert entry["verdict"] == "failed", f"{defect.name}: a broken image passed"
    assert entry["failure_class"] == "image-defect", (
        f"{defect.name}: classed {entry['failure_class']}: {entry['reasons']}"
    )
    if defect.boot_fails:
        reasons = " ".join(entry["reasons"])
        assert "no SSH login" not in reasons, (
            f"{defect.name}: the boot waited out its timeout instead of naming the cause: {reasons}"
        )
        assert defect.cause in reasons, f"{defect.name}: the cause is not named: {reasons}"
    _check_outcome(defect.name, entry, defect.expected_failures(FAMILY), seconds)


@pytest.mark.slow
@pytest.mark.mutation_full  # the end-to-end run (tests/e2e) proves the good image in every CI run
def test_good_image_passes_everything(workdir: Path, good_image: Path) -> None:
    out = workdir / "good"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    entry, seconds = run_validations(good_image, out)
    _check_outcome("good", entry, frozenset(), seconds)
    assert entry["verdict"] == "passed", entry["reasons"]


def _param(d: Defect) -> Any:
    # A `ci` row that leaves the clone reachable runs in the test command inside a bundle
    # (below); alone, it runs with the full table. Unreachable clones cannot share an image.
    alone_in_ci = d.ci and d.boot_fails
    marks = [pytest.mark.slow, pytest.mark.mutation if alone_in_ci else pytest.mark.mutation_full]
    return pytest.param(d, id=d.name, marks=marks)


def ci_bundles(defects: tuple[Defect, ...]) -> list[tuple[Defect, ...]]:
    """The test command's broken images: the `ci` rows that keep the clone reachable, packed
    into as few images as possible, no two rows of an image expected to fail the same check.
    One boot then proves several rows: every expected check of each row fails, and no other.
    The full table still boots each row alone."""
    bundles: list[list[Defect]] = []
    for d in (d for d in defects if d.ci and not d.boot_fails):
        home = next((b for b in bundles if not any(set(d.fails) & set(o.fails) for o in b)), None)
        if home is None:
            bundles.append([d])
        else:
            home.append(d)
    return [tuple(b) for b in bundles]


def _bundle_param(bundle: tuple[Defect, ...]) -> Any:
    name = "+".join(d.name for d in bundle)
    return pytest.param(bundle, id=name, marks=[pytest.mark.slow, pytest.mark.mutation])


@pytest.mark.parametrize("bundle", [_bundle_param(b) for b in ci_bundles(DEFECTS)])
def test_bundle_of_broken_images_fails_exactly_their_checks(
    bundle: tuple[Defect, ...], workdir: Path, good_image: Path
) -> None:
    name = f"bundle-{len(bundle)}-{bundle[0].name}"
    out = workdir / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    broken = out / "broken.raw"
    subprocess.run(["cp", "--sparse=always", str(good_image), str(broken)], check=True)
    try:
        for defect in bundle:
            defect.apply(DiskEditor(broken))
        for defect in bundle:
            assert defect.probe(DiskEditor(broken)), f"{defect.name} did not land in the image"
        entry, seconds = run_validations(broken, out)
    finally:
        broken.unlink(missing_ok=True)
    assert entry["verdict"] == "failed" and entry["failure_class"] == "image-defect", (
        f"{name}: {entry['verdict']}, classed {entry['failure_class']}: {entry['reasons']}"
    )
    expected = frozenset(cid for d in bundle for cid in d.fails)
    _check_outcome(name, entry, expected, seconds)


@pytest.mark.parametrize("defect", [_param(d) for d in DEFECTS])
def test_broken_image_fails_exactly_its_checks(
    defect: Defect, workdir: Path, good_image: Path
) -> None:
    _mutate_and_run(defect, workdir, good_image)


def _good_param(g: GoodVariant) -> Any:
    # the test command boots them all in one image (below); alone, with the full table
    return pytest.param(g, id=g.name, marks=[pytest.mark.slow, pytest.mark.mutation_full])


@pytest.mark.slow
@pytest.mark.mutation
def test_good_variants_together_pass_everything(workdir: Path, good_image: Path) -> None:
    """Every good variant applied to one image: one boot, no false alarm from any of them."""
    out = workdir / "good-variants"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    image = out / "variants.raw"
    subprocess.run(["cp", "--sparse=always", str(good_image), str(image)], check=True)
    try:
        for variant in GOOD_VARIANTS:
            variant.apply(DiskEditor(image))
        for variant in GOOD_VARIANTS:
            assert variant.probe(DiskEditor(image)), f"{variant.name} did not land in the image"
        entry, seconds = run_validations(image, out)
    finally:
        image.unlink(missing_ok=True)
    _check_outcome("good-variants", entry, frozenset(), seconds)
    assert entry["verdict"] == "passed", f"a good variant raised a false alarm: {entry['reasons']}"


@pytest.mark.parametrize("variant", [_good_param(g) for g in GOOD_VARIANTS])
def test_good_variant_passes_everything(
    variant: GoodVariant, workdir: Path, good_image: Path
) -> None:
    """No false alarm: a sound, well-hardened variant of the image passes every check."""
    out = workdir / f"good-{variant.name}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    image = out / "variant.raw"
    subprocess.run(["cp", "--sparse=always", str(good_image), str(image)], check=True)
    try:
        variant.apply(DiskEditor(image))
        assert variant.probe(DiskEditor(image)), f"{variant.name} did not land in the image"
        entry, seconds = run_validations(image, out)
    finally:
        image.unlink(missing_ok=True)
    _check_outcome(f"good-{variant.name}", entry, frozenset(), seconds)
    assert entry["verdict"] == "passed", f"{variant.name}: false alarm: {entry['reasons']}"
