"""S3 store logic without a server: retries, one-line errors, checksum choice, CAS loops."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    ResponseStreamingError,
    SSLError,
)
from tenacity import wait_none

from core.errors import InfrastructureError, UsageError
from core.settings import Settings
from publish.pointers import LATEST_SCHEMA, rebuild_index, update_latest
from publish.stores import open_store
from publish.stores.local import LocalStore
from publish.stores.s3 import S3Store
from publish.stores.s3errors import explain

SECRET = "unit-secret-value-123"


def store(**env: str) -> S3Store:
    base = {
        "AWS_ACCESS_KEY_ID": "AKIAUNITTEST",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "S3_ENDPOINT_URL": "http://127.0.0.1:1",
    }
    s = open_store("s3://my-bucket/golden/", Settings.from_env(env={**base, **env}).s3)
    assert isinstance(s, S3Store)
    s.retry_wait = wait_none()
    return s


def config_of(s: S3Store) -> Any:
    return s.client.meta.config


def client_error(code: str, op: str = "PutObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, op)


def test_requests_are_retried_by_botocore_not_by_a_loop_around_them() -> None:
    s = store()
    assert config_of(s).retries == {"mode": "standard", "total_max_attempts": 5}
    calls = mock.Mock(side_effect=client_error("SlowDown"))
    with pytest.raises(InfrastructureError, match="SlowDown"):
        s._call("writing", calls)
    assert calls.call_count == 1  # botocore already spent its attempts on this request


def test_a_body_broken_mid_stream_is_read_again() -> None:
    s = store()
    broken = ResponseStreamingError(error="connection reset")
    calls = mock.Mock(side_effect=[broken, broken, "ok"])
    assert s._read_body("reading", calls) == "ok"
    assert calls.call_count == 3


def test_permanent_error_is_not_retried_and_is_one_line() -> None:
    s = store()
    calls = mock.Mock(side_effect=client_error("SignatureDoesNotMatch"))
    with pytest.raises(InfrastructureError) as e:
        s._read_body("writing x", calls)
    assert calls.call_count == 1
    msg = str(e.value)
    assert "\n" not in msg and SECRET not in msg and "S3_CHECKSUM_MODE=when_required" in msg
    assert "AKIA..." in msg and "AKIAUNITTEST" not in msg


def test_body_retries_are_bounded() -> None:
    s = store()
    calls = mock.Mock(side_effect=ResponseStreamingError(error="reset"))
    with pytest.raises(InfrastructureError, match="reset"):
        s._read_body("reading", calls)
    assert calls.call_count == s.body_attempts


@pytest.mark.parametrize(
    ("err", "expect"),
    [
        (client_error("NoSuchBucket"), "does not exist"),
        (client_error("InvalidAccessKeyId"), "check AWS_ACCESS_KEY_ID"),
        (client_error("AccessDenied"), "s3:PutObject"),
        (client_error("XAmzContentSHA256Mismatch"), "S3_CHECKSUM_MODE=when_required"),
        (client_error("AuthorizationHeaderMalformed"), "S3_REGION"),
        (SSLError(endpoint_url="x", error=Exception("bad cert")), "S3_CA_BUNDLE"),
        (EndpointConnectionError(endpoint_url="x"), "S3_ENDPOINT_URL"),
    ],
)
def test_explain(err: Exception, expect: str) -> None:
    assert expect in explain(err, "b", "p", "http://e", "AKIAXXXX")


@pytest.mark.parametrize(
    ("endpoint", "mode"),
    [
        (None, "when_supported"),  # AWS itself
        ("https://s3.eu-west-3.amazonaws.com", "when_supported"),
        ("https://s3.cn-north-1.amazonaws.com.cn", "when_supported"),
        ("http://127.0.0.1:9000", "when_required"),
        ("https://minio.example:9000", "when_required"),
        ("https://amazonaws.com.evil.example", "when_required"),
    ],
)
def test_auto_checksum_mode_sends_crc_only_to_aws(endpoint: str | None, mode: str) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAUNITTEST", "AWS_SECRET_ACCESS_KEY": SECRET}
    if endpoint:
        env["S3_ENDPOINT_URL"] = endpoint
    cfg = Settings.from_env(env=env).s3
    assert cfg.checksum_mode == "auto"
    s = S3Store("s3://my-bucket/golden", cfg)
    assert config_of(s).request_checksum_calculation == mode
    assert config_of(s).response_checksum_validation == mode
    assert s.wants_crc == (mode == "when_supported")


def test_checksum_mode_chooses_crc_or_signed_payloads(tmp_path: Path) -> None:
    assert not store().wants_crc
    assert not store(S3_CHECKSUM_MODE="when_required", S3_ENDPOINT_URL="").wants_crc
    s = store(S3_CHECKSUM_MODE="when_supported")
    assert s.wants_crc and config_of(s).request_checksum_calculation == "when_supported"
    from publish.upload_digests import DigestingReader

    reader = DigestingReader([b"x" * 10], part_size=s.chunksize, threshold=s.threshold)
    reader.read()
    with (
        mock.patch.object(s, "client") as client,
        mock.patch.object(s, "_verify") as verify,
    ):
        s.put_stream("k", reader)
    call = client.upload_fileobj.call_args
    extra, config = call.kwargs["ExtraArgs"], call.kwargs["Config"]
    assert call.args[0] is reader and verify.call_args.args[1].size == 10
    assert config.multipart_chunksize == s.chunksize and config.max_concurrency == s.concurrency
    assert extra["ChecksumAlgorithm"] == "CRC32"
    # never a precomputed SHA: s3transfer would mark it FULL_OBJECT, which AWS rejects
    assert not any(k.startswith("ChecksumSHA") for k in extra) and "ChecksumType" not in extra


def test_half_set_credentials_are_a_usage_error() -> None:
    with pytest.raises(
        UsageError, match="AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
    ):
        open_store("s3://my-bucket/x", Settings.from_env(env={"AWS_ACCESS_KEY_ID": "AKIAX"}).s3)


def test_private_acl_sends_no_header_other_acl_does() -> None:
    assert store().acl is None
    assert store(S3_ACL="public-read").acl == "public-read"


def test_tls_settings_reach_the_client(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")

    def verify_of(s: S3Store) -> object:
        client: Any = s.client
        return client._endpoint.http_session._verify

    assert verify_of(store(S3_CA_BUNDLE=str(ca))) == str(ca)
    assert verify_of(store(S3_TLS_VERIFY="0")) is False


def test_conditional_put_falls_back_on_stores_without_it() -> None:
    s = store()
    with mock.patch.object(s, "client") as client:
        client.put_object.side_effect = [client_error("NotImplemented"), {}]
        assert s.put_if("x/latest.json", b"{}", None)
    first, second = (c.kwargs for c in client.put_object.call_args_list)
    assert first["IfNoneMatch"] == "*" and "IfNoneMatch" not in second
    assert not s.conditional_writes
    with mock.patch.object(s, "client") as client:
        client.put_object.side_effect = client_error("PreconditionFailed")
        s.conditional_writes = True
        assert s.put_if("x/latest.json", b"{}", '"etag"') is False
    assert client.put_object.call_args.kwargs["IfMatch"] == '"etag"'


def test_update_latest_retries_when_another_publisher_wins(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    doc: dict[str, Any] = {
        "schema": LATEST_SCHEMA,
        "os": "debian12",
        "build_id": "b",
        "order": [2, 2],
    }
    real_put_if = s.put_if
    raced = {"done": False}

    def racing_put_if(key: str, data: bytes, token: str | None) -> bool:
        if not raced["done"]:  # someone else writes a newer build just before us
            raced["done"] = True
            newer = {**doc, "build_id": "c", "order": [3, 3]}
            assert real_put_if(key, json.dumps(newer).encode(), None)
        return real_put_if(key, data, token)

    with mock.patch.object(s, "put_if", side_effect=racing_put_if):
        changed, message = update_latest(s, doc)
    assert not changed and "kept at newer build c" in message
    assert json.loads((tmp_path / "debian12" / "latest.json").read_text())["build_id"] == "c"


def test_index_is_rebuilt_from_latest_files(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    for name in ("debian12", "rocky9"):
        doc = {"schema": LATEST_SCHEMA, "os": name, "build_id": name + "-1", "order": [1, 1]}
        assert update_latest(s, doc)[0]
    (tmp_path / "index.json").write_text(json.dumps({"os": {"ghost": {}}}))  # stale, ignored
    index = rebuild_index(s)
    assert set(index["os"]) == {"debian12", "rocky9"}
    assert json.loads((tmp_path / "index.json").read_text())["os"] == index["os"]


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        ({"ContentLength": 9, "ETag": '"a-2"'}, "is 9 bytes, expected 10"),
        ({"ContentLength": 10, "ETag": '"a-3"'}, "has 3 parts, 2 were uploaded"),
        ({"ContentLength": 10, "ETag": '"a-2"'}, None),
    ],
)
def test_the_completed_object_must_be_the_digested_one(
    head: dict[str, Any], problem: str | None
) -> None:
    from publish.stores.base import IntegrityError
    from publish.upload_digests import FileDigests

    s = store()
    d = FileDigests(size=10, sha256="0" * 64, multipart=True, part_size=5, parts=2)
    with mock.patch.object(s, "client") as client:
        client.head_object.return_value = head
        if problem is None:
            s._verify("k", d)
        else:
            with pytest.raises(IntegrityError, match=problem):
                s._verify("k", d)
