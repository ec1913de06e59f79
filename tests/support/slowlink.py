"""A slow network link for tests: a TCP forwarder on 127.0.0.1 that passes uploads on at a
set rate (downloads at full speed), so an S3 upload through it lasts long enough to be
interrupted. It only moves bytes: signing, retries and aborts are the real client's and the
real server's business.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator


class SlowLink:
    def __init__(self, target: tuple[str, int], upload_rate: float) -> None:
        self.target, self.rate = target, upload_rate
        self.uploaded = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        self.lock = threading.Lock()
        self.closed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SlowLink:
        threading.Thread(target=self._accept, name="slowlink-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        self.closed = True
        for s in list(self.sockets):
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target)
            except OSError:
                return
            self.sockets += [client, server]
            for src, dst, slow in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, slow), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(16384 if slow else 65536):
                if slow:
                    with self.lock:
                        self.uploaded += len(data)
                    time.sleep(len(data) / self.rate)
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def slow_link(target: tuple[str, int], upload_rate: float) -> Iterator[SlowLink]:
    link = SlowLink(target, upload_rate).start()
    try:
        yield link
    finally:
        link.stop()
