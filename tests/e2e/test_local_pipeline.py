"""End to end on the local platform: Debian 12 and Debian 13 in one harness session with two
workers (`-n 2 --os debian12,debian13`), each a real Packer build from its own mmdebstrap base
disk (or a cache hit), a QEMU boot from the image's own disk (UEFI, no -kernel), every
validation, the verdict, the reports and a publish to a local folder; the clones kept
(--keep-vm) and reachable by the command the run printed, after three more pytest runs, until
the janitor stops them; then teardown proven after a failing run and a SIGTERM (Debian 12).

Every harness run starts from a folder outside the checkout, with its templates copied
elsewhere and its options in the space-separated form: the plugin is the installed project's.

The image cache is the operator's default (~/.cache/xcpng-templates), so a second run on the
same machine reuses the images; the first run on a new machine builds them (docs/benchmarks.md,
"Measured times").
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.fake_project import qemu_processes
from diskformats.bootdisk import boot_modes

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FLEET = ("debian12", "debian13")  # every OS the local platform builds


def elsewhere(tmp: Path) -> Path:
    """A working folder outside the checkout, with a copy of the templates beside it."""
    cwd = tmp / "elsewhere"
    if not (tmp / "templates").exists():
        shutil.copytree(REPO / "packer", tmp / "templates" / "packer")
    cwd.mkdir(exist_ok=True)
    return cwd


def harness_cmd(tmp: Path, *extra: str, oses: tuple[str, ...] = ("debian12",)) -> list[str]:
    elsewhere(tmp)
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
        "--packer-dir",
        str(tmp / "templates" / "packer"),
        "--artifacts-dir",
        str(tmp / "artifacts"),
        "--reports-dir",
        str(tmp / "reports"),
        *extra,
    ]


def env(tmp: Path) -> dict[str, str]:
    """No PYTHONPATH: the plugin must come from the installed project. pytest's temporary
    folders go to a root of this test, where their rotation can be watched."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEMPLATE_"))}
    e.pop("PYTHONPATH", None)
    e["PYTEST_DEBUG_TEMPROOT"] = str(tmp / "temproot")
    (tmp / "temproot").mkdir(exist_ok=True)
    return e


def run(
    tmp: Path, *extra: str, oses: tuple[str, ...] = ("debian12",), timeout: float = 20 * 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        harness_cmd(tmp, *extra, oses=oses),
        cwd=elsewhere(tmp),
        env=env(tmp),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def leftovers(tmp: Path) -> list[str]:
    """Overlays, seeds, keys and firmware copies left in clone folders or temporary folders."""
    found = []
    for base in (tmp / "artifacts" / "vms", tmp / "temproot"):
        if base.exists():
            found += [
                str(p.relative_to(tmp))
                for p in base.rglob("*")
                if p.is_file()
                and (p.suffix in (".qcow2", ".img", ".fd", ".raw") or "seed" in p.name)
            ]
    return sorted(found)


def results(tmp: Path) -> dict[str, Any]:
    return json.loads((tmp / "reports" / "results.json").read_text())


@pytest.fixture(scope="module")
def passing_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, subprocess.CompletedProcess[str]]]:
    tmp = tmp_path_factory.mktemp("e2e-pass")
    started = time.monotonic()
    proc = run(
        tmp,
        "--publish",
        "--publish-to",
        str(tmp / "published"),
        "--keep-vm",
        "always",
        "--keep-vm-ttl",
        "1s",
        oses=FLEET,
        timeout=80 * 60,
    )
    (tmp / "duration").write_text(f"{time.monotonic() - started:.0f}\n")
    sys.stderr.write(proc.stdout[-6000:])
    yield tmp, proc
    # The kept clones outlive a failed assertion too: the janitor stops whatever is left.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "xcpng_golden",
            "janitor",
            "--artifacts-dir",
            str(tmp / "artifacts"),
        ],
        env=env(tmp),
        capture_output=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("fleet_os", FLEET)
def test_every_os_passes_every_check(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]], fleet_os: str
) -> None:
    """Every check passes on every OS of the fleet, built with every security update."""
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
    assert entry["security_updates"] == [], entry["security_updates"]  # built with every update
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


def test_kept_vm_stays_reachable_until_the_janitor_stops_it(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """--keep-vm never changes the verdict; the run prints how to reach the clone; its key
    outlives pytest's rotation of temporary folders; the janitor stops it once expired."""
    tmp, proc = passing_run
    assert proc.returncode == 0
    reach = re.search(r"^\s*reach it: (ssh .*)$", proc.stdout, re.M)
    stop = re.search(r"^\s*stop it:\s+(xcpng-golden janitor .*)$", proc.stdout, re.M)
    assert reach and stop, proc.stdout[-3000:]
    qemus = qemu_processes(str(tmp))
    assert len(qemus) == len(FLEET), qemus
    for i in range(3):  # three more pytest runs rotate the temporary folders
        probe = tmp / f"probe{i}"
        probe.mkdir()
        (probe / "test_probe.py").write_text("def test_tmp(tmp_path):\n    assert tmp_path\n")
        more = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)],
            cwd=probe,
            env=env(tmp),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert more.returncode == 0, more.stdout[-2000:]
    login = subprocess.run(
        [*shlex.split(reach.group(1)), "cat", "/var/lib/template-checks/marker"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert login.returncode == 0, login.stderr
    assert login.stdout.startswith("seed-marker-")
    janitor = subprocess.run(
        [
            sys.executable,
            "-m",
            "xcpng_golden",
            "janitor",
            "--artifacts-dir",
            str(tmp / "artifacts"),
        ],
        env=env(tmp),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert janitor.returncode == 0, janitor.stderr
    for os_name in FLEET:
        assert f"stopped {os_name}-" in janitor.stdout, janitor.stdout
    assert not set(qemus) & set(qemu_processes(str(tmp)))
    assert list((tmp / "artifacts" / "vms").iterdir()) == []


def test_published_xva_round_trips_and_costs_its_data(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """What users download: an XVA (UEFI, compressed) whose disk is the tested raw disk byte for
    byte, whose sha256 is the one in metadata.json, and whose folder costs about the data."""
    from core.files import data_extents, sha256_file

    tmp, _ = passing_run
    pub = tmp / "published"
    latest = json.loads((pub / "debian12" / "latest.json").read_text())
    xva = pub / latest["artifact"]
    meta = json.loads((pub / latest["metadata"]).read_text())
    tested = Path(results(tmp)["os"]["debian12"]["build"]["artifact"])
    assert xva.name == "debian12.xva" and meta["artifact"]["sha256"] == sha256_file(xva)
    assert meta["source"]["sha256"] == sha256_file(tested)
    # BIOS boot partition and ESP: the XVA starts as bios (XCP-ng's and CloudStack's default)
    assert meta["source"]["firmware"] == "bios"
    assert meta["boot_modes"] == ["bios", "uefi"]

    def xva_cli(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "xcpng_golden", "xva", *args],
            cwd=REPO,
            env=env(tmp),
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    info = json.loads(xva_cli("verify", str(xva), "--json"))
    assert info["compression"] == meta["artifact"]["compression"]
    back = tmp_path / "back.raw"
    xva_cli("to-raw", str(xva), str(back))
    assert sha256_file(back) == meta["source"]["sha256"]
    subprocess.run(["cmp", str(back), str(tested)], check=True)
    with tested.open("rb") as fh:
        data = sum(e - s for s, e in data_extents(fh.fileno(), tested.stat().st_size))
    du = sum(f.stat().st_blocks * 512 for f in (pub / latest["folder"]).iterdir())
    assert du <= 1.1 * data, (du, data)


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
    proc = run(tmp_path, "--xva", str(broken), "--boot-timeout", "90s")
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
        cwd=elsewhere(tmp_path),
        env=env(tmp_path),
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
    """GPT with an ESP holding GRUB, an ext4 root and a BIOS boot partition (GRUB's core.img,
    so the same disk starts by BIOS as CloudStack and XCP-ng do by default): the raw disk
    boots as-is inside an XVA, either way."""
    tmp, _ = passing_run
    raw = Path(results(tmp)["os"][fleet_os]["build"]["artifact"])
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(raw)], check=True, capture_output=True, text=True
        ).stdout
    )["partitiontable"]
    assert table["label"] == "gpt"
    parts = table["partitions"]
    assert [p.get("name") for p in parts] == ["ESP", "rootfs", "BIOS"]
    assert parts[2]["type"].upper() == "21686148-6449-6E6F-744E-656564454649"  # BIOS boot
    with raw.open("rb") as fh:
        assert boot_modes(fh.fileno()) == ["bios", "uefi"]
    esp = subprocess.run(
        ["mdir", "-i", f"{raw}@@{parts[0]['start'] * 512}", "::/EFI/BOOT"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "BOOTX64" in esp.upper()


def test_bios_boot_the_cloudstack_way_passes_every_check(
    passing_run: tuple[Path, subprocess.CompletedProcess[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same image (a cache hit) under SeaBIOS, its identity served by the CloudStack virtual
    router stand-in and no seed disk: every check passes, and cloud-init's data came from the
    CloudStack datasource (docs/cloudstack.md)."""
    tmp = tmp_path_factory.mktemp("e2e-cloudstack")
    proc = run(tmp, "--local-firmware", "bios", "--local-datasource", "cloudstack")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    rec = results(tmp)["os"]["debian12"]
    assert rec["verdict"] == "passed" and rec["build"]["status"] == "cached", rec["reasons"]
    assert rec["cloud_init"]["datasource"].startswith("DataSourceCloudStack")
