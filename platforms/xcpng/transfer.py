"""Disk uploads over XAPI's HTTP handlers: `PUT /import` (an XVA) and `PUT /import_raw_vdi`.

The file streams from disk with a Content-Length (XAPI refuses chunked encoding) in 1 MiB
pieces, so memory stays flat; progress is logged every 10 %. The session id travels in the
query string, which is why no URL built here is ever logged.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import XenAPI

from platforms.xcpng.client import SessionRejected, UploadInterrupted, Xapi

log = logging.getLogger("platforms.xcpng")
PIECE = 1 << 20
REF = re.compile(r"OpaqueRef:[0-9a-fA-F-]+")


def _connection(xapi: Xapi, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(xapi.url)
    host = parts.hostname or ""
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            host, parts.port or 443, timeout=timeout, context=xapi.ssl_context
        )
    return http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)


def put_file(
    xapi: Xapi,
    handler: str,
    query: dict[str, str],
    src: Path,
    *,
    label: str,
    timeout: float = 300,
) -> None:
    """Send `src` as the body of `PUT handler?query`; raise on a refused or broken upload."""
    size = src.stat().st_size
    target = f"{handler}?{urlencode({'session_id': xapi.handle, **query})}"
    conn = _connection(xapi, timeout)
    sent, next_mark, start = 0, 0.1, time.monotonic()
    try:
        conn.putrequest("PUT", target, skip_accept_encoding=True)
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(size))
        conn.putheader("Connection", "close")
        conn.endheaders()
        with src.open("rb") as fh:
            while piece := fh.read(PIECE):
                conn.send(piece)
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
        resp = conn.getresponse()
        resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise UploadInterrupted(
            f"{label}: connection lost after {sent} of {size} bytes ({type(exc).__name__})"
        ) from None
    finally:
        conn.close()
    if resp.status in (401, 403):
        raise SessionRejected(f"{label}: the pool refused the session (HTTP {resp.status})")
    if resp.status >= 400 and resp.status not in (500,):
        raise UploadInterrupted(f"{label}: HTTP {resp.status} {resp.reason}")
    # 200, or 500 with the reason recorded on the task: the task tells the outcome


def wait_task(xapi: Xapi, task: str, label: str, timeout: float = 600) -> str:
    """Wait for `task` to finish; return its result, raise XenAPI.Failure with its error_info."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        status = str(xapi.call("task.get_status", task)).lower()
        if status == "success":
            return str(xapi.call("task.get_result", task))
        if status in ("failure", "cancelled"):
            info: list[Any] = xapi.call("task.get_error_info", task) or ["TASK_CANCELLED", task]
            raise XenAPI.Failure([str(i) for i in info])
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: the pool's task did not finish within {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def result_ref(result: str) -> str:
    """The first `OpaqueRef:` of a task result (`<value><array>...`), as Xen Orchestra does."""
    m = REF.search(result)
    if not m:
        raise XenAPI.Failure(["IMPORT_ERROR", "the import task returned no VM reference"])
    return m.group(0)
