"""Corrupt, truncated and misordered XVAs are rejected with a message naming the member at fault,
and nothing is left half-written; the command line reports them in one line, exit 1."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import xxhash

from diskformats.xva import CHUNK_SIZE, XvaError, ovaxml
from diskformats.xva.reader import verify, xva_to_raw
from diskformats.xva.writer import raw_to_xva
from xcpng_golden.main import main

MiB = CHUNK_SIZE
ROOT = Path(__file__).resolve().parents[2]


def _xxh(data: bytes) -> bytes:
    return xxhash.xxh64(data).hexdigest().upper().encode()


@pytest.fixture
def chunks() -> list[bytes]:
    return [os.urandom(MiB), os.urandom(MiB), os.urandom(MiB), os.urandom(1000)]


def _members(chunks: list[bytes]) -> list[tuple[str, bytes]]:
    size = sum(len(c) for c in chunks)
    out = [("ova.xml", ovaxml.build("t", size))]
    for n, data in enumerate(chunks):
        out += [(f"Ref:3/{n:08d}", data), (f"Ref:3/{n:08d}.xxhash", _xxh(data))]
    return out


def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _rejected(xva: Path, member: str, words: str) -> XvaError:
    with pytest.raises(XvaError) as err:
        verify(xva)
    assert err.value.member == member
    assert member in str(err.value)
    assert words in str(err.value)
    return err.value


def test_well_formed_fixture_passes(tmp_path: Path, chunks: list[bytes]) -> None:
    assert verify(_tar(tmp_path / "ok.xva", _members(chunks))).disks[0].chunks == 4


def test_flipped_byte_in_chunk(tmp_path: Path, chunks: list[bytes]) -> None:
    m = _members(chunks)
    bad = bytearray(m[3][1])
    bad[12345] ^= 0x40
    m[3] = (m[3][0], bytes(bad))
    _rejected(_tar(tmp_path / "x.xva", m), "Ref:3/00000001", "checksum mismatch")


def test_corrupt_checksum_member(tmp_path: Path, chunks: list[bytes]) -> None:
    m = _members(chunks)
    m[6] = (m[6][0], b"0123456789ABCDEF")
    _rejected(_tar(tmp_path / "x.xva", m), "Ref:3/00000002", "checksum mismatch")


def test_corruption_on_disk_bytes_of_the_file(tmp_path: Path, chunks: list[bytes]) -> None:
    xva = _tar(tmp_path / "x.xva", _members(chunks))
    data = bytearray(xva.read_bytes())
    at = data.index(chunks[2][:64]) + 5000  # inside chunk 2's data in the tar
    data[at] ^= 0xFF
    xva.write_bytes(bytes(data))
    _rejected(xva, "Ref:3/00000002", "checksum mismatch")


@pytest.mark.parametrize(
    ("cut_in", "member", "words"),
    [
        ("Ref:3/00000001", "Ref:3/00000001", "truncated"),  # inside a chunk's data
        ("Ref:3/00000003", "Ref:3/00000003", "truncated"),  # inside the last chunk
        ("ova.xml", "ova.xml", "truncated"),
    ],
)
def test_truncated_inside_member(
    tmp_path: Path, chunks: list[bytes], cut_in: str, member: str, words: str
) -> None:
    m = _members(chunks)
    xva = _tar(tmp_path / "x.xva", m)
    data = xva.read_bytes()
    payload = dict(m)[cut_in]
    at = data.index(payload[: min(64, len(payload))]) + len(payload) // 2
    xva.write_bytes(data[:at])
    _rejected(xva, member, words)


def test_last_chunk_missing(tmp_path: Path, chunks: list[bytes]) -> None:
    """A copy cut exactly at a member boundary still misses the disk's end."""
    m = _members(chunks)[:-2]
    err = _rejected(_tar(tmp_path / "x.xva", m), "Ref:3/00000002", "truncated")
    assert "archive ends after Ref:3/00000002" in str(err)


def test_checksum_member_missing(tmp_path: Path, chunks: list[bytes]) -> None:
    m = _members(chunks)
    del m[4]
    _rejected(_tar(tmp_path / "x.xva", m), "Ref:3/00000001", "no checksum member")


def test_chunks_swapped(tmp_path: Path, chunks: list[bytes]) -> None:
    m = _members(chunks)
    m[3:5], m[5:7] = m[5:7], m[3:5]
    _rejected(_tar(tmp_path / "x.xva", m), "Ref:3/00000001", "misordered")


def test_ova_xml_not_first(tmp_path: Path, chunks: list[bytes]) -> None:
    m = _members(chunks)
    m[0], m[1] = m[1], m[0]
    _rejected(_tar(tmp_path / "x.xva", m), "Ref:3/00000000", "not ova.xml")


def test_foreign_member_between_chunks(tmp_path: Path, chunks: list[bytes]) -> None:
    m = _members(chunks)
    m.insert(3, ("notes.txt", b"hi"))
    _rejected(_tar(tmp_path / "x.xva", m), "notes.txt", "expected a chunk of Ref:3")


def test_member_after_the_end(tmp_path: Path, chunks: list[bytes]) -> None:
    m = [*_members(chunks), ("Ref:3/00000009", b"x")]
    _rejected(_tar(tmp_path / "x.xva", m), "Ref:3/00000009", "unexpected member")


def test_chunk_past_virtual_size(tmp_path: Path, chunks: list[bytes]) -> None:
    m = _members(chunks)
    m[0] = ("ova.xml", ovaxml.build("t", 2 * MiB + 10))
    _rejected(_tar(tmp_path / "x.xva", m), "Ref:3/00000002", "past the end")


def test_garbage_header(tmp_path: Path, chunks: list[bytes]) -> None:
    m = _members(chunks)
    m[0] = ("ova.xml", b"<value><struct><member>")
    _rejected(_tar(tmp_path / "x.xva", m), "ova.xml", "not an XML-RPC value")


def test_not_a_tar(tmp_path: Path) -> None:
    p = tmp_path / "x.xva"
    p.write_bytes(b"hello world" * 100)
    with pytest.raises(XvaError, match="not a tar archive"):
        verify(p)


def test_to_raw_leaves_nothing_on_failure(tmp_path: Path, chunks: list[bytes]) -> None:
    m = _members(chunks)
    m[7] = (m[7][0], m[7][1][:-1] + b"\x00")
    xva = _tar(tmp_path / "x.xva", m)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(XvaError, match="Ref:3/00000003"):
        xva_to_raw(xva, out / "disk.raw")
    assert list(out.iterdir()) == []


def test_cli_reports_one_line_and_exit_1(
    tmp_path: Path, chunks: list[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    m = _members(chunks)
    m[3] = (m[3][0], os.urandom(MiB))
    xva = _tar(tmp_path / "x.xva", m)
    assert main(["xva", "verify", str(xva)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Ref:3/00000001: checksum mismatch" in err and "fix:" in err
    assert main(["xva", "to-raw", str(xva), str(tmp_path / "r.raw")]) == 1
    assert not (tmp_path / "r.raw").exists()
    assert main(["xva", "info", str(xva)]) == 0  # info reads only the header
    assert "VM 't'" in capsys.readouterr().out


def test_cli_round_trip_subprocess(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    raw.write_bytes(os.urandom(MiB) + bytes(3 * MiB) + b"end".ljust(512, b"\0"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "xcpng_golden", "xva", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    r = run("from-raw", str(raw), str(tmp_path / "d.xva"), "--name", "cli", "--memory", "2G")
    assert r.returncode == 0, r.stderr
    r = run("verify", "--json", str(tmp_path / "d.xva"))
    assert r.returncode == 0 and '"chunks": 2' in r.stdout
    r = run("to-raw", str(tmp_path / "d.xva"), str(tmp_path / "back.raw"))
    assert r.returncode == 0 and (tmp_path / "back.raw").read_bytes() == raw.read_bytes()
    r = run("verify", str(tmp_path / "missing.xva"))
    assert r.returncode == 1 and "cannot open" in r.stderr and "Traceback" not in r.stderr
    r = run("from-raw", str(raw), str(tmp_path / "e.xva"), "--name", "x", "--memory", "lots")
    assert r.returncode == 2 and "not a size" in r.stderr


def test_writer_refuses_empty_raw(tmp_path: Path) -> None:
    (tmp_path / "e.raw").write_bytes(b"")
    with pytest.raises(XvaError, match="empty"):
        raw_to_xva(tmp_path / "e.raw", tmp_path / "e.xva", "e")
    assert not list(tmp_path.glob("*.xva*")) and not list(tmp_path.glob(".e.xva*"))
