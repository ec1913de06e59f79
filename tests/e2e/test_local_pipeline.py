"""End to end on the local platform: Debian 12 and Debian 13 in one harness session with two
workers (`-n 2 --os debian12,debian13`), each a real Packer build from its own mmdebstrap base
disk (or a cache hit), a QEMU boot from the image's own disk (UEFI, no -kernel), every
validation, the verdict, the reports and a publish to a local folder; then teardown proven
after a failing run and a SIGTERM (Debian 12).

The image cache is the operator's default (~/.cache/xcpng-templates), so a second run on the
same machine reuses the images; the first run on a new machine builds them (README "What the
test command costs").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.fake_project import qemu_processes

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FLEET = ("debian12", "debian13")  # every OS the local platform builds


def harness_cmd(tmp: Path, *extra: str, oses: tuple[str, ...] = ("debian12",)) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        *(["-n", str(len(oses))] if len(oses) > 1 else []),
        "--os",
        ",".join(oses),
        "--platform",
        "local",
        f"--artifacts-dir={tmp / 'artifacts'}",
        f"--reports-dir={tmp / 'reports'}",
        f"--basetemp={tmp / 'basetemp'}",
        *extra,
    ]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEMPLATE_"))}
    e["PYTHONPATH"] = str(REPO)
    return e


def leftovers(tmp: Path) -> list[str]:
    """Overlays, seeds and firmware copies left under the session's temporary folders."""
    base = tmp / "basetemp"
    if not base.exists():
        return []
    return sorted(
        str(p.relative_to(base))
        for p in base.rglob("*")
        if p.is_file() and (p.suffix in (".qcow2", ".img", ".fd", ".raw") or "seed" in p.name)
    )


def results(tmp: Path) -> dict[str, Any]:
    return json.loads((tmp / "reports" / "results.json").read_text())


@pytest.fixture(scope="module")
def passing_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("e2e-pass")
    started = time.monotonic()
    proc = subprocess.run(
        harness_cmd(tmp, "--publish", f"--publish-to={tmp / 'published'}", oses=FLEET),
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=80 * 60,
        check=False,
    )
    (tmp / "duration").write_text(f"{time.monotonic() - started:.0f}\n")
    sys.stderr.write(proc.stdout[-6000:])
    return tmp, proc


@pytest.mark.parametrize("fleet_os", FLEET)
def test_every_os_passes_every_check(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]], fleet_os: str
) -> None:
    tmp, proc = passing_run
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    r = results(tmp)
    entry = r["os"][fleet_os]
    assert entry["verdict"] == "passed", entry["reasons"]
    assert entry["build"]["status"] in ("built", "cached")
    assert entry["checks"]["missing"] == [] and entry["checks"]["failed"] == []
    assert set(entry["checks"]["passed"]) | {s["id"] for s in entry["checks"]["skipped"]} >= set(
        entry["expected_checks"]
    )
    assert all(
        s["code"] in ("platform-has-no-xen", "build-has-no-guest-tools")
        for s in entry["checks"]["skipped"]
    )
    assert r["partial"] is False
    junit = (tmp / "reports" / f"junit-{fleet_os}.xml").read_text()
    assert f"[{fleet_os}]" in junit


def test_the_fleet_ran_in_parallel_each_os_booted_once(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """Two workers, one per OS: each OS's VM was booted once, and the check VMs overlapped."""
    tmp, proc = passing_run
    assert "created: 2/2 workers" in proc.stdout, proc.stdout[:2000]
    for os_name in FLEET:
        console = (tmp / "artifacts" / os_name / "console.log").read_text(errors="replace")
        assert console.count("Linux version") == 1, f"{os_name} booted more than once"


@pytest.mark.parametrize("fleet_os", FLEET)
def test_booted_from_its_own_disk_not_kernel(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]], fleet_os: str
) -> None:
    tmp, _ = passing_run
    console = (tmp / "artifacts" / fleet_os / "console.log").read_text(errors="replace")
    assert "Linux version" in console  # the kernel the disk's bootloader loaded
    cmdline = tmp / "artifacts" / fleet_os / "qemu-cmdline.txt"
    if cmdline.exists():
        assert "-kernel" not in cmdline.read_text()


def test_debian13_is_trixie_with_its_own_kernel(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp, _ = passing_run
    console = (tmp / "artifacts" / "debian13" / "console.log").read_text(errors="replace")
    assert "+deb13-amd64" in console, "trixie's kernel ABI string is 6.12.x+deb13-amd64"


def test_published_to_the_local_store(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp, _ = passing_run
    index = json.loads((tmp / "published" / "index.json").read_text())
    for os_name in FLEET:
        latest = tmp / "published" / os_name / "latest.json"
        assert latest.is_file(), sorted(str(p) for p in (tmp / "published").rglob("*"))
        assert os_name in json.dumps(index)


def test_no_qemu_or_files_left_after_passing_run(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp, _ = passing_run
    assert qemu_processes(str(tmp)) == []
    assert leftovers(tmp) == []


def test_failing_boot_cleans_up(tmp_path: Path) -> None:
    broken = tmp_path / "broken.raw"
    with broken.open("wb") as fh:  # a disk with no partition table: firmware finds nothing to boot
        fh.truncate(64 << 20)
    proc = subprocess.run(
        harness_cmd(tmp_path, f"--xva={broken}", "--boot-timeout=90s"),
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=20 * 60,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout[-4000:]
    deb = results(tmp_path)["os"]["debian12"]
    assert deb["verdict"] == "failed"
    assert any("boot failed" in r or "could not run" in r for r in deb["reasons"])
    assert qemu_processes(str(tmp_path)) == []
    assert leftovers(tmp_path) == []


def test_sigterm_during_checks_cleans_up(
    tmp_path: Path, passing_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    """A cancelled job: SIGTERM while the VM runs; QEMU and its files must be gone after."""
    _, first = passing_run
    assert first.returncode == 0
    proc = subprocess.Popen(
        harness_cmd(tmp_path),
        cwd=REPO,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 15 * 60
    booted = False
    while time.monotonic() < deadline and proc.poll() is None:
        status = list((tmp_path / "artifacts" / ".runs").glob("*/status/debian12.json"))
        if status and json.loads(status[0].read_text())["phase"] == "validate":
            booted = True
            break
        time.sleep(1)
    assert booted, "the VM never reached the checks"
    assert qemu_processes(str(tmp_path))
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    deadline = time.monotonic() + 30
    while qemu_processes(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert qemu_processes(str(tmp_path)) == [], out[-3000:]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fleet_os", FLEET)
def test_image_is_bootable_like_a_real_template(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]], fleet_os: str
) -> None:
    """GPT with an ESP holding GRUB and an ext4 root: the raw disk boots as-is inside an XVA."""
    tmp, _ = passing_run
    raw = Path(results(tmp)["os"][fleet_os]["build"]["artifact"])
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(raw)], check=True, capture_output=True, text=True
        ).stdout
    )["partitiontable"]
    assert table["label"] == "gpt"
    parts = table["partitions"]
    assert [p.get("name") for p in parts] == ["ESP", "rootfs"]
    esp = subprocess.run(
        ["mdir", "-i", f"{raw}@@{parts[0]['start'] * 512}", "::/EFI/BOOT"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "BOOTX64" in esp.upper()
