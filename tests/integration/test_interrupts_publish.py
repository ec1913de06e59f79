"""Interrupt matrix, publish rows: `--publish` at the end of a passing session, stopped while
the artifact is on its way to a folder store or to S3 (a moto server over HTTP).

The slow part is the double: the folder store is the real LocalStore fed the artifact through
a FIFO at a set rate, S3 uploads cross a slow link (a TCP forwarder) to the real moto server.
What is checked is the store/publisher boundary: no object under its final name unless whole,
latest.json never moved, no unfinished multipart upload left, and the next run publishes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from publish.stores.local import LocalStore
from publish.stores.s3 import S3Store
from publish.verify import verify_tree
from tests.support.interrupts import (
    NEEDS_PACKER_AND_QEMU,
    PATTERNS,
    Matrix,
    assert_left_as_found,
    assert_next_run_succeeds,
    wait_for,
)
from tests.support.publishing import MotoS3, moto_s3
from tests.support.slowlink import SlowLink, slow_link

pytestmark = [
    pytest.mark.slow,
    NEEDS_PACKER_AND_QEMU,
]
ARTIFACT_MB = "8"
FOLDER_RATE = str(512 << 10)  # bytes/s into the folder store: 16 s for the artifact
LINK_RATE = float(1 << 20)  # bytes/s up to S3: 8 s for the artifact, 5 s for one part
PUBLISH = ("--publish", "--publish-require-platform=any")


@pytest.fixture
def matrix(matrix: Matrix) -> Matrix:
    matrix.env_extra["MATRIX_ARTIFACT_MB"] = ARTIFACT_MB
    return matrix


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


class S3Target:
    """One bucket on the moto server, reached by the harness through a slow link."""

    def __init__(self, moto: MotoS3, link: SlowLink, tmp_path: Path) -> None:
        self.moto, self.link = moto, link
        self.bucket = moto.bucket()
        self.url = f"s3://{self.bucket}/golden"
        self.env = moto.env(
            S3_ENDPOINT_URL=link.url,
            S3_MULTIPART_CHUNKSIZE="5M",
            S3_MAX_CONCURRENCY="2",
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
            AWS_CONFIG_FILE=str(tmp_path / "none"),
        )

    def store(self) -> S3Store:
        return S3Store(self.url, self.moto.settings().s3)  # directly, not through the link

    def unfinished(self) -> list[Any]:
        uploads = self.moto.client().list_multipart_uploads(Bucket=self.bucket)
        return list(uploads.get("Uploads", []))


@pytest.fixture
def s3(moto: MotoS3, tmp_path: Path) -> Iterator[S3Target]:
    host, port = moto.endpoint.removeprefix("http://").split(":")
    with slow_link((host, int(port)), LINK_RATE) as link:
        yield S3Target(moto, link, tmp_path)


def published_problems(matrix: Matrix, store: Any) -> list[str]:
    """What a reader could trip on: a pointer to an incomplete build, or any artifact under
    its final name that is not a whole image of the cache."""
    problems = verify_tree(store, deep=True)
    images = matrix.images()
    for info in store.list_keys(""):
        if (
            info.key.rsplit("/", 1)[-1].startswith("image.")
            and store.sha256(info.key) not in images
        ):
            problems.append(f"{store.describe(info.key)} is under its final name but not whole")
    return problems


def latest(store: Any) -> bytes | None:
    return store.get_bytes("debian12/latest.json")


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_stopped_while_publishing_to_a_folder(matrix: Matrix, pattern: str) -> None:
    run = matrix.start(
        *PUBLISH, f"--publish-to={matrix.published}", env={"MATRIX_PUBLISH_RATE": FOLDER_RATE}
    )
    matrix.wait_mark("publish", run)
    run.stop(pattern)
    rc = run.wait(timeout=120)
    assert_left_as_found(matrix, run, rc)
    store = LocalStore(matrix.published)
    assert latest(store) is None, "latest.json moved to a build that was never complete"
    assert published_problems(matrix, store) == []
    assert "interrupted: the run is recorded as partial" in run.text()
    assert_next_run_succeeds(matrix, *PUBLISH, f"--publish-to={matrix.published}")
    assert latest(store) is not None and published_problems(matrix, store) == []


def test_killed_while_publishing_to_a_folder(matrix: Matrix) -> None:
    """SIGKILL mid-copy: the half-copied artifact stays under a temporary name (never its
    final one); the next run removes it and publishes."""
    run = matrix.start(
        *PUBLISH, f"--publish-to={matrix.published}", env={"MATRIX_PUBLISH_RATE": FOLDER_RATE}
    )
    matrix.wait_mark("publish", run)
    wait_for(lambda: list(matrix.published.rglob("*.part")), 30, "the copy to begin")
    run.kill()
    store = LocalStore(matrix.published)
    assert latest(store) is None and published_problems(matrix, store) == []
    out = assert_next_run_succeeds(matrix, *PUBLISH, f"--publish-to={matrix.published}")
    assert "removed half-written file" in out
    assert latest(store) is not None and published_problems(matrix, store) == []


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_stopped_while_publishing_to_s3(matrix: Matrix, s3: S3Target, pattern: str) -> None:
    """On SIGINT the transfer manager lets the parts in flight finish, then aborts the
    multipart upload; on a link slow enough, the SIGTERM 7.5 s later lands meanwhile."""
    slow_abort = pattern == "sigint-then-sigterm"
    if slow_abort:
        s3.link.rate = LINK_RATE / 4
    run = matrix.start(*PUBLISH, f"--publish-to={s3.url}", env=s3.env)
    wait_for(lambda: s3.link.uploaded > (2 << 20) or run.proc.poll() is not None, 120, "uploads")
    assert run.proc.poll() is None, run.text()[-3000:]
    run.stop(pattern)
    rc = run.wait(timeout=120)
    assert_left_as_found(matrix, run, rc)
    if slow_abort:
        assert run.delivered == ["SIGINT", "SIGTERM"], "the SIGTERM must land during the abort"
    store = s3.store()
    assert latest(store) is None and published_problems(matrix, store) == []
    assert s3.unfinished() == [], "an interrupted upload must be aborted, not left billed"
    assert_next_run_succeeds(matrix, *PUBLISH, f"--publish-to={s3.url}", env=s3.env)
    assert latest(store) is not None and published_problems(matrix, store) == []


def test_killed_while_publishing_to_s3(matrix: Matrix, s3: S3Target) -> None:
    """SIGKILL mid-upload leaves a multipart upload S3 keeps (and bills) but nobody sees;
    the next publish of the same build aborts it."""
    run = matrix.start(*PUBLISH, f"--publish-to={s3.url}", env=s3.env)
    wait_for(lambda: s3.unfinished() and s3.link.uploaded > (2 << 20), 120, "a multipart upload")
    run.kill()
    store = s3.store()
    assert latest(store) is None and published_problems(matrix, store) == []
    assert len(s3.unfinished()) == 1
    out = assert_next_run_succeeds(matrix, *PUBLISH, f"--publish-to={s3.url}", env=s3.env)
    assert "aborted an unfinished upload" in out
    assert s3.unfinished() == []
    assert latest(store) is not None and published_problems(matrix, store) == []
