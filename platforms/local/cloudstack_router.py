"""CloudStack's virtual router, as much of it as a new instance asks for: the metadata service on
the DHCP server's port 80 and the password server on its port 8080.

A local clone with `--local-datasource cloudstack` gets no seed disk. Its data comes the way a
CloudStack instance on an isolated or shared network gets it: cloud-init's CloudStack datasource
finds the virtual router as the DHCP server (QEMU's user network: 10.0.2.2, which QEMU maps to the
host's 127.0.0.1), reads `/latest/meta-data/...` and `/latest/user-data` there, and asks the
password server for a password. So the router listens on 127.0.0.1:80 and :8080 of this machine,
one such boot at a time (a file lock), and the checks then prove the identity arrived.

Paths and answers follow CloudStack's router (systemvm's vmdata files served by Apache, and
passwd_server_ip.py): a listing of the metadata names, one file each, the user data as given, and
`saved_password` when no password waits for the instance, which is what a key-only template
(registered with passwordenabled=false) always gets.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from filelock import FileLock, Timeout

from core.errors import InfrastructureError

ADDRESS = "127.0.0.1"  # where QEMU's user network sends the guest's 10.0.2.2
METADATA_PORT = 80
PASSWORD_PORT = 8080
GUEST_IP = "10.0.2.15"  # the address QEMU's DHCP hands the first guest
LOCK = "cloudstack-router.lock"


@dataclass
class RouterLog:
    """What the instance asked: proof that it read its data from here."""

    requests: list[str] = field(default_factory=list)
    password_requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: list[str], line: str) -> None:
        with self.lock:
            kind.append(line)


def metadata(instance_id: str, hostname: str, public_key: str, zone: str) -> dict[str, str]:
    """The names CloudStack's router serves under /latest/meta-data/ for one instance."""
    return {
        "service-offering": "Small Instance",
        "availability-zone": zone,
        "local-ipv4": GUEST_IP,
        "local-hostname": hostname,
        "public-ipv4": GUEST_IP,
        "public-hostname": hostname,
        "instance-id": instance_id,
        "vm-id": instance_id,
        "public-keys": public_key,
        "cloud-identifier": "CloudStack-{local-checks}",
    }


def _metadata_handler(meta: dict[str, str], user_data: str, log: RouterLog) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.add(log.requests, self.path)
            path = self.path.split("?", 1)[0].rstrip("/")
            if path in ("/latest/meta-data", "/latest"):
                body = "\n".join(meta) if path.endswith("meta-data") else "meta-data\nuser-data"
                self._send(200, body)
            elif path.startswith("/latest/meta-data/") and path.rsplit("/", 1)[1] in meta:
                self._send(200, meta[path.rsplit("/", 1)[1]])
            elif path == "/latest/user-data":
                self._send(200, user_data)
            else:
                self._send(404, "Not Found")

        def _send(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _password_handler(log: RouterLog) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            request = self.headers.get("DomU_Request", "")
            log.add(log.password_requests, request)
            # passwd_server_ip.py: no password waiting (a key-only template) -> saved_password
            body = {"send_my_password": b"saved_password", "saved_password": b"saved"}.get(
                request, b"bad_request"
            )
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _serve(port: int, handler: type) -> ThreadingHTTPServer:
    try:
        server = ThreadingHTTPServer((ADDRESS, port), handler)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise InfrastructureError(
                f"cannot listen on {ADDRESS}:{port} for the CloudStack router stand-in "
                f"({exc.strerror}): QEMU's user network sends the guest's requests to the "
                f"DHCP server there; free the port (ss -ltnp 'sport = :{port}') or boot with "
                "--local-datasource nocloud"
            ) from None
        raise
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"router-{port}", daemon=True).start()
    return server


@contextmanager
def virtual_router(
    lock_dir: Path, meta: dict[str, str], user_data: str, wait_s: float
) -> Iterator[RouterLog]:
    """Serve one instance's data on 127.0.0.1:80 and :8080 while the block runs."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_dir / LOCK))
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise InfrastructureError(
            f"another CloudStack-way boot on this machine held {lock_dir / LOCK} for "
            f"{wait_s:.0f} s (the router's ports are machine-wide); wait for it"
        ) from None
    servers: list[ThreadingHTTPServer] = []
    try:
        log = RouterLog()
        servers.append(_serve(METADATA_PORT, _metadata_handler(meta, user_data, log)))
        servers.append(_serve(PASSWORD_PORT, _password_handler(log)))
        yield log
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        lock.release()
