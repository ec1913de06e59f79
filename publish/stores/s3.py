"""S3 or any S3-compatible store, through boto3's transfer manager.

Integrity: the artifact goes up multipart with per-part CRC32 when the store takes request
checksums (`when_supported`), never a precomputed SHA-256 (s3transfer would declare it a
FULL_OBJECT checksum, which AWS refuses for SHA algorithms on multipart uploads). Afterwards the
object is checked against local digests: the CRC32 the store reports, else the ETag (MD5 of
part MD5s), else a streamed read-back hashed with sha256.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from s3transfer.manager import TransferConfig, TransferManager
from s3transfer.subscribers import BaseSubscriber
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from core.errors import InfrastructureError, UsageError
from core.settings import S3Config
from publish.digests import BLOCK, FileDigests
from publish.stores.base import IntegrityError, Log, ObjectInfo
from publish.stores.s3errors import code_of, explain, is_transient

T = TypeVar("T")
MIN_PART = 5 << 20
# CompleteMultipartUpload of a multi-GiB object can take minutes on some stores (moto: ~1 min
# per GiB); botocore's 60 s default would time out and retry an already completing upload.
READ_TIMEOUT = 300
NOT_SUPPORTED = {"NotImplemented", "501", "InvalidArgument", "InvalidRequest"}


def parse_s3_url(url: str) -> tuple[str, str]:
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket or not (3 <= len(bucket) <= 63) or bucket != bucket.lower():
        raise UsageError(
            f"{url!r} is not a valid S3 destination: write s3://bucket/prefix "
            "(bucket: 3-63 lower-case characters)"
        )
    return bucket, prefix.strip("/")


class _Progress(BaseSubscriber):
    """Logs every 10 % of one file's upload (s3transfer calls it from worker threads)."""

    def __init__(self, name: str, size: int, log: Log):
        self.name, self.size, self.log = name, max(size, 1), log
        self.done = 0
        self.lock = threading.Lock()

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        with self.lock:
            before = self.done * 10 // self.size
            self.done += bytes_transferred
            if self.done * 10 // self.size > before:
                self.log(f"  {self.name}: {min(self.done * 100 // self.size, 100)}%")


def _client(cfg: S3Config) -> tuple[Any, bool]:
    """The boto3 client every setting of the table shapes; and whether credentials exist."""
    if bool(cfg.access_key_id) != bool(cfg.secret_access_key):
        have, lack = (
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            if cfg.access_key_id
            else ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
        )
        raise UsageError(f"{have} is set but {lack} is not: set both, or neither to use a profile")
    verify: bool | str = cfg.tls_verify
    if cfg.ca_bundle and verify:
        verify = str(cfg.ca_bundle)
    config = Config(
        region_name=cfg.region,
        signature_version=cfg.signature_version,
        s3={"addressing_style": cfg.addressing_style},  # type: ignore[arg-type]
        request_checksum_calculation=cfg.checksum_mode,
        response_checksum_validation=cfg.checksum_mode,
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=10,
        read_timeout=READ_TIMEOUT,
        max_pool_connections=max(10, cfg.max_concurrency + 2),
        user_agent_extra="xcpng-templates-publish",
    )
    session = boto3.session.Session(
        aws_access_key_id=cfg.access_key_id,
        aws_secret_access_key=cfg.secret_access_key,
        aws_session_token=cfg.session_token,
        region_name=cfg.region,
    )
    client = session.client("s3", endpoint_url=cfg.endpoint_url, config=config, verify=verify)
    return client, session.get_credentials() is not None


class S3Store:
    def __init__(self, url: str, cfg: S3Config):
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self.endpoint = cfg.endpoint_url
        self.key_id = cfg.access_key_id or ""
        self.wants_crc = cfg.checksum_mode == "when_supported"
        self.wants_md5 = not self.wants_crc
        self.chunksize = max(cfg.multipart_chunksize, MIN_PART)
        self.threshold = self.chunksize
        self.concurrency = cfg.max_concurrency
        # objects are private by default; sending "private" would fail on buckets with ACLs off
        self.acl = None if cfg.acl in ("private", "none") else cfg.acl
        self.retry_wait: wait_base = wait_exponential_jitter(initial=1, max=20)
        self.retry_attempts = 4
        self.conditional_writes = True
        self.client, self.has_credentials = _client(cfg)
        self.endpoint_label = self.endpoint or f"AWS S3 ({cfg.region})"

    # -- plumbing -------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _explain(self, err: BaseException) -> str:
        return explain(err, self.bucket, self.prefix, self.endpoint_label, self.key_id)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run fn with tenacity retries on transient faults; anything else is one clear line."""
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.retry_attempts) | stop_after_delay(600),
            wait=self.retry_wait,
            reraise=True,
        )
        try:
            return retrying(fn)
        except (BotoCoreError, ClientError) as e:
            raise InfrastructureError(f"{what}: {self._explain(e)}") from None

    # -- objects --------------------------------------------------------------------------

    def put_file(self, key: str, path: Path, digests: FileDigests, log: Log) -> None:
        extra: dict[str, Any] = {
            "Metadata": {"sha256": digests.sha256},
            "ContentType": "application/octet-stream",
        }
        if self.wants_crc:
            extra["ChecksumAlgorithm"] = "CRC32"  # per part; composite on multipart: AWS-valid
        if self.acl:
            extra["ACL"] = self.acl
        config = TransferConfig(
            multipart_threshold=self.threshold,
            multipart_chunksize=self.chunksize,
            max_request_concurrency=self.concurrency,
        )

        def upload() -> None:
            with TransferManager(self.client, config) as tm:
                future = tm.upload(
                    str(path),
                    self.bucket,
                    self._key(key),
                    extra_args=extra,
                    subscribers=[_Progress(path.name, digests.size, log)],
                )
                future.result()

        if digests.size >= self.threshold:
            self._abort_unfinished(key, log)
        self._call(f"uploading {path.name} to {self.describe(key)}", upload)
        self.verify_file(key, digests)

    def _abort_unfinished(self, key: str, log: Log) -> None:
        """Multipart uploads of this very key that a killed publish left (billed, invisible):
        this upload replaces them. Needs s3:ListBucketMultipartUploads; without it, a note."""
        full = self._key(key)
        try:
            found = self._call(
                f"listing unfinished uploads of {self.describe(key)}",
                lambda: self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=full),
            )
        except InfrastructureError as e:
            log(f"  could not look for unfinished uploads of {self.describe(key)}: {e}")
            return
        for upload_id in [u["UploadId"] for u in found.get("Uploads", []) if u["Key"] == full]:

            def abort(upload_id: str = upload_id) -> None:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)

            self._call(f"aborting an unfinished upload of {self.describe(key)}", abort)
            log(f"  aborted an unfinished upload of {self.describe(key)} (a killed publish)")

    def verify_file(self, key: str, digests: FileDigests) -> None:
        head = self._call(
            f"checking {self.describe(key)}",
            lambda: self.client.head_object(
                Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED"
            ),
        )
        if head["ContentLength"] != digests.size:
            raise IntegrityError(
                f"{self.describe(key)} is {head['ContentLength']} bytes, expected {digests.size}"
            )
        crc = str(head.get("ChecksumCRC32") or "").split("-")[0]
        want_crc = digests.expected_crc32()
        if crc and want_crc:
            if crc != want_crc:
                raise IntegrityError(f"{self.describe(key)}: CRC32 {crc} != local {want_crc}")
            return
        etag = str(head.get("ETag", "")).strip('"')
        if etag and etag == digests.expected_etag():
            return
        # no checksum, and an ETag that is not an MD5 (SSE-KMS, some stores): read it back
        got = self._call(f"reading back {self.describe(key)}", lambda: self._sha256_of(key))
        if got != digests.sha256:
            raise IntegrityError(f"{self.describe(key)}: sha256 {got} != local {digests.sha256}")

    def _sha256_of(self, key: str) -> str:
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        h = hashlib.sha256()
        for block in body.iter_chunks(BLOCK):
            h.update(block)
        return h.hexdigest()

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "Body": data,
            "ContentType": content_type,
            "ContentMD5": base64.b64encode(
                hashlib.md5(data, usedforsecurity=False).digest()
            ).decode(),
            "Metadata": {"sha256": hashlib.sha256(data).hexdigest()},
        }
        if self.acl:
            args["ACL"] = self.acl
        self._call(f"writing {self.describe(key)}", lambda: self.client.put_object(**args))
        if self.get_bytes(key) != data:
            raise IntegrityError(f"{self.describe(key)} reads back different from what was written")

    def get_bytes(self, key: str) -> bytes | None:
        got = self.get_with_token(key)
        return None if got is None else got[0]

    def get_with_token(self, key: str) -> tuple[bytes, str] | None:
        def get() -> tuple[bytes, str] | None:
            try:
                r = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as e:
                if code_of(e) in ("NoSuchKey", "404"):
                    return None
                raise
            return r["Body"].read(), str(r["ETag"])

        return self._call(f"reading {self.describe(key)}", get)

    def head(self, key: str) -> ObjectInfo | None:
        def head() -> ObjectInfo | None:
            try:
                r = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as e:
                if code_of(e) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
            return ObjectInfo(
                key=key,
                size=int(r["ContentLength"]),
                token=str(r["ETag"]),
                sha256=r.get("Metadata", {}).get("sha256"),
            )

        return self._call(f"checking {self.describe(key)}", head)

    def put_if(self, key: str, data: bytes, token: str | None) -> bool:
        """Conditional PUT (If-Match / If-None-Match); plain PUT on stores that lack it."""
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "Body": data,
            "ContentType": "application/json",
            "ContentMD5": base64.b64encode(
                hashlib.md5(data, usedforsecurity=False).digest()
            ).decode(),
        }
        if self.acl:
            args["ACL"] = self.acl
        if self.conditional_writes:
            if token is None:
                args["IfNoneMatch"] = "*"
            else:
                args["IfMatch"] = token

        def put() -> bool:
            try:
                self.client.put_object(**args)
            except ClientError as e:
                code = code_of(e)
                if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                    return False
                if code in NOT_SUPPORTED and self.conditional_writes:
                    self.conditional_writes = False
                    args.pop("IfMatch", None)
                    args.pop("IfNoneMatch", None)
                    self.client.put_object(**args)
                    return True
                raise
            return True

        return self._call(f"writing {self.describe(key)}", put)

    def list_keys(self, prefix: str) -> list[ObjectInfo]:
        def listing() -> list[ObjectInfo]:
            out = []
            full = (
                self._key(prefix).rstrip("/") + "/"
                if prefix
                else (self.prefix + "/" if self.prefix else "")
            )
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            ):
                for o in page.get("Contents", []):
                    key = o["Key"][len(self.prefix) + 1 :] if self.prefix else o["Key"]
                    out.append(ObjectInfo(key=key, size=int(o["Size"]), token=str(o["ETag"])))
            return out

        return self._call(f"listing {self.describe(prefix)}", listing)

    def list_dirs(self, prefix: str) -> list[str]:
        def listing() -> list[str]:
            full = (
                self._key(prefix).rstrip("/") + "/"
                if prefix
                else (self.prefix + "/" if self.prefix else "")
            )
            names = []
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full, Delimiter="/"
            ):
                for p in page.get("CommonPrefixes", []):
                    names.append(p["Prefix"][len(full) :].rstrip("/"))
            return sorted(names)

        return self._call(f"listing {self.describe(prefix)}", listing)

    def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": self._key(k)} for k in keys[i : i + 1000]]

            def remove(batch: list[dict[str, str]] = batch) -> None:
                r = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": batch, "Quiet": True},
                )
                if r.get("Errors"):
                    first = r["Errors"][0]
                    raise InfrastructureError(
                        f"deleting {first.get('Key')} failed: "
                        f"{first.get('Code')} {first.get('Message')}"
                    )

            self._call(f"deleting under {self.describe('')}", remove)

    def last_modified(self, key: str) -> float | None:
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError:
            return None
        return float(r["LastModified"].timestamp())

    def sha256(self, key: str) -> str | None:
        if self.head(key) is None:
            return None
        return self._call(f"reading {self.describe(key)}", lambda: self._sha256_of(key))

    def probe(self) -> list[str]:
        """Write then delete a probe object, without long retries: answer within a minute."""
        key = self._key(f".preflight-{uuid.uuid4().hex}")
        try:
            if not self.has_credentials:
                raise NoCredentialsError()
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"preflight probe")
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as e:
            return [f"publish preflight: {self._explain(e)}"]
        return []
