"""The trust rows on the real good image, without booting: every trust defect and good variant
applied to a copy of the local Debian 12 build (the cache's, or MUTATION_GOOD_IMAGE), and the
offline trust checks (trust-ca-bundle, trust-pam) called on it: each offline row fails exactly
its check, each booted row (apt, ssh client) and each good variant fails none of them, and
every row lands (its probe is true) on the real image, not only on the synthetic disk of
test_defects_offline.py. Slow: one sparse copy of an 8 GiB disk per row.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from defects import OFFLINE_CHECKS, Defect, GoodVariant
from defects_trust import TRUST_DEFECTS, TRUST_GOOD_VARIANTS
from diskedit import DiskEditor

import validations.test_trust as t_trust
from validations.offline import Ext4Image, find_root

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="debugfs -w on a copy of the image"),
]
TRUST_OFFLINE = {"trust-ca-bundle": t_trust.test_ca_bundle, "trust-pam": t_trust.test_pam}
assert set(TRUST_OFFLINE) <= OFFLINE_CHECKS


@pytest.fixture(scope="module")
def good_image(request: pytest.FixtureRequest) -> Path:
    explicit = os.environ.get("MUTATION_GOOD_IMAGE")
    if explicit:
        return Path(explicit)
    return Path(request.getfixturevalue("debian12_raw_disk"))


def _failing(raw: Path) -> dict[str, str]:
    image = Ext4Image(raw, find_root(raw))
    out = {}
    for cid, fn in TRUST_OFFLINE.items():
        try:
            fn(image)
        except AssertionError as exc:
            out[cid] = str(exc)
    return out


def _copy(good: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.raw"
    subprocess.run(["cp", "--sparse=always", str(good), str(copy)], check=True)
    return copy


def test_the_good_image_passes_the_offline_trust_checks(good_image: Path) -> None:
    assert _failing(good_image) == {}


@pytest.mark.parametrize("defect", TRUST_DEFECTS, ids=[d.name for d in TRUST_DEFECTS])
def test_trust_defect_on_the_real_image(defect: Defect, good_image: Path, tmp_path: Path) -> None:
    raw = _copy(good_image, tmp_path)
    assert not defect.probe(DiskEditor(raw)), f"{defect.name} is already in the good image"
    defect.apply(DiskEditor(raw))
    assert defect.probe(DiskEditor(raw)), f"{defect.name} did not land"
    failed = _failing(raw)
    assert set(failed) == set(defect.fails) & set(TRUST_OFFLINE), failed


@pytest.mark.parametrize("variant", TRUST_GOOD_VARIANTS, ids=[g.name for g in TRUST_GOOD_VARIANTS])
def test_trust_good_variant_on_the_real_image(
    variant: GoodVariant, good_image: Path, tmp_path: Path
) -> None:
    raw = _copy(good_image, tmp_path)
    variant.apply(DiskEditor(raw))
    assert variant.probe(DiskEditor(raw)), f"{variant.name} did not land"
    assert _failing(raw) == {}
