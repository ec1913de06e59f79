"""A stand-in for sshd's first words: its banner and its KEXINIT packet, over real TCP on
loopback. Enough for the boot wait to read what sshd offers and for the OpenSSH client to fail
its negotiation the way it fails against a real sshd with that offer."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Iterator

from platforms import reach
from platforms.reach import Algorithms

BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
WEAK = Algorithms(
    kex=("curve25519-sha256",),
    hostkey=("ssh-ed25519",),
    ciphers=("aes128-cbc", "3des-cbc"),
    macs=("hmac-sha2-256",),
)


def kexinit(alg: Algorithms) -> bytes:
    """An SSH_MSG_KEXINIT packet as sshd sends it after its banner (RFC 4253 §6, §7.1)."""
    lists = [
        ",".join((*alg.kex, "kex-strict-s-v00@openssh.com")),
        ",".join(alg.hostkey),
        ",".join(alg.ciphers),
        ",".join(alg.ciphers),
        ",".join(alg.macs),
        ",".join(alg.macs),
        "none",
        "none",
        "",
        "",
    ]
    payload = bytes([reach.KEXINIT]) + os.urandom(16)
    for item in lists:
        payload += struct.pack(">I", len(item)) + item.encode()
    payload += b"\0" + b"\0\0\0\0"
    padding = 8 - (len(payload) + 5) % 8 + 8
    return struct.pack(">IB", len(payload) + padding + 1, padding) + payload + b"\0" * padding


@contextlib.contextmanager
def fake_sshd(alg: Algorithms) -> Iterator[tuple[str, int]]:
    """A TCP listener on loopback that greets and sends its KEXINIT, like sshd."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = srv.accept()
                with conn:
                    conn.sendall(BANNER + kexinit(alg))
                    conn.recv(256)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield srv.getsockname()[:2]
    finally:
        srv.close()
