"""The twin checks signatures as CloudStack's ApiServer does, and the `cs` client's requests pass:
sorted names, Java's URLEncoder, lower case, HMAC-SHA1; expiry rules of signatureVersion 3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cs import CloudStack

from core.settings import CloudStackConfig
from publish.cloudstack.register import vhd_url
from tests.twins.cloudstack.signature import java_urlencode, parse_expires, sign, verify

KEY, SECRET = "api-key-123", "secret/KEY+456="
NOW = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)


def signed_by_cs(**params: str) -> dict[str, str]:
    client = CloudStack(endpoint="http://x/client/api", key=KEY, secret=SECRET)
    _kind, data = client._prepare_request("registerTemplate", **params)
    data.pop("expires", None)
    data.pop("signatureVersion", None)
    client._sign(data)
    return data


def test_cs_requests_verify_and_any_change_breaks_them() -> None:
    params = signed_by_cs(name="golden debian12", url="https://h/p/a.vhd.bz2?X=1&y=2",
                          checksum="{SHA-256}ab*c", displaytext="é")  # fmt: skip
    assert verify(params, {KEY: SECRET}, NOW) is None
    assert verify({**params, "name": "other"}, {KEY: SECRET}, NOW) == (
        "signature does not match the computed one"
    )
    assert verify(params, {KEY: "another"}, NOW) == "signature does not match the computed one"
    assert verify(params, {"other": SECRET}, NOW) == "apiKey does not map to a valid user"
    # names are sorted as given, before the string is lower-cased: a capital moves a name
    moved = {("Zname" if k == "name" else k): v for k, v in params.items()}
    assert verify(moved, {KEY: SECRET}, NOW) == "signature does not match the computed one"


def test_java_urlencoder_differs_from_python_quote_on_the_tilde() -> None:
    assert java_urlencode("a b~*._-/") == "a%20b%7E*._-%2F"
    params = signed_by_cs(url="https://h/~user/a.vhd")
    assert verify(params, {KEY: SECRET}, NOW) == "signature does not match the computed one"
    cfg = CloudStackConfig(url_base="https://h/~user/")
    url = vhd_url(cfg, None, "debian12/12/b/debian12.vhd.bz2")
    assert url == "https://h/%7Euser/debian12/12/b/debian12.vhd.bz2"
    assert verify(signed_by_cs(url=url), {KEY: SECRET}, NOW) is None


def test_signature_version_3_expiry() -> None:
    def with_expiry(when: str) -> dict[str, str]:
        p = {"command": "listZones", "apiKey": KEY, "signatureVersion": "3", "expires": when}
        return {**p, "signature": sign(p, SECRET)}

    soon = (NOW + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S%z")
    late = (NOW + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S%z")
    past = (NOW - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S%z")
    assert verify(with_expiry(soon), {KEY: SECRET}, NOW) is None
    assert str(verify(with_expiry(past), {KEY: SECRET}, NOW)).startswith("request expired")
    assert verify(with_expiry(late), {KEY: SECRET}, NOW) is None
    assert verify(with_expiry(late), {KEY: SECRET}, NOW, enforce_timestamps=True) == (
        "expiration parameter is set for too long"
    )
    bare = {"command": "listZones", "apiKey": KEY}
    assert verify({**bare, "signature": sign(bare, SECRET)}, {KEY: SECRET}, NOW) is None
    assert verify({**bare, "signature": sign(bare, SECRET)}, {KEY: SECRET}, NOW, True) == (
        "signature version must be 3, with the Expires parameter"
    )
    assert str(verify(with_expiry("tomorrow"), {KEY: SECRET}, NOW)).startswith("incorrect date")


def test_expiry_formats_of_dateutil() -> None:
    for text in ("2026-12-06T21:10:00+0000", "2026-12-06T21:10:00+00:00", "2026-12-06T21:10:00Z",
                 "2026-12-06T21:10:00.000000Z", "2026-12-06T21:10:00Z+0000"):  # fmt: skip
        assert parse_expires(text) == NOW + timedelta(minutes=10), text
