"""The XAPI twin: XML-RPC on `POST /`, `PUT /import`, `PUT /import_raw_vdi`, on 127.0.0.1.

Tests drive it through `XapiTwin` (faults, the guest a started VM pretends to be, inventory);
when it runs as its own process, `GET /_twin/state` and `POST /_twin/config` do the same.

The HTTP handlers answer as xen-api's `Import.handler` does: the credentials, then the SR's
visibility (an SR this host cannot see: `302 Found` to a host that can, before any body is
read), then `200 OK` with the task id *before* the body is read; on a bad body the import stops
reading and the connection closes (the client sees a broken pipe, the error is on the task).
`add_member()` starts a second host with its own local SR on another port, to be redirected to.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.twins.xapi import inventory, methods
from tests.twins.xapi.datamodel import RELEASES, Release
from tests.twins.xapi.db import (
    NULL,
    Db,
    add_host,
    host_for_sr,
    level_pool_cpus,
    master,
    seed_pool,
)
from tests.twins.xapi.wire import XapiError, parse_request, response
from tests.twins.xapi.xva_import import Storage, import_raw, import_xva


@dataclass
class Faults:
    """Faults to inject; counters decrease as they fire."""

    login_failures: int = 0  # next N logins: SESSION_AUTHENTICATION_FAILED
    drop_import_after: int | None = None  # close the connection after this many body bytes
    drop_import_count: int = 1  # ... this many times
    fail_tasks: int = 0  # next N imports end with a failed task
    fail_task_error: list[str] = field(
        default_factory=lambda: ["SR_BACKEND_FAILURE_44", "", "There is insufficient space", ""]
    )
    bad_power_state: int = 0  # next N VM.start: VM_BAD_POWER_STATE
    http_503: int = 0  # next N XML-RPC calls: HTTP 503
    invalidate_sessions_after: int | None = None  # after N more calls every session is invalid
    expire_sessions_on_upload: int = 0  # next N PUTs find every session expired (HTTP 403)
    import_delay: float = 0.0  # seconds per received chunk (to interrupt an import mid-way)
    # next N imports lose their task as a toolstack restart does: the task record is gone
    # (task.get_status: HANDLE_INVALID) and the VM the import had created stays
    lose_import_tasks: int = 0
    method_delay: dict[str, float] = field(default_factory=dict)  # e.g. {"VM.destroy": 9.0}


@dataclass
class Guest:
    """What a started VM reports through guest metrics."""

    ip: str = "127.0.0.1"
    tools: bool = False  # PV_drivers_version and os_version only when the guest runs tools
    ip_delay: float = 0.0
    ip_never: bool = False
    link_local_first: bool = False  # report 169.254.x.y first, the real IP after ip_delay
    os_version: dict[str, str] = field(
        default_factory=lambda: {
            "name": "Debian GNU/Linux 12 (bookworm)",
            "uname": "6.1.0-27-amd64",
            "distro": "debian",
            "major": "12",
            "minor": "8",
        }
    )


class XapiTwin:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "root",
        password: str = "twin-password",
        storage: Path | bool | None = True,
        tls: tuple[Path, Path] | None = None,
        release: str = "8.2",
    ):
        self.username, self.password = username, password
        # the XCP-ng release whose import rules apply (8.2 is the stricter on versions)
        self.release: Release = RELEASES[release]
        # False: the login is an RBAC/AD subject, not the pool's local root
        self.local_superuser = True
        self.db = Db()
        # what a fresh pool of this release holds: templates, the guest-tools ISO and its SR
        self.pool_own = seed_pool(self.db, self.release.name)
        self.faults = Faults()
        self.guest = Guest()
        self.calls: list[str] = []  # method names, in order
        self.requests: list[str] = []  # raw request lines, to check what clients expose
        self._tmp = tempfile.mkdtemp(prefix="xapi-twin-") if storage is True else None
        root = Path(self._tmp) if self._tmp else (storage if isinstance(storage, Path) else None)
        self.storage = Storage(root)
        self._timers: dict[str, list[threading.Timer]] = {}
        self._calls_since: int = 0
        self._import_progress: dict[int, tuple[str, int, int]] = {}
        self._tls_context: ssl.SSLContext | None = None
        if tls is not None:
            self._tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls_context.load_cert_chain(str(tls[0]), str(tls[1]))
        self.scheme = "http" if tls is None else "https"
        self.server = self._listen(host, port, master(self.db))
        self.members: list[_Server] = []
        self._thread: threading.Thread | None = None
        # Hooks to make a started VM real, e.g. boot its disks under QEMU for an end-to-end
        # run: on_start(vm_ref, disk files by userdevice) when VM.start succeeds (raise to
        # fail the start), on_stop(vm_ref) on shutdown. Disk files exist when storage is on.
        self.on_start: Callable[[str, list[Path]], None] | None = None
        self.on_stop: Callable[[str], None] | None = None

    def _listen(self, host: str, port: int, host_ref: str) -> _Server:
        server = _Server((host, port), _Handler)
        server.twin, server.host_ref = self, host_ref
        if self._tls_context is not None:
            server.socket = self._tls_context.wrap_socket(server.socket, server_side=True)
        return server

    # -- a pool that lacks something ------------------------------------------------------------
    def remove_template(self, name: str) -> None:
        """A pool without this template (an older guest-templates-json, or deleted)."""
        with self.db.lock:
            for ref in self.db.refs("VM", name_label=name, is_a_template=True):
                self.db.remove("VM", ref)
                self.pool_own.discard(ref)

    def remove_tools_iso(self) -> None:
        with self.db.lock:
            for ref in self.db.refs("VDI", name_label=inventory.TOOLS_ISO):
                self.db.remove("VDI", ref)
                self.pool_own.discard(ref)

    def set_cpu(self, host: str, lacks: tuple[str, ...]) -> None:
        """The host's CPU without these features (inventory.WESTMERE_LACKS: x86-64-v2 only)."""
        with self.db.lock:
            self.db.get("host", host)["cpu_info"] = inventory.cpu_info(lacks)
            level_pool_cpus(self.db)

    def replace_certificate(self, cert: Path, key: Path) -> None:
        """Serve another certificate from the next TLS connection on (a host whose certificate
        was regenerated, or someone in between presenting their own)."""
        assert self._tls_context is not None, "the twin serves plain HTTP"
        self._tls_context.load_cert_chain(str(cert), str(key))

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def add_member(
        self, name: str = "xcp-twin-2", cpu_lacks: tuple[str, ...] = ()
    ) -> tuple[str, str]:
        """Another host of the pool, serving HTTP on its own port (its `address` is
        127.0.0.1:<port>), with a local SR only it can see; returns (host ref, SR ref).
        `cpu_lacks`: CPU features its CPU has not (inventory.WESTMERE_LACKS: no x86-64-v3)."""
        server = self._listen("127.0.0.1", 0, "")
        address = "{}:{}".format(*server.server_address[:2])
        host, sr = add_host(self.db, name, address, release=self.release.name, cpu_lacks=cpu_lacks)
        server.host_ref = host
        self.members.append(server)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return host, sr

    def start(self) -> XapiTwin:
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        for server in [self.server, *self.members]:
            server.shutdown()
            server.server_close()
        for timers in self._timers.values():
            for t in timers:
                t.cancel()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> XapiTwin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests look at -------------------------------------------------------------
    def inventory(self) -> dict[str, Any]:
        """Objects a client created: VMs that are not the pool's own, VDIs, VBDs, VIFs, tasks."""
        own = self.pool_own
        with self.db.lock:
            return {
                "VM": {r: dict(v) for r, v in self.db.objects["VM"].items() if r not in own},
                "VDI": {r: dict(v) for r, v in self.db.objects["VDI"].items() if r not in own},
                "VBD": list(self.db.objects["VBD"]),
                "VIF": list(self.db.objects["VIF"]),
                "task": list(self.db.objects["task"]),
                "session": list(self.db.objects["session"]),
            }

    def empty(self) -> bool:
        inv = self.inventory()
        return not (inv["VM"] or inv["VDI"] or inv["VBD"] or inv["VIF"] or inv["task"])

    def disk_paths(self, vm: str) -> list[Path]:
        """The VM's disk contents as files (raw, sparse), ordered by VBD userdevice."""
        if self.storage.root is None:
            return []
        with self.db.lock:
            vbds = [self.db.get("VBD", r) for r in self.db.refs("VBD", VM=vm)]
            vbds = [v for v in vbds if v.get("VDI", NULL) != NULL and v.get("type") != "CD"]
            vbds.sort(key=lambda v: int(v["userdevice"]) if v["userdevice"].isdigit() else 99)
            return [self.storage.path(self.db.get("VDI", v["VDI"])["uuid"]) for v in vbds]

    def vdi_data(self, vdi: str) -> bytes:
        return self.storage.read(self.db.get("VDI", vdi)["uuid"])

    # -- hooks used by methods and the import ---------------------------------------------
    def after_authenticated_call(self) -> None:
        with self.db.lock:
            left = self.faults.invalidate_sessions_after
            if left is None:
                return
            if left <= 0:  # XAPI forgets expired sessions altogether
                self.db.objects["session"].clear()
                self.faults.invalidate_sessions_after = None
                raise XapiError("SESSION_INVALID", "expired")
            self.faults.invalidate_sessions_after = left - 1

    def import_progress(self, nbytes: int) -> None:
        key = threading.get_ident()
        if key in self._import_progress:
            task, done, total = self._import_progress[key]
            done += nbytes
            self._import_progress[key] = (task, done, total)
            with contextlib.suppress(XapiError):
                self.db.get("task", task)["progress"] = min(done / max(total, 1), 0.99)
        if self.faults.import_delay:
            time.sleep(self.faults.import_delay)

    def report_guest_metrics(self, vm: str) -> None:
        g = self.guest
        if g.ip_never:
            return
        timers = self._timers.setdefault(vm, [])
        if g.link_local_first:
            self._publish(vm, "169.254.10.20")
        if g.ip_delay > 0:
            timers.append(methods.schedule(g.ip_delay, lambda: self._publish(vm, g.ip)))
        else:
            self._publish(vm, g.ip)

    def cancel_guest_timers(self, vm: str) -> None:
        for t in self._timers.pop(vm, []):
            t.cancel()

    def _publish(self, vm: str, ip: str) -> None:
        g = self.guest
        with self.db.lock:
            rec = self.db.objects["VM"].get(vm)
            if rec is None or rec["power_state"] != "Running":
                return
            fields = {
                "networks": {"0/ip": ip, "0/ipv4/0": ip},
                "os_version": dict(g.os_version) if g.tools else {},
                "PV_drivers_version": (
                    {"major": "8", "minor": "3", "micro": "0", "build": "1"} if g.tools else {}
                ),
                "PV_drivers_up_to_date": g.tools,
                "last_updated": time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime()),
                "other": {},
                "disks": {},
                "memory": {},
            }
            if rec["guest_metrics"] == NULL:
                rec["guest_metrics"] = self.db.add("VM_guest_metrics", fields)
            else:
                self.db.get("VM_guest_metrics", rec["guest_metrics"]).update(fields)

    def configure(self, data: dict[str, Any]) -> None:
        """Side channel for a twin in another process: {"faults": {...}, "guest": {...}}."""
        for name, target in (("faults", self.faults), ("guest", self.guest)):
            for k, v in data.get(name, {}).items():
                if not hasattr(target, k):
                    raise ValueError(f"unknown {name} setting {k!r}")
                setattr(target, k, v)

    def state(self) -> dict[str, Any]:
        inv = self.inventory()
        return {
            "url": self.url,
            "faults": asdict(self.faults),
            "guest": asdict(self.guest),
            "VM": inv["VM"],
            "VDI": inv["VDI"],
            "VBD": inv["VBD"],
            "VIF": inv["VIF"],
            "task": inv["task"],
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    twin: XapiTwin
    host_ref: str  # the pool host this listener is


class _Drop(Exception):
    pass


class _Body:
    """The request body, limited to Content-Length, dropping the connection on demand."""

    def __init__(self, rfile: Any, length: int, drop_after: int | None):
        self.rfile, self.left, self.read_so_far, self.drop_after = rfile, length, 0, drop_after

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.left:
            n = self.left
        if self.drop_after is not None and self.read_so_far + n > self.drop_after:
            raise _Drop
        data = self.rfile.read(n) if n else b""
        self.left -= len(data)
        self.read_so_far += len(data)
        return data


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def twin(self) -> XapiTwin:
        return self.server.twin

    def _reply(self, code: int, body: bytes = b"", ctype: str = "text/xml") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.twin.requests.append(self.requestline)
        if self.path == "/_twin/state":
            self._reply(200, json.dumps(self.twin.state()).encode(), "application/json")
        else:
            self._reply(404)

    def do_POST(self) -> None:
        self.twin.requests.append(self.requestline)
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
        if self.path == "/_twin/config":
            try:
                self.twin.configure(json.loads(data))
            except (ValueError, TypeError) as exc:
                self._reply(400, str(exc).encode(), "text/plain")
                return
            self._reply(200, b"{}", "application/json")
            return
        with self.twin.db.lock:
            if self.twin.faults.http_503 > 0:
                self.twin.faults.http_503 -= 1
                self._reply(503, b"Service Unavailable", "text/plain")
                return
        try:
            method, params = parse_request(data)
        except Exception:
            self._reply(400, b"not an XML-RPC call", "text/plain")
            return
        self.twin.calls.append(method)
        if self.server.host_ref != master(self.twin.db):  # a pool member serves no API
            address = self.twin.db.get("host", master(self.twin.db))["address"]
            self._reply(200, response(error=XapiError("HOST_IS_SLAVE", address)))
            return
        if method in self.twin.faults.method_delay:
            time.sleep(self.twin.faults.method_delay[method])
        try:
            body = response(methods.dispatch(self.twin, method, params))
        except XapiError as exc:
            body = response(error=exc)
        except Exception as exc:  # a bug in the twin shows as XAPI's INTERNAL_ERROR
            body = response(error=XapiError("INTERNAL_ERROR", repr(exc)))
        self._reply(200, body)

    def do_PUT(self) -> None:
        twin = self.twin
        twin.requests.append(self.requestline)
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.close_connection = True  # XAPI closes after an import, success or not
        with twin.db.lock:
            if twin.faults.expire_sessions_on_upload > 0:
                twin.faults.expire_sessions_on_upload -= 1
                twin.db.objects["session"].clear()
        session = twin.db.objects["session"].get(q.get("session_id", ""))
        if session is None or not session["valid"]:
            self._reply(403, b"Forbidden", "text/plain")
            return
        task = q.get("task_id") or methods.task_create(twin, f"import {url.path}", "")
        try:
            task_rec = twin.db.get("task", task)
        except XapiError:
            self._reply(404, b"no such task", "text/plain")
            return
        if url.path not in ("/import", "/import_raw_vdi"):
            self._reply(404)
            return
        try:
            sr = self._target_sr(url.path, q)
        except XapiError as exc:
            self._fail(task_rec, exc)
            self._reply(500, json.dumps(exc.details).encode(), "text/plain")
            return
        if not self._sees(sr):
            self._redirect(sr, url.path, url.query)
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._fail(task_rec, XapiError("IMPORT_ERROR_CANNOT_HANDLE_CHUNKED"))
            self._reply(403, b"chunked transfer encoding refused", "text/plain")
            return
        if self.headers.get("Content-Length") is None:
            self._reply(411, b"Length Required", "text/plain")
            return
        length = int(self.headers["Content-Length"])
        drop = None
        with twin.db.lock:
            if twin.faults.drop_import_after is not None and twin.faults.drop_import_count > 0:
                twin.faults.drop_import_count -= 1
                drop = twin.faults.drop_import_after
        # As Import.handler: the answer and the task id go out before the body is read.
        self.send_response(200)
        self.send_header("Connection", "close")
        self.send_header("Cache-Control", "no-cache, no-store")
        self.send_header("task-id", task)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        body = _Body(self.rfile, length, drop)
        twin._import_progress[threading.get_ident()] = (task, 0, length)
        try:
            if url.path == "/import":
                vm = import_xva(twin, body, sr, task)  # type: ignore[arg-type]
                with twin.db.lock:
                    if twin.faults.fail_tasks > 0:
                        twin.faults.fail_tasks -= 1
                        for vbd in twin.db.refs("VBD", VM=vm):
                            methods.vdi_destroy(twin, twin.db.get("VBD", vbd)["VDI"])
                        methods.vm_destroy(twin, vm)
                        raise XapiError(*twin.faults.fail_task_error)
                result = f"<value><array><data><value>{vm}</value></data></array></value>"
            else:
                vdi = q.get("vdi", "")
                if q.get("format", "raw") != "raw":
                    raise XapiError("IMPORT_ERROR", f"format {q['format']} not supported by twin")
                import_raw(twin, body, length, vdi)  # type: ignore[arg-type]
                result = f"<value>{vdi}</value>"
        except _Drop:  # the network broke: XAPI's read hits the end of the stream
            self._fail(task_rec, XapiError("IMPORT_ERROR_PREMATURE_EOF"))
            self._abort()
            return
        except XapiError as exc:
            self._fail(task_rec, exc)
            self._abort()
            return
        except Exception as exc:
            self._fail(task_rec, XapiError("INTERNAL_ERROR", repr(exc)))
            self._abort()
            return
        finally:
            twin._import_progress.pop(threading.get_ident(), None)
        with twin.db.lock:
            if url.path == "/import" and twin.faults.lose_import_tasks > 0:
                twin.faults.lose_import_tasks -= 1
                twin.db.remove("task", task)
                return
            task_rec.update(status="success", progress=1.0, result=result)

    def _target_sr(self, path: str, q: dict[str, str]) -> str:
        """The SR the upload lands on: the query's (sr_id, sr_uuid), the VDI's, or the
        pool's default SR."""
        db = self.twin.db
        if path == "/import_raw_vdi" and q.get("vdi"):
            return str(db.get("VDI", q["vdi"])["SR"])
        sr = q.get("sr_id")
        if not sr and q.get("sr_uuid"):
            sr = db.generic("SR", "get_by_uuid", (q["sr_uuid"],))
        sr = sr or next(iter(db.objects["pool"].values()))["default_SR"]
        db.get("SR", sr)
        return str(sr)

    def _sees(self, sr: str) -> bool:
        db = self.twin.db
        with db.lock:
            if db.get("SR", sr).get("shared"):
                return True
            return bool(db.refs("PBD", SR=sr, host=self.server.host_ref, currently_attached=True))

    def _redirect(self, sr: str, path: str, query: str) -> None:
        """`Http.http_302_redirect` to a host that sees the SR: the query kept, no cookie, and
        no byte of the body read."""
        host = host_for_sr(self.twin.db, sr)
        if host is None:
            self._reply(500, b"no host can see the SR", "text/plain")
            return
        address = self.twin.db.get("host", host)["address"]
        self.send_response(302)
        self.send_header("Location", f"{self.twin.scheme}://{address}{path}?{query}")
        self.send_header("Connection", "close")
        self.send_header("Cache-Control", "no-cache, no-store")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _abort(self) -> None:
        """Stop reading and close, as XAPI does on a failed import: whatever the client still
        sends meets a reset connection."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _fail(self, task_rec: dict[str, Any], exc: XapiError) -> None:
        with self.twin.db.lock:
            task_rec.update(status="failure", error_info=exc.details, progress=1.0)
