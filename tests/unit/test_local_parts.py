"""Build seed, QEMU command line, loopback ports, slots and clean stop of the local platform."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.errors import InfrastructureError
from platforms.local import qemu, slots
from platforms.local.accel import TCG
from platforms.local.buildseed import make_build_seed
from platforms.seed import CHECK_USER, make_seed


def _mtype(image: Path, name: str) -> str:
    return subprocess.run(
        ["mtype", "-i", str(image), f"::/{name}"], check=True, capture_output=True, text=True
    ).stdout


def test_build_seed_gives_packer_a_fresh_key_and_nothing_else(tmp_path: Path):
    seed = make_build_seed(tmp_path, "debian12", "run1")
    label = subprocess.run(
        ["mlabel", "-i", str(seed.image), "-s", "::"], capture_output=True, text=True
    ).stdout
    assert "CIDATA" in label
    user_data = _mtype(seed.image, "user-data")
    assert user_data.startswith("#cloud-config\n")
    cfg = json.loads(user_data.split("\n", 1)[1])
    (user,) = cfg["users"]
    public = seed.key_path.with_suffix(".pub").read_text().split()[1]
    assert user["name"] == seed.user == "packer"
    assert public in user["ssh_authorized_keys"][0]
    assert user["lock_passwd"] is True and "passwd" not in user
    assert cfg["ssh_pwauth"] is False
    assert "PRIVATE KEY" not in user_data
    assert seed.key_path.stat().st_mode & 0o077 == 0
    assert f"instance-id: {seed.instance_id}" in _mtype(seed.image, "meta-data")


def test_clone_seed_renames_the_images_own_default_user(tmp_path: Path):
    """`user:` overrides only the keys it names in the image's `system_info.default_user`, and
    `users: [default]` creates that user: the checks' account keeps the image's groups."""
    seed = make_seed(tmp_path, "debian12", "run1")
    cfg = json.loads(_mtype(seed.image, "user-data").split("\n", 1)[1])
    assert cfg["users"] == ["default"]
    user = cfg["user"]
    assert user["name"] == seed.user == CHECK_USER
    assert "groups" not in user and "passwd" not in user and user["lock_passwd"] is True
    assert seed.public_key in user["ssh_authorized_keys"]
    assert user["sudo"] == "ALL=(ALL) NOPASSWD:ALL"


def test_build_seed_can_be_made_again_in_the_same_dir(tmp_path: Path):
    a = make_build_seed(tmp_path, "debian12", "run1")
    first = a.key_path.read_text()
    b = make_build_seed(tmp_path, "debian12", "run1")
    assert b.key_path.read_text() != first


def _spec(tmp_path: Path) -> qemu.VMSpec:
    return qemu.VMSpec(
        name="debian12-run1",
        disk=tmp_path / "overlay.qcow2",
        seed=tmp_path / "seed.img",
        ovmf_code=Path("/usr/share/OVMF/OVMF_CODE_4M.fd"),
        ovmf_vars=tmp_path / "vars.fd",
        console_log=tmp_path / "console.log",
        qmp_socket=tmp_path / "qmp.sock",
        address="127.0.0.9",
        port=40022,
        accel=TCG,
    )


def test_command_line_boots_the_disk_through_uefi_never_a_kernel(tmp_path: Path):
    argv = _spec(tmp_path).argv()
    joined = " ".join(argv)
    assert "-kernel" not in argv and "-initrd" not in argv
    assert "hostfwd=tcp:127.0.0.9:40022-:22" in joined
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd" in argv
    assert f"file={tmp_path / 'seed.img'},if=virtio,format=raw,readonly=on" in argv
    assert f"file:{tmp_path / 'console.log'}" in argv
    assert argv[argv.index("-cpu") + 1] == "max"
    assert int(argv[argv.index("-smp") + 1]) <= 2
    assert int(argv[argv.index("-m") + 1]) <= 2048


def test_free_loopback_is_never_127_0_0_1_and_is_bindable():
    import socket

    address, port = qemu.free_loopback()
    assert address.startswith("127.0.0.") and address != "127.0.0.1"
    with socket.socket() as s:
        s.bind((address, port))


def test_stop_escalates_to_kill_for_a_process_that_ignores_sigterm(tmp_path: Path):
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()  # the handler is installed
    started = time.monotonic()
    qemu.stop(proc, tmp_path / "no-such.sock", grace_s=0.5)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_qmp_quit_is_sent_over_the_socket(tmp_path: Path):
    import socket

    sock_path = tmp_path / "qmp.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    got: list[str] = []

    def serve():
        conn, _ = server.accept()
        f = conn.makefile("rwb")
        f.write(b'{"QMP": {"version": {}}}\n')
        f.flush()
        for _ in range(2):
            got.append(json.loads(f.readline())["execute"])
            f.write(b'{"return": {}}\n')
            f.flush()
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    assert qemu.qmp(sock_path, "quit") == {"return": {}}
    t.join(5)
    server.close()
    assert got == ["qmp_capabilities", "quit"]


def test_slots_limit_concurrent_vms(tmp_path: Path):
    with slots.qemu_slot(tmp_path, timeout_s=1, count=1) as index:
        assert index == 0
        with (
            pytest.raises(InfrastructureError, match="no free QEMU slot"),
            slots.qemu_slot(tmp_path, timeout_s=0.5, count=1),
        ):
            pass
    with slots.qemu_slot(tmp_path, timeout_s=1, count=1) as again:
        assert again == 0


def test_slots_are_shared_between_processes(tmp_path: Path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[2]);"
            "from pathlib import Path; from platforms.local.slots import qemu_slot\n"
            "with qemu_slot(Path(sys.argv[1]), 5, count=1):\n"
            "    print('held', flush=True); time.sleep(30)",
            str(tmp_path),
            str(Path(__file__).resolve().parents[2]),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(InfrastructureError),
            slots.qemu_slot(tmp_path, timeout_s=0.5, count=1),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()
    with slots.qemu_slot(tmp_path, timeout_s=2, count=1):
        pass
