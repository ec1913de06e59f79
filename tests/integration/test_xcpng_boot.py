"""The XCP-ng platform against the XAPI twin, through the unmodified XenAPI client: a full boot,
what it leaves (nothing), what it records (a complete ledger), what it never prints (secrets)."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from core.errors import ImageDefect, InfrastructureError, UsageError
from core.settings import Settings
from platforms.xcpng import XcpngPlatform
from platforms.xcpng.cleanup import cleanup
from platforms.xcpng.client import RetryPolicy
from platforms.xcpng.ledger import KEY_EXPIRES, KEY_RUN, Ledger
from platforms.xcpng.platform import GROW_BYTES, connect
from tests.twins.xapi import XapiTwin, methods
from tests.twins.xapi.helpers import (
    build_of,
    small_xva,
    spec,
    ssh_banner_endpoint,
    twin_env,
    twin_settings,
)
from tests.twins.xapi.wire import XapiError

FAST = RetryPolicy(attempts=4, max_delay=10, wait_min=0.01, wait_max=0.05)


@pytest.fixture
def twin() -> Iterator[XapiTwin]:
    with XapiTwin() as t:
        t.guest.tools = True
        yield t


@pytest.fixture
def ssh() -> Iterator[tuple[str, int]]:
    with ssh_banner_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def xva(tmp_path: Path) -> Path:
    return small_xva(tmp_path / "debian12.xva")


def platform(
    twin: XapiTwin,
    tmp_path: Path,
    port: int,
    host_ports: dict[str, int] | None = None,
    **settings: str,
) -> XcpngPlatform:
    s = twin_settings(twin, tmp_path / "artifacts", **settings)
    return XcpngPlatform(
        s,
        "run42",
        policy=FAST,
        ip_poll=0.05,
        ssh_port=port,
        host_ports=host_ports,
        login_check=False,
    )


def pool_ports(twin: XapiTwin, ssh: tuple[str, int]) -> dict[str, int]:
    """The host ports preflight probes, pointed at stand-ins: sshd's banner, the twin's HTTP."""
    return {"ssh": ssh[1], "https": int(twin.url.rsplit(":", 1)[1])}


def test_boot_imports_seeds_starts_and_removes_everything(
    twin: XapiTwin,
    ssh: tuple[str, int],
    xva: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="platforms.xcpng")
    p = platform(twin, tmp_path, ssh[1])
    with p.boot(spec(), build_of(xva), tmp_path / "work") as vm:
        inv = twin.inventory()
        (vm_ref,) = inv["VM"]
        rec = inv["VM"][vm_ref]
        # the imported template became a startable, running, tagged VM
        assert rec["is_a_template"] is False and rec["power_state"] == "Running"
        assert rec["other_config"][KEY_RUN] == "run42" and KEY_EXPIRES in rec["other_config"]
        assert rec["name_label"].startswith("golden-debian12-run42-")
        # two disks (system + seed), both tagged; one VIF on the configured network
        assert len(inv["VDI"]) == 2 and len(inv["VIF"]) == 1
        assert all(v["other_config"][KEY_RUN] == "run42" for v in inv["VDI"].values())
        (seed_ref,) = [r for r, v in inv["VDI"].items() if v["name_label"].endswith("-cidata")]
        seed = twin.vdi_data(seed_ref)
        assert f"instance-id: {vm.instance_id}".encode() in seed  # the seed reached the pool
        assert vm.instance_id == rec["uuid"]
        assert vm.marker.encode() in seed and b"ssh_authorized_keys" in seed
        # what the checks get
        assert (vm.address, vm.port, vm.user) == ("127.0.0.1", ssh[1], "tester")
        assert vm.known_hosts is not None
        assert vm.known_hosts.read_text().startswith(f"[127.0.0.1]:{ssh[1]} ssh-ed25519 ")
        assert vm.facts["vm_ref"] == vm_ref and vm.facts["vm_uuid"] == rec["uuid"]
        gm = vm.facts["guest_metrics"]
        assert gm["PV_drivers_version"]["major"] == "8"
        assert gm["os_version"]["distro"] == "debian"
        assert gm["networks"]["0/ip"] == "127.0.0.1"
        json.dumps(vm.facts)  # JSON-able, no callables
    assert twin.empty(), twin.inventory()
    assert twin.inventory()["session"] == []  # logged out
    # the ledger: every object recorded before it was created, all closed now
    entries = Ledger.read(tmp_path / "artifacts" / "xcpng-ledger.jsonl")
    assert {e.kind for e in entries.values()} == {"vm", "vdi"}
    assert all(e.state == "destroyed" for e in entries.values())
    lines = (tmp_path / "artifacts" / "xcpng-ledger.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["state"] == "intent" and first["kind"] == "vm"
    # import used a task, a Content-Length and no chunked encoding; progress was shown
    assert any(r.startswith("PUT /import?session_id=") for r in twin.requests)
    assert "import golden-debian12-run42-" in caplog.text and "100%" in caplog.text
    # secrets: no session id, no password anywhere we wrote
    sent = unquote(" ".join(twin.requests))
    sessions = set(re.findall(r"session_id=(OpaqueRef:[0-9a-f-]+)", sent))
    assert sessions
    written = caplog.text + "\n".join(lines)
    for secret in [*sessions, twin.password]:
        assert secret not in written


def test_raw_artifact_is_converted_and_vm_not_template(
    twin: XapiTwin, ssh: tuple[str, int], tmp_path: Path
) -> None:
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\xeb\x63\x90" + bytes((3 << 20) - 3))
    p = platform(twin, tmp_path, ssh[1])
    with p.boot(spec(), build_of(raw, fmt="raw"), tmp_path / "work") as vm:
        (vm_ref,) = twin.inventory()["VM"]
        system = [
            r for r, v in twin.inventory()["VDI"].items() if not v["name_label"].endswith("-cidata")
        ]
        # imported as is, then grown before the first boot (read the start only: 2 GiB of holes)
        stored = twin.storage.path(twin.db.get("VDI", system[0])["uuid"])
        assert stored.stat().st_size == raw.stat().st_size + GROW_BYTES
        with stored.open("rb") as fh:
            assert fh.read(raw.stat().st_size) == raw.read_bytes()
        assert vm.facts["vm_ref"] == vm_ref
        assert vm.facts["template_disk_bytes"] == raw.stat().st_size
        assert vm.facts["disk_grown_by"] == GROW_BYTES
        assert (tmp_path / "work" / "image.xva").exists()
    assert twin.empty()
    # temp files go with the VM: the converted image, the seed and its private key
    assert not (tmp_path / "work" / "image.xva").exists()
    assert not (tmp_path / "work" / "seed").exists()


def test_failure_inside_the_block_still_tears_down(
    twin: XapiTwin, ssh: tuple[str, int], xva: Path, tmp_path: Path
) -> None:
    p = platform(twin, tmp_path, ssh[1])
    with (
        pytest.raises(RuntimeError, match="check crashed"),
        p.boot(spec(), build_of(xva), tmp_path / "work"),
    ):
        raise RuntimeError("check crashed")
    assert twin.empty()


def test_keep_vm_on_failure_keeps_with_ttl_then_cleanup_removes(
    twin: XapiTwin, ssh: tuple[str, int], xva: Path, tmp_path: Path
) -> None:
    p = platform(twin, tmp_path, ssh[1], keep_vm="on-failure", keep_vm_ttl="2h")
    with p.boot(spec(), build_of(xva), tmp_path / "work") as vm:
        vm.keep = True  # how the harness tells the platform (core.settings.keep_decision)
    inv = twin.inventory()
    assert len(inv["VM"]) == 1 and len(inv["VDI"]) == 2
    assert vm.key_path.exists()  # so that someone can log in to the kept VM
    assert vm.kept is not None and vm.kept.details["vm_uuid"] == vm.facts["vm_uuid"]
    assert (tmp_path / "work" / "kept.json").is_file()
    (rec,) = inv["VM"].values()
    assert rec["power_state"] == "Running"
    expires = float(rec["other_config"][KEY_EXPIRES])
    assert 2 * 3600 - 60 < expires - time.time() <= 2 * 3600
    xapi = connect(p.settings.xcpng)
    try:
        # the janitor's default (TTL not passed yet) leaves it alone
        assert cleanup(xapi, p.ledger.path).removed == []
        # an hour later than the TTL it goes
        report = cleanup(xapi, p.ledger.path, now=time.time() + 3 * 3600)
        assert report.problems == [] and len(report.removed) == 1  # the VM with both disks
    finally:
        xapi.logout()
    assert twin.empty()


def test_keep_vm_never_when_checks_fail(
    twin: XapiTwin, ssh: tuple[str, int], xva: Path, tmp_path: Path
) -> None:
    p = platform(twin, tmp_path, ssh[1], keep_vm="never")
    with p.boot(spec(), build_of(xva), tmp_path / "work") as vm:
        vm.keep = False
    assert twin.empty()


def test_preflight_passes_and_names_each_problem(
    twin: XapiTwin, tmp_path: Path, ssh: tuple[str, int]
) -> None:
    ports = pool_ports(twin, ssh)
    assert platform(twin, tmp_path, 22, ports).preflight() == []
    bad = platform(twin, tmp_path, 22, ports, xcpng_sr="Fast SSD", xcpng_network="vlan99")
    problems = bad.preflight()
    assert len(problems) == 2
    assert "no SR named 'Fast SSD'" in problems[0] and "XCPNG_SR" in problems[0]
    assert "no network named 'vlan99'" in problems[1] and "XCPNG_NETWORK" in problems[1]
    host = next(iter(twin.db.objects["host"].values()))
    host["memory_free"] = 512 << 20
    sr = twin.db.get("SR", next(iter(twin.db.objects["pool"].values()))["default_SR"])
    sr["physical_utilisation"] = sr["physical_size"] - (3 << 30)
    problems = platform(twin, tmp_path, 22, ports).preflight()
    assert any("3 GiB free" in p and "--min-free-disk" in p for p in problems)
    assert any("free memory" in p and "512 MiB" in p for p in problems)
    assert twin.inventory()["session"] == []


def test_preflight_wrong_password_is_not_retried_nor_printed(
    twin: XapiTwin, tmp_path: Path
) -> None:
    s = Settings.from_env(env=twin_env(twin, tmp_path / "a", XCPNG_PASSWORD="hunter2-wrong"))
    (problem,) = XcpngPlatform(s, "r", policy=FAST).preflight()
    assert "refused (SESSION_AUTHENTICATION_FAILED)" in problem
    assert "XCPNG_PASSWORD" in problem and "hunter2-wrong" not in problem
    assert twin.calls.count("session.login_with_password") == 1


def test_preflight_missing_settings_and_unreachable(tmp_path: Path) -> None:
    s = Settings.from_env(env={})
    (problem,) = XcpngPlatform(s, "r", policy=FAST).preflight()
    assert "XCPNG_URL" in problem and "XCPNG_PASSWORD" in problem
    s = Settings.from_env(
        env={"XCPNG_URL": "http://127.0.0.1:9", "XCPNG_USERNAME": "u", "XCPNG_PASSWORD": "pass"}
    )
    (problem,) = XcpngPlatform(s, "r", policy=FAST).preflight()
    assert "cannot reach the XCP-ng pool at http://127.0.0.1:9" in problem
    with pytest.raises(UsageError, match="not a pool URL"):
        connect(
            Settings.from_env(
                env={"XCPNG_URL": "pool.lan", "XCPNG_USERNAME": "u", "XCPNG_PASSWORD": "pass"}
            ).xcpng
        )


def test_build_vars_carry_run_id_and_ledger_the_packer_vm(
    twin: XapiTwin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PKR_VAR_build_password", raising=False)
    p = platform(twin, tmp_path, 22)
    lines: list[str] = []
    before = time.time()
    values = p.build_vars(spec(), tmp_path / "w", lines.append)
    assert "vm_name" not in values  # the builder names the VM (tpl-<os>-<run id>)
    assert values["remote_host"] == "127.0.0.1" and values["network_name"].startswith("Pool")
    assert values["remote_password"] == twin.password  # passed as PKR_VAR_* env, never logged
    assert twin.password not in " ".join(lines)
    # the run's tags for the VM, its disk and its ISO: created now, expiring after the build
    created, expires = int(values["run_created"]), int(values["run_expires"])
    assert before - 1 <= created <= time.time()
    assert expires - created >= p.settings.build_timeout
    # a fresh console-safe password per build, never logged
    password = values["build_password"]
    assert len(password) == 24 and password not in " ".join(lines)
    assert p.build_vars(spec(), tmp_path / "w", lines.append)["build_password"] != password
    (entry,) = Ledger.open_entries(p.ledger.path, "run42")
    assert entry.kind == "packer-vm" and entry.fields["os"] == "debian12"


def test_cleanup_removes_a_packer_vm_left_by_a_killed_build(twin: XapiTwin, tmp_path: Path) -> None:
    p = platform(twin, tmp_path, 22)
    values = p.build_vars(spec(), tmp_path / "w", lambda _: None)
    # what a killed Packer leaves: a running VM, tagged as the template tags it, with a disk
    db = twin.db
    sr = next(iter(db.objects["pool"].values()))["default_SR"]
    vm = db.add(
        "VM",
        {
            "name_label": "tpl-debian12-run42",
            "power_state": "Running",
            "is_a_template": False,
            "guest_metrics": "OpaqueRef:NULL",
            "domid": 3,
            "other_config": {
                "xcpng-golden-run-id": "run42",
                "xcpng-golden-created": values["run_created"],
                "xcpng-golden-expires": values["run_expires"],
            },
        },
    )
    disk = db.add("VDI", {"name_label": "disk", "SR": sr, "virtual_size": 1 << 30})
    twin.storage.create(db.get("VDI", disk)["uuid"], 1 << 30)
    db.add("VBD", {"VM": vm, "VDI": disk, "type": "Disk", "userdevice": "0"})
    other = db.add(
        "VM", {"name_label": "someone-else", "power_state": "Halted", "is_a_template": False}
    )
    xapi = connect(p.settings.xcpng)
    try:
        report = cleanup(xapi, p.ledger.path, run_id="run42")
    finally:
        xapi.logout()
    assert report.problems == [] and len(report.removed) == 1
    assert list(twin.inventory()["VM"]) == [other] and twin.inventory()["VDI"] == {}
    assert Ledger.open_entries(p.ledger.path, "run42") == []


def test_missing_artifact_is_a_usage_error(twin: XapiTwin, tmp_path: Path) -> None:
    p = platform(twin, tmp_path, 22)
    build = build_of(small_xva(tmp_path / "x.xva"))
    build.artifact = str(tmp_path / "gone.xva")
    with pytest.raises(UsageError, match="does not exist"), p.boot(spec(), build, tmp_path / "w"):
        pass
    assert twin.empty() and twin.inventory()["session"] == []


def test_teardown_failure_names_the_cleanup_command(
    twin: XapiTwin,
    ssh: tuple[str, int],
    xva: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(t: XapiTwin, vdi: str) -> str:
        raise XapiError("SR_BACKEND_FAILURE_1200", "", "disk busy", "")

    p = platform(twin, tmp_path, ssh[1])
    with (
        pytest.raises(InfrastructureError, match=r"cleanup --run-id run42"),
        p.boot(spec(), build_of(xva), tmp_path / "work"),
    ):
        monkeypatch.setitem(methods.SPECIAL, "VDI.destroy", refuse)
    assert Ledger.open_entries(p.ledger.path, "run42")  # left for cleanup to find
    monkeypatch.undo()
    xapi = connect(p.settings.xcpng)
    try:
        assert cleanup(xapi, p.ledger.path, run_id="run42").problems == []
    finally:
        xapi.logout()
    assert twin.empty()


def test_start_hook_gets_the_imported_disk_and_the_seed(
    twin: XapiTwin, ssh: tuple[str, int], tmp_path: Path
) -> None:
    """What an end-to-end run needs to boot the very disks the pool received (under QEMU)."""
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\xeb\x63\x90" + bytes((2 << 20) - 3) + b"tail".ljust(512, b"\0"))
    seen: dict[str, object] = {}

    def on_start(vm: str, disks: list[Path]) -> None:
        with disks[0].open("rb") as fh:  # grown by GROW_BYTES of holes: read the start only
            seen["vm"], seen["system"] = vm, fh.read(raw.stat().st_size)
        seen["system_size"] = disks[0].stat().st_size
        seen["seed"] = disks[1].read_bytes()

    def on_stop(vm: str) -> None:
        seen["stopped"] = vm

    twin.on_start, twin.on_stop = on_start, on_stop
    p = platform(twin, tmp_path, ssh[1])
    with p.boot(spec(), build_of(raw, fmt="raw"), tmp_path / "work") as vm:
        assert seen["vm"] == vm.facts["vm_ref"] and "stopped" not in seen
    assert seen["system"] == raw.read_bytes()
    assert seen["system_size"] == raw.stat().st_size + GROW_BYTES
    assert f"instance-id: {vm.instance_id}".encode() in seen["seed"]  # type: ignore[operator]
    assert seen["stopped"] == vm.facts["vm_ref"]
    assert twin.empty()


@pytest.mark.skipif(shutil.which("sfdisk") is None, reason="apt-get install fdisk")
def test_a_raw_uefi_disk_imports_as_a_uefi_vm(
    twin: XapiTwin, ssh: tuple[str, int], tmp_path: Path
) -> None:
    """The local build's disk (GPT, an EFI system partition, no BIOS boot partition) starts on
    the pool with UEFI, as it was built; converted as BIOS it would not boot at all."""
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as fh:
        fh.truncate(16 << 20)
    subprocess.run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(raw)],
        input="label: gpt\nsize=4M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\ntype=L\n",
        text=True,
        check=True,
        capture_output=True,
    )
    p = platform(twin, tmp_path, ssh[1])
    with p.boot(spec(), build_of(raw, fmt="raw"), tmp_path / "work"):
        (rec,) = twin.inventory()["VM"].values()
        assert rec["HVM_boot_params"]["firmware"] == "uefi"
    assert twin.empty()


def test_a_clone_with_no_common_cipher_is_diagnosed_at_once(
    twin: XapiTwin, xva: Path, tmp_path: Path
) -> None:
    """With the login check on (the default), a clone whose sshd offers only CBC ciphers is an
    image defect named after ssh-crypto within seconds, not at the boot timeout; nothing is left."""
    from tests.support.sshd import WEAK, fake_sshd

    with fake_sshd(WEAK) as (_, port):
        s = twin_settings(twin, tmp_path / "artifacts", TEMPLATE_BOOT_TIMEOUT="15m")
        p = XcpngPlatform(s, "run42", policy=FAST, ip_poll=0.05, ssh_port=port)
        with pytest.raises(ImageDefect) as failure, p.boot(spec(), build_of(xva), tmp_path / "w"):
            pass
    assert "no SSH login" not in str(failure.value)  # the diagnosis, not the 15 min timeout
    assert "ssh-crypto" in str(failure.value) and "sshd offers aes128-cbc, 3des-cbc" in str(
        failure.value
    )
    assert twin.empty()
