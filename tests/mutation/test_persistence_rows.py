"""The persistence and console rows without a boot: each defect whose mechanism is read from
the image is found by the offline half of its check, on the skeleton disk (fast) and on a copy
of the real good image (slow); each defect read from the clone (systemd, root's login PATH,
the running kernel's command line) leaves the offline half silent, so its proof is its boot
in the mutation table and the unit tests on a real clone's answers
(tests/unit/test_persistence_units.py, tests/unit/test_console.py). The good variants pass
the offline half and every offline check."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from defects import Defect, GoodVariant
from defects_persistence import (
    CONSOLE,
    MECHANISMS,
    PERSISTENCE_DEFECTS,
    PERSISTENCE_GOOD_VARIANTS,
    ROOT_EXEC,
)
from diskedit import DiskEditor
from test_defects_offline import _failing_offline, _make_disk

from validations import console, persistence
from validations.offline import Ext4Image, find_root

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="mkfs.ext4 -d keeps file owners only when run as root"
)

# The rows whose finding the clone alone can show (systemctl show, root's login shell, the
# running kernel's /proc/cmdline): everything else is found offline (a generator in
# /etc/systemd/system-generators on both sides).
READ_ON_THE_CLONE = frozenset(
    {
        "unit-runs-nobodys-program", "dropin-script-in-group-folder",
        "timer-script-anyone-can-plant", "unit-ld-preload", "socket-template-nobodys-program",
        "root-bashrc-path", "debug-shell-enabled",
        "debug-shell-wanted-by-dropin", "tty-unit-root-shell", "getty-skip-login-shell",
        "container-getty-template-bash", "rescue-without-sulogin", "emergency-sulogin-forced",
        "kernel-cmdline-debug-shell", "sysctl-core-pattern-var-tmp",
        "sysctl-conf-modprobe-group-writable", "binfmt-interpreter-nobody",
        "root-unit-umask-0000", "new-root-unit-umask-0002", "timer-script-process-substitution",
    }
)  # fmt: skip
OFFLINE_ROWS = [d for d in PERSISTENCE_DEFECTS if d.name not in READ_ON_THE_CLONE]


def _offline_half(raw: Path, check_id: str) -> list[str]:
    image = Ext4Image(raw, find_root(raw))
    if check_id == ROOT_EXEC[0]:
        return persistence.offline_findings(image)
    return console.boot_config_findings(image)


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """test_defects_offline's skeleton, with what Debian ships and these rows rely on."""
    disk = _make_disk(tmp_path_factory.mktemp("persistence-skeleton"))
    editor = DiskEditor(disk)
    editor.mkdir("/var/tmp", mode=0o1777)
    editor.write("/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n")
    return disk


def _copy(good: Path, dest: Path, item: Defect | GoodVariant) -> Path:
    subprocess.run(["cp", "--sparse=always", str(good), str(dest)], check=True)
    item.apply(DiskEditor(dest))
    assert item.probe(DiskEditor(dest)), f"{item.name} did not land"
    return dest


def test_every_row_is_classified_and_each_mechanism_has_two() -> None:
    names = [d.name for d in PERSISTENCE_DEFECTS]
    assert set(names) >= READ_ON_THE_CLONE and len(set(names)) == len(names)
    assert sorted(n for rows in MECHANISMS.values() for n in rows) == sorted(names)
    assert all(len(rows) >= 2 for rows in MECHANISMS.values())
    assert {d.fails for d in PERSISTENCE_DEFECTS} == {ROOT_EXEC, CONSOLE}
    assert [d.name for d in PERSISTENCE_DEFECTS if d.ci] == [
        "unit-runs-nobodys-program", "debug-shell-enabled",
    ]  # fmt: skip


@pytest.mark.parametrize("defect", OFFLINE_ROWS, ids=[d.name for d in OFFLINE_ROWS])
def test_offline_row_is_found_offline(defect: Defect, skeleton: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.raw"
    shutil.copyfile(skeleton, broken)
    defect.apply(DiskEditor(broken))
    found = _offline_half(broken, defect.fails[0])
    assert len(found) == 1, found


@pytest.mark.parametrize(
    "defect",
    [d for d in PERSISTENCE_DEFECTS if d.name in READ_ON_THE_CLONE],
    ids=sorted(READ_ON_THE_CLONE, key=[d.name for d in PERSISTENCE_DEFECTS].index),
)
def test_clone_row_is_silent_offline(defect: Defect, skeleton: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.raw"
    shutil.copyfile(skeleton, broken)
    defect.apply(DiskEditor(broken))
    assert _offline_half(broken, defect.fails[0]) == []
    assert _failing_offline(broken) == set()


@pytest.mark.parametrize(
    "variant", PERSISTENCE_GOOD_VARIANTS, ids=[g.name for g in PERSISTENCE_GOOD_VARIANTS]
)
def test_good_variant_passes_offline(variant: GoodVariant, skeleton: Path, tmp_path: Path) -> None:
    image = tmp_path / "variant.raw"
    shutil.copyfile(skeleton, image)
    variant.apply(DiskEditor(image))
    assert variant.probe(DiskEditor(image))
    assert _offline_half(image, ROOT_EXEC[0]) == []
    assert _offline_half(image, CONSOLE[0]) == []
    assert _failing_offline(image) == set()


@pytest.fixture(scope="module")
def real_good(request: pytest.FixtureRequest) -> Path:
    explicit = os.environ.get("MUTATION_GOOD_IMAGE")
    return Path(explicit) if explicit else Path(request.getfixturevalue("debian12_raw_disk"))


@pytest.mark.slow
def test_on_the_real_image(real_good: Path, tmp_path: Path) -> None:
    """Every offline row found, and every good variant passing, on copies of the real image
    (whose own files pass: no false alarm from what Debian ships)."""
    assert _offline_half(real_good, ROOT_EXEC[0]) == []
    assert _offline_half(real_good, CONSOLE[0]) == []
    missed = {}
    for defect in OFFLINE_ROWS:
        broken = _copy(real_good, tmp_path / "broken.raw", defect)
        found = _offline_half(broken, defect.fails[0])
        if len(found) != 1:
            missed[defect.name] = found
        broken.unlink()
    for variant in PERSISTENCE_GOOD_VARIANTS:
        image = _copy(real_good, tmp_path / "variant.raw", variant)
        found = _offline_half(image, ROOT_EXEC[0]) + _offline_half(image, CONSOLE[0])
        if found:
            missed[f"good-{variant.name}"] = found
        image.unlink()
    assert not missed, missed
