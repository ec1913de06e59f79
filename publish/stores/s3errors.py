"""S3 failures as one line naming cause and fix (botocore's retry mode decides what to retry)."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    SSLError,
)

CHECKSUM_HINT = (
    "if the key is right, the store may not understand botocore's default request checksums: "
    "set S3_CHECKSUM_MODE=when_required"
)


def code_of(err: BaseException) -> str:
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Code", ""))
    return ""


def explain(err: BaseException, bucket: str, prefix: str, endpoint: str, key_id: str) -> str:
    """One line: what failed, why, and the setting that fixes it."""
    where = f"s3://{bucket}/{prefix}".rstrip("/")
    masked = (key_id[:4] + "...") if key_id else "(none)"
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return (
            f"no S3 credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or an AWS profile or role)"
        )
    if isinstance(err, SSLError):
        return (
            f"TLS verification of {endpoint} failed: set S3_CA_BUNDLE to the store's CA bundle "
            "(S3_TLS_VERIFY=0 only for a test store)"
        )
    if isinstance(err, ConnectionError):
        return f"cannot reach the S3 endpoint {endpoint}: check S3_ENDPOINT_URL and the network"
    if isinstance(err, ClientError):
        code = code_of(err)
        msg = str(err.response.get("Error", {}).get("Message", "")).strip()
        op = getattr(err, "operation_name", "request")
        if code == "SignatureDoesNotMatch":
            return (
                f"S3 rejected the request signature for {where} (SignatureDoesNotMatch): "
                f"AWS_SECRET_ACCESS_KEY does not match access key {masked}; {CHECKSUM_HINT}"
            )
        if code in ("XAmzContentSHA256Mismatch", "InvalidDigest"):
            return f"{endpoint} rejected the payload checksum ({code}); {CHECKSUM_HINT}"
        if code == "InvalidAccessKeyId":
            return f"access key {masked} is unknown to {endpoint}: check AWS_ACCESS_KEY_ID"
        if code == "NoSuchBucket":
            return f"bucket {bucket!r} does not exist at {endpoint}: create it or fix --publish-to"
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return (
                f"access denied on {where} ({op}): the key needs s3:PutObject, s3:GetObject, "
                "s3:DeleteObject and s3:ListBucket on it"
            )
        if code in ("AuthorizationHeaderMalformed", "PermanentRedirect", "301"):
            return (
                f"bucket {bucket!r} is in another region or needs another addressing style "
                f"({code}): set S3_REGION / S3_ADDRESSING_STYLE"
            )
        if code == "AccessControlListNotSupported":
            return f"bucket {bucket!r} has ACLs disabled: set S3_ACL=private"
        return f"S3 {op} on {where} failed: {code or 'error'}: {msg or err}"
    if isinstance(err, BotoCoreError):
        return f"S3 client error for {where}: {err}"
    return f"{type(err).__name__} on {where}: {err}"
