"""A publish destination is parsed once (core.destination) and means the same to every reader:
the settings, the store, the gate, the preflight and the leftover sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.destination import Destination, as_destination
from core.errors import UsageError
from core.settings import Settings
from publish.stores import open_store
from publish.stores.local import LocalStore
from publish.stores.s3 import S3Store


def test_an_s3_url_has_its_bucket_and_prefix() -> None:
    d = Destination.parse("s3://bucket/a/b/")
    assert (d.kind, d.is_s3, d.bucket, d.prefix, d.path) == ("s3", True, "bucket", "a/b", None)
    assert str(d) == d.url == "s3://bucket/a/b/"
    assert Destination.parse("s3://bucket").prefix == ""


@pytest.mark.parametrize("url", ["s3://B/x", "s3://ab/x", "s3:///x", f"s3://{'a' * 64}/x"])
def test_a_bad_bucket_is_one_usage_error_naming_the_setting(url: str) -> None:
    with pytest.raises(UsageError, match="not a valid S3 destination") as e:
        Destination.parse(url, "TEMPLATE_PUBLISH_TO")
    assert str(e.value).startswith(f"TEMPLATE_PUBLISH_TO={url!r}")
    assert "3-63 lower-case" in str(e.value) and "\n" not in str(e.value)


def test_a_folder_is_absolute_and_file_urls_are_folders_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plain = Destination.parse("published")
    assert (plain.kind, plain.is_s3, plain.path, plain.bucket) == (
        "folder",
        False,
        tmp_path / "published",
        None,
    )
    url = Destination.parse(f"file://{tmp_path}/pub")
    assert url.path == tmp_path / "pub" and url.url == f"file://{tmp_path}/pub"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Destination.parse("~/x").path == tmp_path / "x"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ftp://host/x", "unsupported destination scheme"),
        ("https://bucket.example/x", "unsupported destination scheme"),
        ("file://relative/x", "a file URL needs an absolute path"),
        ("  ", "is empty"),
    ],
)
def test_anything_else_is_one_usage_error_with_the_fix(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words) as e:
        Destination.parse(text, "--to")
    assert str(e.value).startswith("--to")
    assert "s3://bucket/prefix or a folder" in str(e.value) and "\n" not in str(e.value)


def test_the_setting_is_parsed_once_and_a_bad_one_names_its_variable() -> None:
    settings = Settings.from_env(env={"TEMPLATE_PUBLISH_TO": "s3://bucket/golden"})
    assert settings.publish_to == Destination.parse("s3://bucket/golden")
    assert Settings.from_env(env={}).publish_to.path == Path("published").absolute()
    with pytest.raises(UsageError, match="TEMPLATE_PUBLISH_TO='ftp://x': unsupported"):
        Settings.from_env(env={"TEMPLATE_PUBLISH_TO": "ftp://x"})
    with pytest.raises(UsageError, match="--publish-to='s3://X/y'"):
        Settings.from_env(env={}, publish_to="s3://X/y")


def test_the_store_opens_what_the_destination_names(tmp_path: Path) -> None:
    s3 = Settings.from_env(env={}).s3
    local = open_store(Destination.parse(f"file://{tmp_path}"), s3)
    assert isinstance(local, LocalStore) and local.root == tmp_path
    assert local.url == f"file://{tmp_path}"
    remote = open_store("s3://my-bucket/golden/", s3)
    assert isinstance(remote, S3Store) and (remote.bucket, remote.prefix) == ("my-bucket", "golden")
    assert as_destination(local.url) == Destination.parse(local.url)
