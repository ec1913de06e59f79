"""OpenSSH as the harness uses it: one set of client options, one banner probe.

The checks, the boot waits and the kept-VM instructions all log in the same way: the seed's
key only, a known_hosts holding only the host key the seed installed, no prompts.
"""

from __future__ import annotations

import shlex
import socket
from pathlib import Path


def client_options(
    key: Path, known_hosts: Path | None, control_dir: Path | None = None
) -> list[str]:
    """`ssh` options for a clone: this key, this host key, batch mode, optional shared master."""
    opts = [
        "-i", str(key),
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=10",
        "-o", "ServerAliveInterval=15",
    ]  # fmt: skip
    if known_hosts is not None:
        opts += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes"]
    else:
        opts += ["-o", "StrictHostKeyChecking=accept-new"]
    if control_dir is not None:
        # a short folder: a unix socket path is limited to 108 bytes and ssh appends a suffix
        opts += ["-o", f"ControlPath={control_dir}/%C"]
    return opts


def ssh_argv(
    user: str,
    address: str,
    port: int,
    key: Path,
    known_hosts: Path | None,
    *command: str,
    control_dir: Path | None = None,
) -> list[str]:
    return [
        "ssh",
        *client_options(key, known_hosts, control_dir),
        "-p",
        str(port),
        f"{user}@{address}",
        *command,
    ]


def ssh_command(user: str, address: str, port: int, key: Path, known_hosts: Path | None) -> str:
    """The command line an operator pastes to reach a clone (shown for kept VMs)."""
    return shlex.join(ssh_argv(user, address, port, key, known_hosts))


def ssh_banner(address: str, port: int, timeout: float = 5.0) -> str:
    """The server's identification line (RFC 4253 §4.2), or ConnectionError without one.

    A port forwarder (QEMU's user network) accepts a connection even when no sshd runs, so
    only the banner proves sshd answers."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        data = b""
        while b"\n" not in data and len(data) < 1024:
            try:
                chunk = sock.recv(256)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    for line in data.split(b"\n"):
        if line.startswith(b"SSH-"):
            return line.strip().decode("ascii", errors="replace")
    raise ConnectionError(f"{address}:{port} answered without an SSH banner")
