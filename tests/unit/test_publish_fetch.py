"""`xcpng-golden store fetch` from a folder store the real publisher wrote: latest or a named
build, verified; one clear line and no file under the final name on a missing OS, a missing
build or a checksum mismatch; an interrupted download resumed; progress on a terminal."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from core.settings import Settings
from publish.fetch import Progress, fetch
from publish.source import find_build
from publish.stores.local import LocalStore
from tests.support.catalog import publish_three
from xcpng_golden import main as cli


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fetch")
    publish_three(root, str(root / "pub"), Settings.from_env(env={}))
    return root / "pub"


def latest(store: Path, os_name: str) -> dict:
    return dict(json.loads((store / os_name / "latest.json").read_text()))


def run(*args: str) -> int:
    return cli.main(["store", "fetch", *args])


def test_fetch_latest_then_a_named_build(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = latest(store, "debian12")
    assert run("--from", str(store), "--os", "debian12", "--to", str(tmp_path)) == 0
    xva = tmp_path / "debian12.xva"
    assert hashlib.sha256(xva.read_bytes()).hexdigest() == doc["sha256"]
    meta = json.loads((tmp_path / "debian12.xva.metadata.json").read_text())
    assert meta["build_id"] == doc["build_id"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "debian12.xva",
        "debian12.xva.SHA256SUMS",
        "debian12.xva.metadata.json",
        "debian12.xva.provenance.intoto.json",
        "debian12.xva.sbom.cdx.json",
    ]
    out = capsys.readouterr().out
    assert "sha256" in out and "unsigned; checked against its checksums only" in out
    old = sorted(p.name for p in (store / "debian12" / "12").iterdir())[0]
    assert run("--from", str(store), "--os", "debian12", "--build", old, "--to", str(tmp_path)) == 0
    meta = json.loads((tmp_path / "debian12.xva.metadata.json").read_text())
    assert meta["build_id"] == old != doc["build_id"]
    assert hashlib.sha256(xva.read_bytes()).hexdigest() == meta["artifact"]["sha256"]
    # the same build again: verified in place, nothing downloaded
    assert run("--from", str(store), "--os", "debian12", "--build", old, "--to", str(tmp_path)) == 0
    assert "nothing downloaded" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (
            ["--os", "debian99"],
            "error: no OS named 'debian99' at {store} (published: alma9, debian12, ubuntu2404)",
        ),
        (
            ["--os", "alma9", "--build", "20990101T000000Z-abc"],
            "error: no complete build '20990101T000000Z-abc' of alma9 at {store} (builds, newest "
            "first: 20251126T121320Z-222222222222)",
        ),
    ],
)
def test_missing_os_or_build_is_one_line(
    store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expect: str,
) -> None:
    to = tmp_path / "dl"
    assert run("--from", str(store), *args, "--to", str(to)) == 2
    err = capsys.readouterr().err
    assert err == expect.format(store=store) + "\n"
    assert not to.exists()


def test_checksum_mismatch_leaves_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_three(tmp_path, str(tmp_path / "pub"), Settings.from_env(env={}))
    store = tmp_path / "pub"
    artifact = store / latest(store, "ubuntu2404")["artifact"]
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one bit pattern flipped: only sha256 can tell
    artifact.write_bytes(bytes(data))
    to = tmp_path / "dl"
    assert run("--from", str(store), "--os", "ubuntu2404", "--to", str(to)) == 1
    lines = capsys.readouterr().err.splitlines()  # progress lines, then the one error line
    err = lines[-1]
    assert [line for line in lines if "error" in line] == [err]
    assert err.startswith(f"error: checksum mismatch: {artifact} downloaded as sha256 ")
    assert err.endswith("(xcpng-golden store verify --deep)")
    assert list(to.iterdir()) == []  # no final name, no part to resume from


def test_metadata_that_breaks_its_schema_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_three(tmp_path, str(tmp_path / "pub"), Settings.from_env(env={}))
    store = tmp_path / "pub"
    meta_path = store / latest(store, "alma9")["metadata"]
    meta = json.loads(meta_path.read_text())
    meta["artifact"]["sha256"] = "not-a-digest"
    meta_path.write_text(json.dumps(meta))
    to = tmp_path / "dl"
    assert run("--from", str(store), "--os", "alma9", "--to", str(to)) == 1
    err = capsys.readouterr().err
    assert "does not match the metadata schema at artifact/sha256" in err
    assert not to.exists()


class Breaks:
    """A reader that stops after `limit` bytes as a Ctrl-C would."""

    def __init__(self, inner: io.BufferedReader, limit: int):
        self.inner, self.left = inner, limit

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise KeyboardInterrupt
        data = self.inner.read(min(n, self.left))
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.inner.close()


def test_interrupted_download_resumes_where_it_stopped(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = latest(store, "alma9")
    real_open = LocalStore.open_read
    offsets: list[int] = []

    def breaking(self: LocalStore, key: str, offset: int = 0, token: str | None = None) -> Breaks:
        offsets.append(offset)
        return Breaks(real_open(self, key, offset, token), 1 << 20)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalStore, "open_read", breaking)
    assert run("--from", str(store), "--os", "alma9", "--to", str(tmp_path)) == 130
    part = tmp_path / "alma9.xva.part"
    assert part.stat().st_size == 1 << 20
    assert not (tmp_path / "alma9.xva").exists()
    monkeypatch.setattr(LocalStore, "open_read", real_open)
    lines: list[str] = []
    build = find_build(LocalStore(store), "alma9")
    got = fetch(build, tmp_path, lines.append, progress=io.StringIO())
    assert offsets == [0] and got.resumed_from == 1 << 20
    assert any("resuming at byte 1048576" in line for line in lines)
    assert hashlib.sha256(got.artifact.read_bytes()).hexdigest() == doc["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alma9.xva", "alma9.xva.metadata.json"]


def test_a_part_of_another_object_is_not_resumed(store: Path, tmp_path: Path) -> None:
    (tmp_path / "alma9.xva.part").write_bytes(b"x" * 1000)  # no record of where it came from
    lines: list[str] = []
    got = fetch(find_build(LocalStore(store), "alma9"), tmp_path, lines.append, io.StringIO())
    assert got.resumed_from == 0 and "starting again" in lines[0]
    assert hashlib.sha256(got.artifact.read_bytes()).hexdigest() == latest(store, "alma9")["sha256"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_one_line_on_a_terminal_and_prints_tenths_elsewhere() -> None:
    tty = Tty()
    bar = Progress("x.xva", 100 << 20, tty)
    for _ in range(100):
        bar.last_draw = 0  # every update redraws (no 0.2 s pacing in a test)
        bar.add(1 << 20)
    bar.finish()
    out = tty.getvalue()
    assert out.count("\r") == 100 and out.count("\n") == 1 and out.endswith("\n")
    assert out.rsplit("\r", 1)[-1].startswith("x.xva: 100% 100 of 100 MiB")
    plain = io.StringIO()
    bar = Progress("x.xva", 100 << 20, plain)
    for _ in range(100):
        bar.add(1 << 20)
    lines = plain.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in plain.getvalue()
    assert lines[0].startswith("x.xva:  10% 10 of 100 MiB") and lines[-1].startswith("x.xva: 100%")
