"""The package-database rows of the mutation table, proven without booting: each defect of
defects_packages.py (and pending-security-update) applied to a copy of the good Debian 12
image must fail exactly its expected offline checks, every other offline check passing; each
good variant must pass them all. The offline checks are every check that reads the artifact
(image-only ones, and the two that also read the archive through the host's cache).

The good image is MUTATION_GOOD_IMAGE, or the local platform's cached Debian 12 build (the
session fixture the mutation suite uses: a cache hit, a real build on a cold cache). The
archive cache is the operator's (~/.cache/xcpng-templates/archive), so a second run is warm.

    .venv/bin/pytest -p no:cacheprovider tests/mutation/test_package_defects.py -m slow

runs every row; the test command (-m "not mutation_full") runs the first three rows of each
check and every good variant applied together to one image (each alone with the full table,
as the booted good variants are).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from defects import (
    ARCHIVE_CHECKS,
    BY_NAME,
    GOOD_VARIANTS,
    OFFLINE_CHECKS,
    TIME_DEPENDENT,
    Defect,
    GoodVariant,
)
from defects_packages import PACKAGE_DEFECTS, PACKAGE_GOOD_VARIANTS
from diskedit import DiskEditor
from test_defects_offline import CHECKS

from pkgdb.archive import Archive
from validations.expected import EXPECTED
from validations.offline import Ext4Image, find_root

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="debugfs -w edits the image copies as root"),
]

OFFLINE = {
    cid: fn
    for cid, fn in CHECKS.items()
    if cid in EXPECTED["debian"] and cid in OFFLINE_CHECKS | ARCHIVE_CHECKS
}
ROWS: tuple[Defect, ...] = (BY_NAME["pending-security-update"], *PACKAGE_DEFECTS)
# No failure message may show these (hygiene-credentials names the kind, never the secret).
SECRETS = ("S3cretPass", "hunter22", "Pr0xyPa55", "MutationRootPw1", "Tr0ub4dor", "Mutation")
OUTCOMES: dict[str, dict[str, Any]] = {}


def run_offline(raw: Path, archive: Archive) -> tuple[dict[str, str], dict[str, float]]:
    """(failure message by check id, seconds by check id) of every offline check on `raw`."""
    image = Ext4Image(raw, find_root(raw))
    fixtures: dict[str, object] = {
        "image": image,
        "archive": archive,
        "record_property": lambda _k, _v: None,
    }
    failures, seconds = {}, {}
    for cid, fn in OFFLINE.items():
        kwargs = {name: fixtures[name] for name in inspect.signature(fn).parameters}
        started = time.monotonic()
        try:
            fn(**kwargs)
        except AssertionError as exc:
            failures[cid] = str(exc)
        seconds[cid] = time.monotonic() - started
    return failures, seconds


@pytest.fixture(scope="module")
def good_image(request: pytest.FixtureRequest) -> Path:
    explicit = os.environ.get("MUTATION_GOOD_IMAGE")
    return Path(explicit) if explicit else Path(request.getfixturevalue("debian12_raw_disk"))


@pytest.fixture(scope="module")
def archive(operator_cache_dir: Path) -> Archive:
    return Archive(operator_cache_dir / "archive", max_age=6 * 3600)


@pytest.fixture(scope="module")
def baseline(good_image: Path, archive: Archive) -> dict[str, str]:
    """What the good image itself fails: nothing, or a security update published since the
    build (a true finding, tolerated on rows that are about something else)."""
    failures, seconds = run_offline(good_image, archive)
    OUTCOMES["(good image)"] = {
        "failed": sorted(failures),
        "seconds": round(sum(seconds.values()), 1),
    }
    return failures


@pytest.fixture(scope="module", autouse=True)
def outcomes_file() -> Iterator[None]:
    yield
    target = os.environ.get("MUTATION_WORKDIR")
    if target and OUTCOMES:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        path = Path(target) / f"package-defect-outcomes-{worker}.json"
        path.write_text(json.dumps(OUTCOMES, indent=1, sort_keys=True))


def test_offline_checks_include_the_package_checks() -> None:
    assert set(OFFLINE) >= ARCHIVE_CHECKS and "hygiene-credentials" in OFFLINE
    assert len(OFFLINE) == len(OFFLINE_CHECKS | ARCHIVE_CHECKS)


def test_good_image_passes_every_offline_check(baseline: dict[str, str]) -> None:
    assert set(baseline) <= TIME_DEPENDENT, {k: v[:2000] for k, v in baseline.items()}


def _copy_and_apply(
    good: Path,
    tmp_path: Path,
    apply: Callable[[DiskEditor], None],
    probe: Callable[[DiskEditor], bool],
) -> Path:
    copy = tmp_path / "image.raw"
    subprocess.run(["cp", "--sparse=always", str(good), str(copy)], check=True)
    assert not probe(DiskEditor(copy)), "already present in the good image"
    apply(DiskEditor(copy))
    assert probe(DiskEditor(copy)), "did not land in the image"
    return copy


# The test command proves the first rows of each check here (CI_ROWS_PER_CHECK); the rest run
# with the full table (-m mutation_full): every row stays a proof, the test command stays short.
CI_ROWS_PER_CHECK = 3


def _row_params(rows: tuple[Defect, ...]) -> list[Any]:
    seen: dict[frozenset[str], int] = {}
    params = []
    for d in rows:
        key = frozenset(d.fails)
        seen[key] = seen.get(key, 0) + 1
        marks = [] if seen[key] <= CI_ROWS_PER_CHECK else [pytest.mark.mutation_full]
        params.append(pytest.param(d, id=d.name, marks=marks))
    return params


@pytest.mark.parametrize("defect", _row_params(ROWS))
def test_defect_fails_exactly_its_offline_checks(
    defect: Defect, good_image: Path, archive: Archive, baseline: dict[str, str], tmp_path: Path
) -> None:
    copy = _copy_and_apply(good_image, tmp_path, defect.apply, defect.probe)
    try:
        started = time.monotonic()
        failures, seconds = run_offline(copy, archive)
        total = time.monotonic() - started
    finally:
        copy.unlink(missing_ok=True)
    want = set(defect.fails) & set(OFFLINE)
    tolerated = {cid for cid in baseline if cid not in want}
    OUTCOMES[defect.name] = {
        "failed": sorted(failures),
        "seconds": round(total, 1),
        "check_seconds": {cid: round(seconds[cid], 2) for cid in want},
    }
    assert set(failures) - tolerated == want, {k: v[:600] for k, v in failures.items()}
    for cid in want & set(baseline):  # the good image fails it already: the defect adds to it
        assert failures[cid] != baseline[cid], f"{defect.name} changed nothing in {cid}"
    shown = " ".join(failures.values())
    assert not [s for s in SECRETS if s in shown and "hygiene-credentials" in failures], shown


@pytest.mark.parametrize(
    "variant",
    [pytest.param(g, id=g.name, marks=[pytest.mark.mutation_full]) for g in PACKAGE_GOOD_VARIANTS],
)
def test_good_variant_passes_every_offline_check(
    variant: GoodVariant,
    good_image: Path,
    archive: Archive,
    baseline: dict[str, str],
    tmp_path: Path,
) -> None:
    copy = _copy_and_apply(good_image, tmp_path, variant.apply, variant.probe)
    try:
        failures, seconds = run_offline(copy, archive)
    finally:
        copy.unlink(missing_ok=True)
    OUTCOMES[f"good-{variant.name}"] = {
        "failed": sorted(failures),
        "seconds": round(sum(seconds.values()), 1),
    }
    assert set(failures) <= set(baseline), {k: v[:600] for k, v in failures.items()}


def test_every_good_variant_together_applies_and_passes_offline(
    good_image: Path, archive: Archive, baseline: dict[str, str], tmp_path: Path
) -> None:
    """The booted good-variants row applies them all to one image: here, without a boot, each
    must still apply after the others (one may have rewritten a file another edits) and the
    offline checks must pass on the sum."""
    copy = tmp_path / "image.raw"
    subprocess.run(["cp", "--sparse=always", str(good_image), str(copy)], check=True)
    try:
        for variant in GOOD_VARIANTS:
            variant.apply(DiskEditor(copy))
        missing = [g.name for g in GOOD_VARIANTS if not g.probe(DiskEditor(copy))]
        assert not missing, f"undone by a later variant: {missing}"
        failures, _ = run_offline(copy, archive)
    finally:
        copy.unlink(missing_ok=True)
    assert set(failures) <= set(baseline), {k: v[:600] for k, v in failures.items()}
