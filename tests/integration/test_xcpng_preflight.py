"""Preflight for the first run on a pool: what the Packer plugin needs from the runner, the pool
and the build password, each problem one line naming its cause and its fix, found before
anything is built."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from build.catalog import load_catalog
from core.settings import Settings
from harness.preflight import check_packer, run_preflight
from platforms.xcpng import XcpngPlatform
from platforms.xcpng.build_password import ALPHABET, password_problem, random_password
from platforms.xcpng.client import RetryPolicy
from tests.twins.xapi import XapiTwin, host_ports
from tests.twins.xapi.helpers import (
    free_port,
    small_xva,
    ssh_banner_endpoint,
    twin_env,
    twin_settings,
)
from tests.twins.xapi.inventory import WESTMERE_LACKS, cpu_info, levelled

ROOT = Path(__file__).resolve().parents[2]
GiB = 1 << 30
FAST = RetryPolicy(attempts=2, max_delay=5, wait_min=0.01, wait_max=0.05)


@pytest.fixture
def twin() -> Iterator[XapiTwin]:
    with XapiTwin() as t:
        yield t


@pytest.fixture
def ssh_port() -> Iterator[int]:
    with ssh_banner_endpoint() as (_, port):
        yield port


@pytest.fixture(autouse=True)
def no_operator_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PKR_VAR_build_password", raising=False)


def preflight(twin: XapiTwin, tmp_path: Path, ssh: int, https: int, **settings: str) -> list[str]:
    s = twin_settings(twin, tmp_path / "artifacts", **settings)
    ports = {"ssh": ssh, "https": https}
    return XcpngPlatform(s, "runP", policy=FAST, host_ports=ports).preflight()


def twin_port(twin: XapiTwin) -> int:
    return int(twin.url.rsplit(":", 1)[1])


def test_all_good_is_silent(twin: XapiTwin, tmp_path: Path, ssh_port: int) -> None:
    assert preflight(twin, tmp_path, ssh_port, twin_port(twin)) == []


def test_an_unreachable_https_port_is_one_line(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    closed = free_port()
    (line,) = preflight(twin, tmp_path, ssh_port, closed)
    assert line == (
        f"host xcp-twin (127.0.0.1): HTTPS port {closed} unreachable from this runner "
        "(Connection refused); the plugin types the boot command on the VM's console through "
        "it: open it from the runner to every host of the pool"
    )


def test_an_unreachable_ssh_port_is_one_line(twin: XapiTwin, tmp_path: Path) -> None:
    closed = free_port()
    (line,) = preflight(twin, tmp_path, closed, twin_port(twin))
    assert line.startswith(f"host xcp-twin (127.0.0.1): SSH port {closed} unreachable")
    assert "find the runner's address" in line and "every host of the pool" in line


def test_a_port_that_answers_without_sshd_is_not_ssh(twin: XapiTwin, tmp_path: Path) -> None:
    # the twin's HTTP port accepts the connection but never says SSH-2.0
    (line,) = preflight(twin, tmp_path, twin_port(twin), twin_port(twin))
    assert "SSH port" in line and "unreachable" in line


def test_every_host_of_the_pool_is_probed(twin: XapiTwin, tmp_path: Path, ssh_port: int) -> None:
    host, _ = twin.add_member("xcp-twin-2")
    twin.db.get("host", host)["address"] = "127.0.0.1"  # the same stand-ins answer for it
    assert preflight(twin, tmp_path, ssh_port, twin_port(twin)) == []
    twin.db.get("host", host)["address"] = "192.0.2.1"  # TEST-NET-1: never answers
    lines = preflight(twin, tmp_path, ssh_port, twin_port(twin))
    assert len(lines) == 2
    assert all(line.startswith("host xcp-twin-2 (192.0.2.1): ") for line in lines)


def test_a_password_the_console_cannot_type_is_one_line(
    twin: XapiTwin, tmp_path: Path, ssh_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "correct horse<enter>battery"
    monkeypatch.setenv("PKR_VAR_build_password", secret)
    (line,) = preflight(twin, tmp_path, ssh_port, twin_port(twin))
    assert line == (
        "PKR_VAR_build_password holds characters the boot console cannot type (whitespace, "
        "boot-command syntax (<>{})); use only letters, digits and ._+- or unset it (the "
        "platform then makes a random one per build)"
    )
    assert secret not in line and "horse" not in line
    monkeypatch.setenv("PKR_VAR_build_password", "Tr0ub4dor.and-3+more_chars")
    assert preflight(twin, tmp_path, ssh_port, twin_port(twin)) == []


@pytest.mark.parametrize(
    ("password", "kind"),
    [
        ("s3cret$HOME-and-more", "shell punctuation"),
        ('quote"me-please-now', "quotes or backslashes"),
        ("back\\slash-goes-here", "quotes or backslashes"),
        ("{{ .HTTPIP }}-template", "boot-command syntax"),
        ("pässwort-mit-umlaut", "non-ASCII"),
        ("tab\there-and-there", "whitespace"),
    ],
)
def test_console_charset(password: str, kind: str) -> None:
    problem = password_problem(password)
    assert problem is not None and kind in problem and password not in problem
    assert password_problem("Short-1") is not None and "7 characters long" in str(
        password_problem("Short-1")
    )
    made = {random_password() for _ in range(50)}
    assert len(made) == 50 and all(set(p) <= set(ALPHABET) and len(p) == 24 for p in made)
    assert all(password_problem(p) is None for p in made)


def test_an_rbac_or_ad_user_is_one_line(twin: XapiTwin, tmp_path: Path, ssh_port: int) -> None:
    twin.local_superuser = False
    (line,) = preflight(twin, tmp_path, ssh_port, twin_port(twin))
    assert "XCPNG_USERNAME 'root' is an RBAC or AD subject" in line
    assert "Error detecting local IP" in line and "use root" in line


def test_an_sr_only_another_host_sees_is_one_line(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    host, _ = twin.add_member("xcp-twin-2")
    twin.db.get("host", host)["address"] = "127.0.0.1"  # the stand-ins answer for it too
    (line,) = preflight(
        twin, tmp_path, ssh_port, twin_port(twin), xcpng_sr="Local storage of xcp-twin-2"
    )
    assert "is local to host xcp-twin-2, not to the pool master" in line
    assert "does not follow XAPI's redirect" in line and "XCPNG_SR" in line


def test_through_the_harness_each_problem_is_one_prefixed_line(
    twin: XapiTwin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PKR_VAR_build_password", "has a space in it ok")
    s = twin_settings(twin, tmp_path / "artifacts")
    closed = free_port()
    p = XcpngPlatform(s, "runP", policy=FAST, host_ports={"ssh": closed, "https": closed})
    problems = run_preflight(
        s, [], "xcpng", building=False, hooks=[("platform xcpng", p.preflight)]
    )
    assert len(problems) == 3
    assert problems[0].startswith("platform xcpng: PKR_VAR_build_password holds")
    assert problems[1].startswith(f"platform xcpng: host xcp-twin (127.0.0.1): SSH port {closed}")
    assert problems[2].startswith(f"platform xcpng: host xcp-twin (127.0.0.1): HTTPS port {closed}")
    assert all("\n" not in p for p in problems)


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer not installed")
def test_packer_1_6_6_for_the_pool_is_one_line_saying_what_to_install(tmp_path: Path) -> None:
    catalog = load_catalog(ROOT / "packer")
    specs = list(catalog.specs.values())
    settings = Settings.from_env(env={})
    version = subprocess.run(["packer", "version"], capture_output=True, text=True).stdout
    if "1.6." not in version:
        pytest.skip(f"needs Debian's packer 1.6.x, found {version.strip()}")
    (line,) = check_packer(settings, specs, "xcpng")
    assert line.startswith("template packer/xcpng needs Packer >= 1.7 for its plugins (xenserver)")
    assert "found 1.6.6 at packer" in line and "hashicorp/setup-packer" in line
    assert "--packer-bin" in line and "--platform local only" in line
    local = [s for s in specs if "local" in s.templates]  # EL has no local template
    assert local and check_packer(settings, local, "local") == []
    missing = check_packer(
        Settings.from_env(env={"PACKER_BIN": "/nonexistent/packer"}), specs, "xcpng"
    )
    assert len(missing) == 1 and "needs Packer >= 1.7" in missing[0]


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer not installed")
def test_the_operator_sees_it_before_anything_is_built(twin: XapiTwin, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XCPNG_", "PKR_VAR_"))}
    env.update(twin_env(twin, tmp_path / "artifacts"))
    env["TEMPLATE_REPORTS_DIR"] = str(tmp_path / "reports")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--os", "debian12"],
        cwd=ROOT,
        env={**env, "TEMPLATE_PLATFORM": "xcpng"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "preflight found problems; nothing was built" in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("  - ")]
    assert len(lines) == 1 and "needs Packer >= 1.7" in lines[0]
    assert twin.calls == []  # nothing reached the pool


def test_the_operator_sees_one_line_per_closed_host_port(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    """The whole harness, as CI runs it, against the twin (`--xva`: no Packer involved); the
    host's ports are stand-ins (tests.twins.xapi.host_ports): SSH answers, HTTPS is closed."""
    closed = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XCPNG_", "PKR_VAR_"))}
    env.update(twin_env(twin, tmp_path / "artifacts"))
    env[host_ports.VARIABLE] = host_ports.value(ssh_port, closed)
    xva = small_xva(tmp_path / "debian12.xva")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    cmd += ["-p", "tests.twins.xapi.host_ports", "--os", "debian12", "--platform", "xcpng"]
    cmd += [f"--xva={xva}", f"--reports-dir={tmp_path / 'reports'}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("  - ")]
    assert lines == [
        f"  - platform xcpng: host xcp-twin (127.0.0.1): HTTPS port {closed} unreachable from "
        "this runner (Connection refused); the plugin types the boot command on the VM's "
        "console through it: open it from the runner to every host of the pool"
    ]
    assert not twin.inventory()["VM"]  # nothing was imported


# -- what each selected OS needs from this pool (issue 23: findings 4 and 5) -------------------

CATALOG = load_catalog(ROOT / "packer")


def specs_of(*names: str) -> list[Any]:
    return [CATALOG.specs[n] for n in names]


def os_preflight(
    twin: XapiTwin,
    tmp_path: Path,
    ssh: int,
    names: tuple[str, ...],
    building: bool = True,
    **settings: str,
) -> list[str]:
    s = twin_settings(twin, tmp_path / "artifacts", **settings)
    ports = {"ssh": ssh, "https": twin_port(twin)}
    return XcpngPlatform(s, "runP", policy=FAST, host_ports=ports).preflight(
        specs_of(*names), building
    )


@pytest.fixture
def twin83() -> Iterator[XapiTwin]:
    with XapiTwin(release="8.3") as t:
        yield t


def test_every_os_of_the_catalog_passes_on_an_up_to_date_83_pool(
    twin83: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    assert os_preflight(twin83, tmp_path, ssh_port, tuple(CATALOG.names())) == []


def test_a_template_only_83_has_is_one_line_naming_the_pool_version(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    """Debian 13's "Debian Trixie 13" exists only on the 8.3 branch of guest-templates-json:
    on 8.2 the plugin would stop at "Couldn't find a template" after the ISO upload."""
    (line,) = os_preflight(twin, tmp_path, ssh_port, ("debian12", "debian13"))
    assert line.startswith("debian13: the clone template 'Debian Trixie 13' (xen_clone_template)")
    assert "is not in this pool (XCP-ng 8.2.1); XCP-ng ships it from 8.3 on" in line
    assert "drop the OS from --os" in line


def test_generic_linux_uefi_missing_on_an_old_82_lists_every_os_that_needs_it(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    twin.remove_template("Generic Linux UEFI")
    lines = os_preflight(twin, tmp_path, ssh_port, ("ubuntu2404", "fedora44", "rocky9"))
    (line,) = lines
    assert line.startswith("fedora44, ubuntu2404: the clone template 'Generic Linux UEFI'")
    assert "guest-templates-json 1.10.7" in line


def test_a_missing_guest_tools_iso_is_one_line(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    twin.remove_tools_iso()
    (line,) = os_preflight(twin, tmp_path, ssh_port, ("debian12", "rocky9"))
    assert line.startswith("debian12, rocky9: the guest-tools ISO 'guest-tools.iso'")
    assert "is not in this pool" in line and "Couldn't find a VDI named" in line
    assert "xe vdi-list name-label=guest-tools.iso" in line


def test_el10_on_a_pool_without_x86_64_v3_is_one_line_naming_the_flags(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    """A second host with an older CPU: XAPI levels the pool's HVM features down to it, and
    EL 10's installer kernel would stop before it fetches the kickstart (a 90-minute install
    timeout). EL 9 (x86-64-v2) is fine on it."""
    host, _ = twin.add_member("xcp-old", cpu_lacks=WESTMERE_LACKS)
    twin.db.get("host", host)["address"] = "127.0.0.1"  # the stand-ins answer for it
    (line,) = os_preflight(twin, tmp_path, ssh_port, ("almalinux10", "rocky10", "rocky9"))
    assert line.startswith("almalinux10, rocky10 need an x86-64-v3 CPU")
    missing = "avx, avx2, bmi1, bmi2, f16c, fma, lzcnt, movbe, xsave"
    assert f"missing {missing} (host xcp-old lacks them all)" in line
    assert "xcp-twin" not in line  # the master's CPU has them
    assert os_preflight(twin, tmp_path, ssh_port, ("rocky9", "debian12")) == []


def test_cpu_levelling_alone_is_found_in_the_pool_features(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    """The pool's levelled features lack AVX2 (a host since removed, or levelled by hand)."""
    pool = next(iter(twin.db.objects["pool"].values()))
    pool["cpu_info"] = levelled(cpu_info(("avx2",)))
    (line,) = os_preflight(twin, tmp_path, ssh_port, ("centos-stream10",))
    assert line.startswith("centos-stream10 need an x86-64-v3 CPU") and "missing avx2" in line
    assert "pool cpu_info features_hvm" in line


def test_an_iso_library_as_sr_is_one_line(twin: XapiTwin, tmp_path: Path, ssh_port: int) -> None:
    lines = os_preflight(twin, tmp_path, ssh_port, ("debian12",), xcpng_sr="ISO library")
    assert lines == [
        "SR 'ISO library' is an iso library, not a disk SR: the build VM's disk and the "
        "installer ISO (uploaded as a VDI) go there; set XCPNG_SR to a disk SR"
    ]


def test_an_sr_without_room_for_the_selected_oses_is_one_line(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    sr = next(r for r, v in twin.db.objects["SR"].items() if v["name_label"] == "Local storage")
    twin.db.get("SR", sr)["physical_utilisation"] = 1000 * GiB - 30 * GiB
    assert os_preflight(twin, tmp_path, ssh_port, ("debian12",)) == []
    (line,) = os_preflight(twin, tmp_path, ssh_port, ("debian12", "ubuntu2204", "ubuntu2404"))
    assert line.startswith("SR 'Local storage' has 30 GiB free, less than the 40 GiB 3 OS(es)")


def test_a_network_without_a_physical_interface_is_one_line(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    (line,) = os_preflight(
        twin, tmp_path, ssh_port, ("debian12",), xcpng_network="Host internal management network"
    )
    assert "has no physical interface (PIF) on any host" in line and "XCPNG_NETWORK" in line


def test_every_pool_problem_at_once_in_the_first_minute(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    twin.remove_tools_iso()
    twin.set_cpu(next(iter(twin.db.objects["host"])), WESTMERE_LACKS)
    started = time.monotonic()
    lines = os_preflight(
        twin,
        tmp_path,
        ssh_port,
        ("debian13", "rocky10"),
        xcpng_sr="ISO library",
        xcpng_network="Host internal management network",
    )
    assert time.monotonic() - started < 60
    assert [line.split(" ", 2)[:2] for line in lines] == [
        ["SR", "'ISO"],
        ["network", "'Host"],
        ["debian13:", "the"],
        ["debian13,", "rocky10:"],
        ["rocky10", "need"],
    ], lines


def test_checking_an_artifact_needs_no_template_nor_tools_iso_but_the_cpu(
    twin: XapiTwin, tmp_path: Path, ssh_port: int
) -> None:
    """--xva boots an existing image: Packer's clone template and tools ISO do not matter,
    the CPU does (the clone runs EL 10 too)."""
    twin.remove_tools_iso()
    twin.set_cpu(next(iter(twin.db.objects["host"])), WESTMERE_LACKS)
    (line,) = os_preflight(twin, tmp_path, ssh_port, ("rocky10",), building=False)
    assert line.startswith("rocky10 need an x86-64-v3 CPU")
    assert os_preflight(twin, tmp_path, ssh_port, ("debian13",), building=False) == []
