"""Helpers for tests that run the XCP-ng platform against the twin: an SSH-banner endpoint for
the guest to "be", settings pointing at the twin, a small XVA and its BuildResult."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import XenAPI

from core.model import BuildResult, TemplateSpec
from core.settings import Settings
from core.waiting import wait_for
from diskformats.xva.writer import raw_to_xva
from tests.twins.xapi.server import XapiTwin

NETWORK = "Pool-wide network associated with eth0"
BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


@contextlib.contextmanager
def ssh_banner_endpoint() -> Iterator[tuple[str, int]]:
    """A TCP listener on 127.0.0.1 that greets like sshd (enough for the platform's SSH wait)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(BANNER)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[:2]
    finally:
        stop.set()
        srv.close()


@contextlib.contextmanager
def xapi_session(twin: XapiTwin) -> Iterator[Any]:
    """The unmodified XenAPI client, logged in to the twin."""
    s = XenAPI.Session(twin.url)
    s.xenapi.login_with_password(twin.username, twin.password, "2.21", "test")
    try:
        yield s
    finally:
        s.xenapi.logout()
        s("close")()  # the transport keeps its connection open otherwise


def finished(session: Any, task: str, timeout: float = 10) -> str:
    """The task's status once it is no longer pending (XAPI answers 200 before importing)."""

    def settled() -> str | None:
        status = str(session.xenapi.task.get_status(task))
        return None if status == "pending" else status

    return wait_for(settled, what=f"import task {task}", timeout=timeout, interval=0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def twin_env(twin: XapiTwin, artifacts: Path, **extra: str) -> dict[str, str]:
    """The environment a harness run (or the cleanup command) would have against the twin."""
    return {
        "XCPNG_URL": twin.url,
        "XCPNG_USERNAME": twin.username,
        "XCPNG_PASSWORD": twin.password,
        "XCPNG_NETWORK": NETWORK,
        "TEMPLATE_ARTIFACTS_DIR": str(artifacts),
        **extra,
    }


def twin_settings(twin: XapiTwin, artifacts: Path, **overrides: Any) -> Settings:
    """Settings as a run against the twin has them (secrets come from the env, as in real use)."""
    values = {"boot_timeout": "10s", **overrides}
    return Settings.from_env(env=twin_env(twin, artifacts), **values)


def small_xva(path: Path, name: str = "debian12", template: bool = True) -> Path:
    """A 6 MiB disk with data at both ends, as an XVA (a template, like Packer's exports)."""
    raw = path.with_suffix(".raw")
    with raw.open("wb") as fh:
        fh.write(os.urandom(1 << 20))
        fh.truncate(6 << 20)
        fh.seek((5 << 20) + 100)
        fh.write(b"the end")
    raw_to_xva(raw, path, name, template=template)
    raw.unlink()
    return path


def tar_members(xva: Path) -> list[tuple[str, bytes]]:
    """Every member of an XVA, in order, with its data."""
    with tarfile.open(xva) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """A tar stream of `members`, in that order (to make XVAs the writer would not)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def spec(name: str = "debian12") -> TemplateSpec:
    return TemplateSpec(name=name, family="debian", version="12", templates={})


def build_of(artifact: Path, fmt: str = "xva", name: str = "debian12") -> BuildResult:
    return BuildResult(
        os_name=name,
        status="provided",
        artifact=str(artifact),
        artifact_format=fmt,
        sha256=None,
        size=artifact.stat().st_size,
        log_path=None,
        duration_s=0.0,
        packer_version=None,
        plugins={},
        inputs_digest=None,
        template=None,
        var_file=None,
        built_at=None,
        platform="xcpng",
    )


def self_signed(
    dirpath: Path,
    *,
    cn: str = "127.0.0.1",
    san: str = "IP:127.0.0.1",
    name: str = "twin",
) -> tuple[Path, Path]:
    """A certificate (CN `cn`, subject alternative names `san`) and its key, made with
    openssl; the default is valid for 127.0.0.1 (an IP SAN, as XCP-ng 8.3's gencert writes)."""
    cert, key = dirpath / f"{name}.crt", dirpath / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={cn}",
            "-addext",
            f"subjectAltName={san}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def xcpng82_certificate(
    dirpath: Path, ip: str = "127.0.0.1", hostname: str = "xcp-twin", name: str = "xapi-ssl"
) -> tuple[Path, Path]:
    """The certificate XCP-ng 8.2 generates for itself (xapi 1.249 `gencert` and
    `scripts/generate_ssl_cert`): the CN is the management IP when the hostname has no dot, and
    the subject alternative names hold DNS names only (`hostname -A`, `hostname -f`), never the
    IP. Python refuses it for https://<IP> even when it is the CA bundle itself."""
    return self_signed(dirpath, cn=ip, san=f"DNS:{hostname},DNS:{hostname}.localdomain", name=name)
