"""The accelerator probe against the real QEMU: the boot sector reaches the serial port
under TCG, and a broken accelerator is reported as such within the probe's own limit."""

from __future__ import annotations

import shutil
import time

import pytest

from platforms.local import accel

pytestmark = pytest.mark.skipif(
    shutil.which(accel.QEMU) is None, reason="qemu-system-x86 not installed"
)


def test_probe_boots_under_tcg():
    assert accel.probe("tcg", "max", timeout_s=20) is True


def test_probe_fails_fast_for_an_unusable_accelerator():
    started = time.monotonic()
    assert accel.probe("no-such-accel", "max", timeout_s=20) is False
    assert time.monotonic() - started < 20


def test_probe_time_limit_holds_when_the_guest_never_answers(monkeypatch):
    silent = b"\xfa\xf4\xeb\xfd"  # cli; hlt; jmp back: runs but never writes to the port
    monkeypatch.setattr(accel, "boot_sector", lambda: silent + b"\0" * 506 + b"\x55\xaa")
    started = time.monotonic()
    assert accel.probe("tcg", "max", timeout_s=3) is False
    assert time.monotonic() - started < 10
