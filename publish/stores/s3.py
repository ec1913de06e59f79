"""S3 or any S3-compatible store, through boto3's managed transfer (`upload_fileobj`).

Retries: botocore's `standard` mode retries every request (each part on its own, from the copy
s3transfer keeps in memory), so a failed part never restarts the file and a failed transfer is
not re-run. tenacity retries only what botocore cannot: reading a response body that breaks
mid-stream (a read-back for `verify --deep`, a small object).

Integrity: the artifact goes up from a `DigestingReader` that computes its sha256 in the same
pass, and the store checks every part on receipt. With request checksums (`when_supported`, the
`auto` default on AWS) each part carries a CRC32 the store verifies and keeps; without them
(`when_required`, the `auto` default on any other endpoint, whose S3 dialect may not read
botocore's checksum encoding) botocore signs each request's payload (SigV4
`x-amz-content-sha256`, over HTTP and HTTPS alike when no checksum header is sent), which the
store verifies against the body. A precomputed SHA-256 is never sent (s3transfer would declare
it a FULL_OBJECT checksum, which AWS refuses for SHA algorithms on multipart uploads). The
object's size and part count are checked last.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter
from tenacity.wait import wait_base

from core.destination import Destination, as_destination
from core.errors import InfrastructureError, UsageError
from core.files import BLOCK
from core.settings import S3Config
from publish.stores.base import IntegrityError, Log, ObjectInfo, Reader
from publish.stores.s3errors import code_of, explain
from publish.upload_digests import MIN_PART, DigestingReader, FileDigests

T = TypeVar("T")
# CompleteMultipartUpload of a multi-GiB object can take minutes on some stores (moto: ~1 min
# per GiB); botocore's 60 s default would time out and retry an already completing upload.
READ_TIMEOUT = 300
REQUEST_ATTEMPTS = 5  # botocore standard mode: the first try and four retries, per request
NOT_SUPPORTED = {"NotImplemented", "501", "InvalidArgument", "InvalidRequest"}
# A response body that breaks after botocore returned it: botocore does not retry these.
BODY_ERRORS = (ResponseStreamingError, ReadTimeoutError, ConnectionClosedError)


def checksum_mode(cfg: S3Config) -> Literal["when_supported", "when_required"]:
    """`auto`: botocore's own default on AWS, where CRC32 checksums are stored with the object;
    the pre-2025 behaviour on any other endpoint (see "The SignatureDoesNotMatch trap")."""
    if cfg.checksum_mode != "auto":
        return cfg.checksum_mode
    host = (urlsplit(cfg.endpoint_url).hostname or "") if cfg.endpoint_url else "amazonaws.com"
    aws = any(host == d or host.endswith("." + d) for d in ("amazonaws.com", "amazonaws.com.cn"))
    return "when_supported" if aws else "when_required"


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
    checksums = checksum_mode(cfg)
    if cfg.ca_bundle and verify:
        verify = str(cfg.ca_bundle)
    config = Config(
        region_name=cfg.region,
        signature_version=cfg.signature_version,
        s3={"addressing_style": cfg.addressing_style},  # type: ignore[arg-type]
        request_checksum_calculation=checksums,
        response_checksum_validation=checksums,
        retries={"mode": "standard", "total_max_attempts": REQUEST_ATTEMPTS},
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
    def __init__(self, to: Destination | str, cfg: S3Config):
        dest = as_destination(to, "--to")
        if not dest.is_s3 or dest.bucket is None:
            raise UsageError(f"{dest.url!r} is not an S3 destination: write s3://bucket/prefix")
        self.url = dest.url
        self.bucket, self.prefix = dest.bucket, dest.prefix
        self.endpoint = cfg.endpoint_url
        self.key_id = cfg.access_key_id or ""
        self.wants_crc = checksum_mode(cfg) == "when_supported"
        self.chunksize = max(cfg.multipart_chunksize, MIN_PART)
        self.threshold = self.chunksize
        self.concurrency = cfg.max_concurrency
        # objects are private by default; sending "private" would fail on buckets with ACLs off
        self.acl = None if cfg.acl in ("private", "none") else cfg.acl
        self.retry_wait: wait_base = wait_exponential_jitter(initial=1, max=20)
        self.body_attempts = 4
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
        """Run fn (botocore retries its requests); any failure is one clear line."""
        try:
            return fn()
        except (BotoCoreError, ClientError) as e:
            raise InfrastructureError(f"{what}: {self._explain(e)}") from None

    def _read_body(self, what: str, fn: Callable[[], T]) -> T:
        """Run fn, which reads a response body: tenacity retries a body that broke mid-stream."""
        retrying = Retrying(
            retry=retry_if_exception_type(BODY_ERRORS),
            stop=stop_after_attempt(self.body_attempts),
            wait=self.retry_wait,
            reraise=True,
        )
        return self._call(what, lambda: retrying(fn))

    # -- objects --------------------------------------------------------------------------

    def put_stream(
        self, key: str, stream: DigestingReader, sha256: str | None = None, log: Log = print
    ) -> FileDigests:
        extra: dict[str, Any] = {"ContentType": "application/octet-stream"}
        if sha256:
            extra["Metadata"] = {"sha256": sha256}
        if self.wants_crc:
            extra["ChecksumAlgorithm"] = "CRC32"  # per part; composite on multipart: AWS-valid
        if self.acl:
            extra["ACL"] = self.acl
        config = TransferConfig(
            multipart_threshold=self.threshold,
            multipart_chunksize=stream.part_size,
            max_concurrency=self.concurrency,
            use_threads=True,
            preferred_transfer_client="classic",  # the CRT client would read the file itself
        )
        name = key.rsplit("/", 1)[-1]
        self._abort_unfinished(key, log)  # one list call; a stream's size is not known yet
        self._call(
            f"uploading {name} to {self.describe(key)}",
            lambda: self.client.upload_fileobj(
                stream,
                self.bucket,
                self._key(key),
                ExtraArgs=extra,
                Config=config,
            ),
        )
        digests = stream.digests
        self._verify(key, digests)
        return digests

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

    def _verify(self, key: str, digests: FileDigests) -> None:
        """The object the store completed has the size and part count of this pass (each part
        was checked on receipt)."""
        head = self._call(
            f"checking {self.describe(key)}",
            lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(key)),
        )
        where = self.describe(key)
        if head["ContentLength"] != digests.size:
            raise IntegrityError(
                f"{where} is {head['ContentLength']} bytes, expected {digests.size}"
            )
        etag = str(head.get("ETag", "")).strip('"')
        parts = etag.rpartition("-")[2] if "-" in etag else None
        if digests.multipart and parts and parts.isdigit() and int(parts) != digests.parts:
            raise IntegrityError(f"{where} has {parts} parts, {digests.parts} were uploaded")

    def check_object(self, key: str, size: int, sha256: str) -> None:
        info = self.head(key)
        if info is None or info.size != size:
            raise IntegrityError(f"{self.describe(key)} is missing or truncated")
        if info.sha256 and info.sha256 != sha256:
            raise IntegrityError(f"{self.describe(key)} records sha256 {info.sha256}, not {sha256}")

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

        return self._read_body(f"reading {self.describe(key)}", get)

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
        return self._read_body(f"reading {self.describe(key)}", lambda: self._sha256_of(key))

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

    def open_read(self, key: str, offset: int = 0, token: str | None = None) -> Reader:
        from publish.stores.s3read import S3Reader

        where = (self.bucket, self._key(key), self.describe(key))
        return S3Reader(self.client, where, self._call, offset, token)

    def presign(self, key: str, expires_s: int) -> str:
        """A presigned GET (SigV4 query parameters) of the object."""
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=int(expires_s),
            )
        )
