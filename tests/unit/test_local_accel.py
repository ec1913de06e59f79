"""The accelerator choice: KVM only after a successful probe, cached per machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from platforms.local import accel


def test_boot_sector_is_a_valid_mbr_that_prints_the_probe_message():
    sector = accel.boot_sector()
    assert len(sector) == 512
    assert sector[-2:] == b"\x55\xaa"
    at = sector.index(accel.PROBE_MESSAGE)
    # mov si, imm16 (0xBE) must point at the message once loaded at 0x7C00
    si = sector.index(b"\xbe")
    assert int.from_bytes(sector[si + 1 : si + 3], "little") == 0x7C00 + at
    assert b"\xee" in sector[:at]  # out dx, al writes to the serial port


def test_tcg_uses_cpu_max_and_multithreading():
    assert accel.TCG.machine_args() == ["-accel", "tcg,thread=multi", "-cpu", "max"]
    assert accel.Accel("kvm", "host", "").machine_args() == ["-accel", "kvm", "-cpu", "host"]


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[str, str]] = []

    def fake_probe(acc: str, cpu: str, timeout_s: float = 15.0, qemu: str = "") -> bool:
        seen.append((acc, cpu))
        return fake_probe.result  # type: ignore[attr-defined]

    fake_probe.result = False  # type: ignore[attr-defined]
    monkeypatch.setattr(accel, "probe", fake_probe)
    monkeypatch.setattr(accel.os, "access", lambda path, mode: True)
    return seen, fake_probe


def test_kvm_is_chosen_only_when_the_probe_boots(tmp_path: Path, calls):
    seen, fake = calls
    fake.result = True
    chosen = accel.choose(tmp_path)
    assert (chosen.accelerator, chosen.cpu) == ("kvm", "host")
    assert seen == [("kvm", "host")]


def test_failed_probe_means_tcg_and_the_answer_is_cached(tmp_path: Path, calls):
    seen, fake = calls
    fake.result = False
    first = accel.choose(tmp_path)
    second = accel.choose(tmp_path)
    assert (first.accelerator, first.cpu) == ("tcg", "max")
    assert second.accelerator == "tcg" and "cached" in second.reason
    assert len(seen) == 1, "the probe must run once per machine, not per call"


def test_cache_of_another_machine_is_ignored(tmp_path: Path, calls):
    seen, fake = calls
    (tmp_path / "accel.json").write_text(
        '{"key": "other-host", "accelerator": "kvm", "cpu": "host", "reason": "x"}'
    )
    fake.result = False
    assert accel.choose(tmp_path).accelerator == "tcg"
    assert len(seen) == 1


def test_no_kvm_device_skips_the_probe(tmp_path: Path, calls, monkeypatch):
    seen, _ = calls
    monkeypatch.setattr(accel.os, "access", lambda path, mode: False)
    chosen = accel.choose(tmp_path)
    assert chosen.accelerator == "tcg"
    assert seen == []
