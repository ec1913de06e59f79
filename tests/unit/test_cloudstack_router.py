"""The CloudStack virtual router stand-in of the local platform, read the way cloud-init's CloudStack
datasource reads it: the metadata listing and files, the user data, the password server's answer
to a key-only instance; and the BIOS/UEFI command lines of a local clone."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from platforms.local import cloudstack_router as router
from platforms.local.accel import Accel
from platforms.local.qemu import VMSpec


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((router.ADDRESS, port))
        except OSError:
            return False
    return True


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the real ports (80, 8080) need root and may be taken: the same server on free ports
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind((router.ADDRESS, 0))
            ports.append(s.getsockname()[1])
    monkeypatch.setattr(router, "METADATA_PORT", ports[0])
    monkeypatch.setattr(router, "PASSWORD_PORT", ports[1])
    meta = router.metadata("i-2-10-VM", "debian12-ab12", "ssh-ed25519 AAAA tester", "zone1")
    with router.virtual_router(tmp_path, meta, "#cloud-config\n{}\n", 5) as log:
        yield ports, log


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def test_metadata_as_cloud_init_crawls_it(served) -> None:
    (meta_port, pw_port), log = served
    base = f"http://{router.ADDRESS}:{meta_port}/latest"
    status, listing = get(f"{base}/meta-data/")
    assert status == 200 and "instance-id" in listing.splitlines()
    assert get(f"{base}/meta-data/instance-id") == (200, "i-2-10-VM")
    assert get(f"{base}/meta-data/local-hostname") == (200, "debian12-ab12")
    assert get(f"{base}/meta-data/public-keys") == (200, "ssh-ed25519 AAAA tester")
    assert get(f"{base}/user-data") == (200, "#cloud-config\n{}\n")
    assert get(f"{base}/meta-data/nothing")[0] == 404
    ask = {"DomU_Request": "send_my_password"}
    assert get(f"http://{router.ADDRESS}:{pw_port}", ask) == (200, "saved_password")
    assert log.password_requests == ["send_my_password"]
    assert "/latest/user-data" in log.requests


def test_a_taken_port_is_one_line_naming_the_fix(tmp_path: Path, monkeypatch) -> None:
    with socket.socket() as s:
        s.bind((router.ADDRESS, 0))
        s.listen()
        monkeypatch.setattr(router, "METADATA_PORT", s.getsockname()[1])
        from core.errors import InfrastructureError

        with (
            pytest.raises(InfrastructureError, match="--local-datasource nocloud"),
            router.virtual_router(tmp_path, {}, "", 5),
        ):
            pass


def _spec(tmp_path: Path, code: Path | None) -> VMSpec:
    return VMSpec(
        name="vm", disk=tmp_path / "o.qcow2", seed=None, ovmf_code=code,
        ovmf_vars=tmp_path / "vars.fd" if code else None, console_log=tmp_path / "c.log",
        qmp_socket=tmp_path / "q.sock", address="127.0.0.2", port=2222,
        accel=Accel("tcg", "max", "test"),
    )  # fmt: skip


def test_bios_clone_has_no_pflash_and_uefi_has_both(tmp_path: Path) -> None:
    bios = " ".join(_spec(tmp_path, None).argv())
    uefi = " ".join(_spec(tmp_path, tmp_path / "code.fd").argv())
    assert "if=pflash" not in bios and "if=virtio,format=qcow2" in bios
    assert uefi.count("if=pflash") == 2 and "readonly=on" in uefi
