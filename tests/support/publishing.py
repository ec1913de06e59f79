"""Test support: fake harness results and a signature-checking moto S3 server.

Lives in tests/support (not a conftest) so that unit and integration tests share it whatever
pytest's import mode; moto is imported only when a server is started.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from core.errors import InfrastructureError
from core.files import sha256_file
from core.results_file import results_schema
from core.settings import Settings
from diskformats.xva.writer import raw_to_xva
from publish.stores.local import LocalStore

FAKE_SECRET = "FAKEsecretKEY/never-in-output+0123456789"
CHECKS = ["ssh-01", "ssh-02", "hyg-01", "xen-01"]


def sparse_disk(path: Path, size: int, data: int, *, uefi: bool = True, seed: str = "") -> int:
    """A sparse raw disk like a built image: `size` bytes virtual, about `data` bytes of random
    data in 1 MiB extents spread over it, a GPT with an EFI system partition (`uefi`) or a BIOS
    boot partition. Returns the bytes of data written."""
    mib = 1 << 20
    with path.open("wb") as fh:
        fh.truncate(size)
    first = ",2MiB,U" if uefi else ",1MiB,21686148-6449-6E6F-744E-656564454649"
    subprocess.run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(path)],
        input=f"label: gpt\n{first}\n,,L\n",
        text=True,
        check=True,
        capture_output=True,
    )
    extents = max(data // mib, 1)
    stride = max((size // mib - 4) // extents, 1) * mib
    written = 0
    with path.open("r+b") as fh:
        for i in range(extents):
            offset = 4 * mib + i * stride
            if offset + mib > size - mib:
                break
            fh.seek(offset)
            fh.write(hashlib.shake_256(f"{seed}{i}".encode()).digest(mib))
            written += mib
    return written


def fake_os(
    root: Path,
    name: str,
    *,
    verdict: str = "passed",
    size: int = 4096,
    built_at: float = 1_763_900_000.0,
    version: str = "12",
    log_text: str = "packer: ok\n",
    fmt: str = "xva",
    packages: dict[str, str] | None = None,
    security: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """One OS record plus its artifact, build log and JUnit file under root.

    fmt "xva": a real, uncompressed XVA of `size` bytes of random disk data, as an XCP-ng build
    exports it; "raw": a sparse raw disk of `size` virtual bytes (a local build), 1/16 data.
    """
    art_dir = root / "artifacts" / name
    art_dir.mkdir(parents=True, exist_ok=True)
    raw = art_dir / f"{name}.raw"
    if fmt == "raw":
        sparse_disk(raw, size, size // 16, seed=name)
        artifact = raw
    else:
        data = hashlib.shake_256(f"{name}{size}".encode()).digest(size)
        raw.write_bytes(data + bytes(-size % 512))  # a disk is whole sectors
        artifact = art_dir / f"{name}.xva"
        raw_to_xva(raw, artifact, name, template=True)
        os.unlink(raw)
    log = art_dir / "build.log"
    log.write_text(log_text)
    junit_dir = root / "reports" / "junit"
    junit_dir.mkdir(parents=True, exist_ok=True)
    (junit_dir / f"{name}.xml").write_text(
        f'<testsuite name="{name}" tests="{len(CHECKS)}" failures="0"/>\n'
    )
    passed = verdict == "passed"
    inventory = write_inventory(
        art_dir / "inventory.json", sha256_file(artifact), packages or PACKAGES, security
    )
    return {
        "name": name,
        "family": "debian",
        "version": version,
        "template": f"packer/{name}",
        "var_file": None,
        "build": {
            "status": "built",
            "artifact": str(artifact),
            "artifact_format": fmt,
            "sha256": sha256_file(artifact),
            "size": artifact.stat().st_size,
            "log_path": str(log),
            "duration_s": 1.0,
            "packer_version": "1.11.2",
            "plugins": {"github.com/vatesfr/xenserver": "v0.7.3"},
            "inputs_digest": "xxh3:" + name,
            "built_at": built_at,
        },
        "checks": {
            "passed": CHECKS if passed else CHECKS[1:],
            "failed": [] if passed else CHECKS[:1],
            "skipped": [],
            "missing": [],
        },
        "expected_checks": CHECKS,
        "tests": [],
        "verdict": verdict,
        "failure_class": None if passed else "image-defect",
        "reasons": [] if passed else ["ssh-01 failed"],
        "junit": f"junit/{name}.xml",
        "validated_platform": None,
        "packages": ["openssh-server=1:9.2p1-2"],
        "security_updates": [],
        "inventory": {"path": str(inventory), "sha256": sha256_file(inventory)},
        "inputs": {
            "iso_urls": [f"https://cdimage.example.org/{name}-netinst.iso"],
            "iso_checksum": "sha256:" + "ab" * 32,
        },
    }


# A small Debian 12 image's packages: name -> version (source: the name, or libssl3's openssl)
PACKAGES = {
    "base-files": "12.4+deb12u8",
    "libssl3": "3.0.15-1~deb12u1",
    "openssh-server": "1:9.2p1-2+deb12u3",
    "linux-image-6.1.0-28-amd64": "6.1.119-1",
}
SOURCES = {"libssl3": "openssl", "openssh-server": "openssh", "linux-image-6.1.0-28-amd64": "linux"}


def inventory_doc(
    artifact_sha256: str,
    packages: dict[str, str] = PACKAGES,
    security: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """What harness/inventory.py records for an image holding `packages` (amd64 debs)."""
    from pkgdb.inventory import Inventory, Kernel, Package

    inv = Inventory(
        database="dpkg",
        os_release={
            "ID": "debian",
            "VERSION_ID": "12",
            "VERSION_CODENAME": "bookworm",
            "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
        },
        distro_version="12.8",
        packages=[
            Package(
                kind="deb",
                name=name,
                version=version,
                arch="amd64",
                source=SOURCES.get(name, name),
                source_version=version,
                licenses=("GPL-2+", "Expat") if name != "libssl3" else ("Apache-2.0",),
                security=name in security,
            )
            for name, version in sorted(packages.items())
        ],
        kernels=[Kernel("6.1.0-28-amd64", "linux-image-6.1.0-28-amd64")],
        read_at=1_763_900_100.0,
    )
    return {
        "os": "fake",
        "run_id": "fake-run",
        "artifact_sha256": artifact_sha256,
        "inventory": inv.to_json(),
    }


def rebind_inventory(rec: dict[str, Any]) -> None:
    """After a test replaced the artifact: the inventory is about the new one (as a session
    that read it would have recorded)."""
    path = Path(rec["inventory"]["path"])
    doc = json.loads(path.read_text())
    doc["artifact_sha256"] = rec["build"]["sha256"]
    path.write_text(json.dumps(doc, indent=2))
    rec["inventory"]["sha256"] = sha256_file(path)


def write_inventory(
    path: Path, artifact_sha256: str, packages: dict[str, str], security: frozenset[str]
) -> Path:
    path.write_text(json.dumps(inventory_doc(artifact_sha256, packages, security), indent=2))
    return path


def write_results(
    root: Path,
    oses: list[dict[str, Any]],
    *,
    platform: str = "xcpng",
    partial: bool = False,
    revision: str = "0123456789abcdef0123",
    committed_at: float | None = 1_763_800_000.0,
    name: str = "results.json",
    harness_version: str = "0.1.0",
) -> Path:
    """reports/<name>, validated against the harness's results schema."""
    data: dict[str, Any] = {
        "schema": "xcpng-templates/results/v1",
        "run_id": "run-" + uuid.uuid4().hex[:8],
        "started_at": "2026-11-23T10:00:00Z",
        "finished_at": "2026-11-23T11:00:00Z",
        "harness_version": harness_version,
        "git": {"revision": revision, "dirty": False},
        "platform": platform,
        "partial": partial,
        "partial_reasons": ["-k ssh"] if partial else [],
        "selected_os": [o["name"] for o in oses],
        "os": {o["name"]: o for o in oses},
    }
    if committed_at is not None:
        data["git"]["committed_at"] = committed_at
    jsonschema.Draft202012Validator(results_schema()).validate(data)
    path = root / "reports" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


@dataclass
class MotoS3:
    """A moto S3 server over real HTTP that checks SigV4 signatures against one IAM key."""

    endpoint: str
    key_id: str
    secret: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "S3_ENDPOINT_URL": self.endpoint,
            "S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        env.update(extra)
        return env

    def settings(self, **extra: str) -> Settings:
        return Settings.from_env(env=self.env(**extra))

    def client(self, secret: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.key_id,
            aws_secret_access_key=secret or self.secret,
            config=Config(s3={"addressing_style": "path"}),
        )

    def bucket(self) -> str:
        name = "pub-" + uuid.uuid4().hex[:12]
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def moto_s3() -> Iterator[MotoS3]:
    """Start ThreadedMotoServer, create an IAM user and key, then switch authentication on
    (POST /moto-api/reset-auth 0): every later request must carry a valid SigV4 signature of
    that key, or moto answers SignatureDoesNotMatch / InvalidAccessKeyId."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        user = "publisher-" + uuid.uuid4().hex[:6]
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}],
        }
        iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
        _reset_auth(endpoint, "0")
        yield MotoS3(endpoint=endpoint, key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    finally:
        _reset_auth(endpoint, "inf")
        server.stop()


def _reset_auth(endpoint: str, count: str) -> None:
    url = f"{endpoint}/moto-api/reset-auth"  # http://127.0.0.1 only
    req = urllib.request.Request(url, data=count.encode(), headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


class Faulty(LocalStore):
    """Raises once a chosen operation reaches a chosen key: a crash at an upload boundary."""

    def __init__(self, root: Path, method: str, key_part: str):
        super().__init__(root)
        self.method, self.key_part = method, key_part

    def _maybe_fail(self, method: str, key: str) -> None:
        if method == self.method and self.key_part in key:
            raise InfrastructureError(f"injected fault at {method} {key}")

    def put_stream(self, key: str, *a: Any, **kw: Any) -> Any:
        self._maybe_fail("put_stream", key)
        return super().put_stream(key, *a, **kw)

    def put_bytes(self, key: str, *a: Any) -> None:
        self._maybe_fail("put_bytes", key)
        super().put_bytes(key, *a)

    def put_if(self, key: str, *a: Any) -> bool:
        self._maybe_fail("put_if", key)
        return super().put_if(key, *a)
