"""Disk uploads over XAPI's HTTP handlers: `PUT /import` (an XVA) and `PUT /import_raw_vdi`.

The body (a file, or any `Body`, e.g. a stream from a store) goes out with a Content-Length
(XAPI refuses chunked encoding) in 1 MiB pieces, so memory stays flat; progress is logged
every 10 %. The session id travels in the query string, which is why no URL built here is
ever logged.

How XAPI answers (xen-api `import.ml` `handler`, `import_raw_vdi.ml`), and what follows here:
- an SR the receiving host cannot see: `302 Found` to a host that can, before any byte of the
  body is read, then the connection closes. The upload starts again from byte 0 at the
  `Location`, which must be a host of this pool and keep the scheme (the query carries the
  session id);
- otherwise `200 OK` with the task id *before* the body is read, then the import streams. On a
  bad body it stops reading and closes: the client sees a broken pipe while the reason is on
  the task. So the response is read as soon as it arrives, and after a broken upload the task
  decides: a transfer fault (`IMPORT_ERROR_PREMATURE_EOF`, nothing answered at all) is retried
  as `UploadInterrupted`; anything else (the XVA refused) is raised as the task's own failure.
"""

from __future__ import annotations

import http.client
import logging
import re
import select
import socket
import ssl
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import XenAPI

from core.waiting import WaitTimeout, wait_for
from platforms.xcpng.client import SessionRejected, UploadInterrupted, Xapi, describe, failure_code
from platforms.xcpng.tls import CertificateMismatch

log = logging.getLogger("platforms.xcpng")
PIECE = 1 << 20
REF = re.compile(r"OpaqueRef:[0-9a-fA-F-]+")
MAX_REDIRECTS = 2
# Task errors that mean the bytes did not all arrive, not that the pool refused them.
TRANSFER_CODES = frozenset({"IMPORT_ERROR_PREMATURE_EOF"})
SETTLE = 10.0  # seconds a task gets to record why the pool stopped reading


class Stream(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Body(Protocol):
    """What an upload sends: its size up front (XAPI refuses chunked encoding) and its bytes
    from the first, opened afresh for every attempt (a redirect or a retry starts over)."""

    @property
    def size(self) -> int: ...

    def open(self) -> AbstractContextManager[Stream]: ...


@dataclass(frozen=True)
class FileBody:
    path: Path

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def open(self) -> AbstractContextManager[Stream]:
        return self.path.open("rb")


def as_body(src: Path | Body) -> Body:
    return FileBody(src) if isinstance(src, Path) else src


@dataclass
class _Answer:
    status: int
    reason: str
    location: str | None
    broken: bool  # the connection broke before the whole body was sent


def _connection(base: str, xapi: Xapi, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(base)
    return xapi.connection(parts.hostname or "", parts.port, timeout)


def _answered(sock: socket.socket) -> bool:
    """Has the server sent something (its response) while we are still sending?"""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _read_head(sock: socket.socket) -> http.client.HTTPResponse:
    resp = http.client.HTTPResponse(sock, method="PUT")
    resp.begin()
    return resp


def _send(base: str, xapi: Xapi, target: str, src: Body, *, label: str, timeout: float) -> _Answer:
    """One PUT of the whole body to `base`, reading the response as soon as it comes."""
    size = src.size
    conn = _connection(base, xapi, timeout)
    sent, next_mark, start = 0, 0.1, time.monotonic()
    resp: http.client.HTTPResponse | None = None
    broken = False
    try:
        try:
            conn.putrequest("PUT", target, skip_accept_encoding=True)
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Content-Length", str(size))
            conn.putheader("Connection", "close")
            conn.endheaders()
        except CertificateMismatch:
            raise  # never retried: the session id must not go to that peer
        except (OSError, http.client.HTTPException) as exc:
            raise UploadInterrupted(
                f"{label}: cannot reach {urlsplit(base).hostname} ({type(exc).__name__})"
            ) from None
        sock = conn.sock
        assert sock is not None
        with src.open() as fh:
            while piece := fh.read(PIECE):
                if resp is None and _answered(sock):
                    resp = _read_head(sock)
                    if resp.status != 200:
                        break  # a redirect or a refusal: the rest would be read by nobody
                try:
                    sock.sendall(piece)
                except OSError:
                    broken = True
                    break
                sent += len(piece)
                if size and sent / size >= next_mark:
                    rate = sent / max(time.monotonic() - start, 1e-6) / PIECE
                    log.info(
                        "%s: %d%% (%d of %d MiB, %.0f MiB/s)",
                        label,
                        int(100 * sent / size),
                        sent // PIECE,
                        size // PIECE,
                        rate,
                    )
                    next_mark += 0.1
        if resp is None:
            resp = _read_head(sock)
        return _Answer(resp.status, resp.reason, resp.getheader("Location"), broken)
    except CertificateMismatch:
        raise
    except (OSError, http.client.HTTPException) as exc:
        raise UploadInterrupted(
            f"{label}: connection lost after {sent} of {size} bytes ({type(exc).__name__})"
        ) from None
    finally:
        if resp is not None:
            resp.close()
        conn.close()


def _follow(xapi: Xapi, base: str, location: str | None, label: str) -> str:
    """The base URL to send to again: the redirect's host, which must be one of the pool's."""
    parts = urlsplit(location or "")
    if not parts.hostname:
        raise UploadInterrupted(f"{label}: the pool redirected the upload without a Location")
    if (urlsplit(base).scheme, parts.scheme) != ("http", "https") and parts.scheme != urlsplit(
        base
    ).scheme:
        raise UploadInterrupted(
            f"{label}: the pool redirected the upload from {urlsplit(base).scheme} to "
            f"{parts.scheme}; refusing to send the session there"
        )
    records: dict[str, Any] = xapi.call("host.get_all_records")
    addresses = {str(r.get("address", "")) for r in records.values()}
    if parts.netloc not in addresses and parts.hostname not in addresses:
        raise UploadInterrupted(
            f"{label}: the pool redirected the upload to {parts.hostname}, which is not one of "
            f"its hosts ({', '.join(sorted(addresses))})"
        )
    log.info("%s: the SR is on host %s; sending the upload there", label, parts.hostname)
    return f"{parts.scheme}://{parts.netloc}"


def put_file(
    xapi: Xapi,
    handler: str,
    query: dict[str, str],
    src: Path | Body,
    *,
    label: str,
    timeout: float = 300,
) -> None:
    """Send `src` as the body of `PUT handler?query`, following the pool's redirect to the host
    that sees the SR. Returns when the pool accepted the upload (its task tells the outcome,
    also when it stopped reading before the end); raises when nothing usable was answered."""
    base = xapi.url
    target = f"{handler}?{urlencode({'session_id': xapi.handle, **query})}"
    for _ in range(MAX_REDIRECTS + 1):
        answer = _send(base, xapi, target, as_body(src), label=label, timeout=timeout)
        if answer.status in (301, 302, 303, 307, 308):
            base = _follow(xapi, base, answer.location, label)
            continue
        if answer.status in (401, 403):
            raise SessionRejected(f"{label}: the pool refused the session (HTTP {answer.status})")
        if answer.status >= 400 and answer.status != 500:
            raise UploadInterrupted(f"{label}: HTTP {answer.status} {answer.reason}")
        # 200, or 500 with the reason recorded on the task: the task tells the outcome
        if answer.broken:
            log.warning("%s: the pool stopped reading before the end; its task says why", label)
        return
    raise UploadInterrupted(f"{label}: more than {MAX_REDIRECTS} redirects; check the pool's hosts")


def task_error(xapi: Xapi, task: str, settle: float = SETTLE) -> list[str] | None:
    """The task's error once it has one (waiting up to `settle` seconds), else None."""

    def settled() -> str | None:
        status = str(xapi.call("task.get_status", task)).lower()
        return status if status in ("success", "failure", "cancelled") else None

    try:
        status = wait_for(settled, what=f"task {task} to settle", timeout=settle, interval=0.2)
    except WaitTimeout:
        return None
    if status == "success":
        return None
    info = xapi.call("task.get_error_info", task) or ["TASK_CANCELLED", task]
    return [str(i) for i in info]


def upload(
    xapi: Xapi,
    handler: str,
    query: dict[str, str],
    src: Path | Body,
    task: str,
    *,
    label: str,
    timeout: float = 300,
    task_timeout: float = 600,
) -> str:
    """Upload `src` under `task` and wait for it; return the task's result.

    A transfer fault raises UploadInterrupted (the caller retries the whole upload); a refusal
    by the pool raises XenAPI.Failure carrying the task's error (an `IMPORT_ERROR_*` is the
    image's fault)."""
    try:
        put_file(xapi, handler, {**query, "task_id": task}, src, label=label, timeout=timeout)
    except UploadInterrupted:
        info = task_error(xapi, task, settle=2.0)
        if info and info[0] not in TRANSFER_CODES:
            raise XenAPI.Failure(info) from None
        raise
    try:
        return wait_task(xapi, task, label, task_timeout)
    except XenAPI.Failure as exc:
        if failure_code(exc) in TRANSFER_CODES:
            raise UploadInterrupted(
                f"{label}: connection lost; the pool saw the upload end early ({describe(exc)})"
            ) from None
        raise


def wait_task(xapi: Xapi, task: str, label: str, timeout: float = 600) -> str:
    """Wait for `task` to finish; return its result, raise XenAPI.Failure with its error_info."""

    def finished() -> str | None:
        status = str(xapi.call("task.get_status", task)).lower()
        if status == "success":
            return str(xapi.call("task.get_result", task))
        if status in ("failure", "cancelled"):
            info: list[Any] = xapi.call("task.get_error_info", task) or ["TASK_CANCELLED", task]
            raise XenAPI.Failure([str(i) for i in info])
        return None

    try:
        return wait_for(
            finished,
            what=f"{label}'s task",
            timeout=timeout,
            interval=0.05,
            backoff=2,
            max_interval=2.0,
        )
    except WaitTimeout:
        raise TimeoutError(
            f"{label}: the pool's task did not finish within {timeout:.0f}s"
        ) from None


def result_ref(result: str) -> str:
    """The first `OpaqueRef:` of a task result (`<value><array>...`), as Xen Orchestra does."""
    m = REF.search(result)
    if not m:
        raise XenAPI.Failure(["IMPORT_ERROR", "the import task returned no VM reference"])
    return m.group(0)
