"""build/cache.py's seal: a cached image is hashed in full once, then checked by its seal; a
changed image is caught either way, and the same bytes laid out otherwise still pass."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from build import cache
from core.files import sha256_file


def _sparse_image(path: Path) -> Path:
    with path.open("wb") as fh:
        fh.truncate(64 << 20)
        fh.seek(8 << 20)
        fh.write(b"rootfs" * 4096)
    return path


def test_first_lookup_hashes_and_seals_later_ones_use_the_seal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _sparse_image(tmp_path / "image.raw")
    seal = tmp_path / cache.SEAL
    digest = sha256_file(image)
    assert cache._intact(image, digest)
    assert json.loads(seal.read_text())["sha256"] == digest

    def no_full_hash(_path: Path) -> str:
        raise AssertionError("the seal matched: no sha256 needed")

    monkeypatch.setattr(cache, "sha256_file", no_full_hash)
    assert cache._intact(image, digest)


def test_a_changed_image_fails_with_a_seal_and_without(tmp_path: Path) -> None:
    image = _sparse_image(tmp_path / "image.raw")
    seal = tmp_path / cache.SEAL
    digest = sha256_file(image)
    assert cache._intact(image, digest)
    with image.open("r+b") as fh:
        fh.seek(8 << 20)
        fh.write(b"R")
    assert not cache._intact(image, digest)
    seal.unlink()
    assert not cache._intact(image, digest)
    assert not cache._intact(image, "0" * 64), "a seal never vouches for another sha256"


def test_same_bytes_laid_out_otherwise_pass_and_are_sealed_again(tmp_path: Path) -> None:
    image = _sparse_image(tmp_path / "image.raw")
    seal = tmp_path / cache.SEAL
    digest = sha256_file(image)
    assert cache._intact(image, digest)
    before = json.loads(seal.read_text())["seal"]
    with image.open("r+b") as fh:  # a hole written as the zeros it reads as
        fh.seek(40 << 20)
        fh.write(bytes(1 << 20))
        os.fsync(fh.fileno())
    assert sha256_file(image) == digest
    assert cache._intact(image, digest)
    assert json.loads(seal.read_text())["seal"] != before


def test_a_fresh_build_is_sealed_and_the_seal_vouches_only_for_unchanged_bytes(
    tmp_path: Path,
) -> None:
    """write_seal at the build's commit (its sha256 was just computed), sealed_sha256 for the
    publisher: the recorded sha256 while the bytes are the same, None once they differ."""
    image = _sparse_image(tmp_path / "image.raw")
    digest = sha256_file(image)
    assert cache.sealed_sha256(image) is None  # no seal yet
    cache.write_seal(image, digest)
    assert cache.sealed_sha256(image) == digest
    with image.open("r+b") as fh:
        fh.seek(8 << 20)
        fh.write(b"R")
    assert cache.sealed_sha256(image) is None
