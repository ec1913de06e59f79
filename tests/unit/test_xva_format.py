"""The XVA reader and writer: round trips, the layout XAPI expects, checksums cross-checked with
the `xxhash` library, and XVAs as XAPI itself writes them (bare values, SHA-1, keep-alives)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diskformats.xva import CHUNK_SIZE, XvaError, ovaxml
from diskformats.xva.reader import verify, xva_to_raw
from diskformats.xva.writer import raw_to_xva

MiB = CHUNK_SIZE


def _members(xva: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(xva) as tar:
        out = []
        for m in tar.getmembers():
            fh = tar.extractfile(m)
            assert fh is not None
            out.append((m.name, fh.read()))
        return out


def _sparse_disk(path: Path, size: int, writes: dict[int, bytes]) -> Path:
    with path.open("wb") as fh:
        fh.truncate(size)
        for offset, data in writes.items():
            fh.seek(offset)
            fh.write(data)
    return path


def test_round_trip_sparse_disk_stays_sparse(tmp_path: Path) -> None:
    size = 40 * MiB + 4096 + 512
    raw = _sparse_disk(tmp_path / "d.raw", size, {7 * MiB + 3: b"hello", 31 * MiB: b"\x01" * 10})
    xva, back = tmp_path / "d.xva", tmp_path / "back.raw"
    raw_to_xva(raw, xva, "sparse")
    names = [n for n, _ in _members(xva)]
    # first, the two data chunks and the last (a short one); zero chunks skipped
    assert names == [
        "ova.xml",
        "Ref:3/00000000",
        "Ref:3/00000000.xxhash",
        "Ref:3/00000007",
        "Ref:3/00000007.xxhash",
        "Ref:3/00000031",
        "Ref:3/00000031.xxhash",
        "Ref:3/00000040",
        "Ref:3/00000040.xxhash",
    ]
    assert xva.stat().st_size < 5 * MiB
    xva_to_raw(xva, back)
    assert back.stat().st_size == size
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(raw.read_bytes()).digest()
    assert back.stat().st_blocks * 512 < 4 * MiB  # holes kept as holes


def test_round_trip_dense_disk(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    raw.write_bytes(os.urandom(3 * MiB + 1536))  # a short last chunk, whole sectors
    xva, back = tmp_path / "d.xva", tmp_path / "back.raw"
    raw_to_xva(raw, xva, "dense")
    info = verify(xva)
    assert [(s.chunks, s.stored_bytes) for s in info.disks] == [(4, 3 * MiB + 1536)]
    xva_to_raw(xva, back)
    assert back.read_bytes() == raw.read_bytes()


def test_checksums_are_xxh64_as_xapi_prints_them(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    raw.write_bytes(os.urandom(2 * MiB + 512))
    xva = tmp_path / "d.xva"
    raw_to_xva(raw, xva, "x")
    members = dict(_members(xva))
    chunks = [n for n in members if n.startswith("Ref:3/") and n[6:].isdigit()]
    assert len(chunks) == 3
    for name in chunks:
        text = members[name + ".xxhash"].decode()
        # OCaml's Printf "%016LX" of the 64-bit hash: 16 uppercase hex digits
        assert text == f"{xxhash.xxh64_intdigest(members[name]):016X}"
        assert text == xxhash.xxh64(members[name], seed=0).hexdigest().upper()


def test_ova_xml_is_first_with_bare_values_and_int64_size(tmp_path: Path) -> None:
    raw = _sparse_disk(tmp_path / "d.raw", 5 * (1 << 30) + MiB, {})  # > 2^32: int64 territory
    xva = tmp_path / "d.xva"
    raw_to_xva(raw, xva, "big & <odd> name", template=True)
    name, data = _members(xva)[0]
    assert name == "ova.xml"
    text = data.decode()
    assert "<string>" not in text and "<i4>" not in text and "<int>" not in text
    header = ovaxml.parse(data)
    (disk,) = ovaxml.disks(header)
    assert disk.size == 5 * (1 << 30) + MiB
    assert ovaxml.vm_summary(header) == {
        "name": "big & <odd> name",
        "is_a_template": True,
        "export_vsn": "2",
        "product": "XCP-ng",
    }
    assert verify(xva).disks[0].chunks == 2  # first and last only


def _tar(path: Path, members: list[tuple[str, bytes]], compress: bool = False) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue()) if compress else buf.getvalue())
    return path


XAPI_STYLE_HEADER = """<value><struct>
<member><name>version</name><value><struct>
 <member><name>hostname</name><value>xcp-host</value></member>
 <member><name>export_vsn</name><value>2</value></member>
</struct></value></member>
<member><name>objects</name><value><array><data>
 <value><struct><member><name>class</name><value>VM</value></member>
  <member><name>id</name><value>Ref:1</value></member>
  <member><name>snapshot</name><value><struct>
   <member><name>name_label</name><value>exported</value></member>
   <member><name>is_a_template</name><value><boolean>1</boolean></value></member>
  </struct></value></member></struct></value>
 <value><struct><member><name>class</name><value>VBD</value></member>
  <member><name>id</name><value>Ref:2</value></member>
  <member><name>snapshot</name><value><struct>
   <member><name>VDI</name><value>Ref:9</value></member>
   <member><name>type</name><value>Disk</value></member>
   <member><name>userdevice</name><value>0</value></member>
  </struct></value></member></struct></value>
 <value><struct><member><name>class</name><value>VBD</value></member>
  <member><name>id</name><value>Ref:3</value></member>
  <member><name>snapshot</name><value><struct>
   <member><name>VDI</name><value>Ref:7</value></member>
   <member><name>type</name><value>CD</value></member>
  </struct></value></member></struct></value>
 <value><struct><member><name>class</name><value>VDI</value></member>
  <member><name>id</name><value>Ref:7</value></member>
  <member><name>snapshot</name><value><struct>
   <member><name>virtual_size</name><value>1048576</value></member>
  </struct></value></member></struct></value>
 <value><struct><member><name>class</name><value>VDI</value></member>
  <member><name>id</name><value>Ref:9</value></member>
  <member><name>snapshot</name><value><struct>
   <member><name>virtual_size</name><value>3145728</value></member>
  </struct></value></member></struct></value>
</data></array></value></member>
</struct></value>"""


def test_reads_xapi_export_with_sha1_gaps_keepalive_and_gzip(tmp_path: Path) -> None:
    """As xen-api writes it: bare <value> strings, a CD VDI with no data, `.checksum` SHA-1
    members, a zero-length keep-alive chunk (stream_vdi's firewall workaround), a gap."""
    first, last = os.urandom(MiB), os.urandom(MiB)

    def sha(d: bytes) -> bytes:
        return hashlib.sha1(d).hexdigest().encode()

    members = [
        ("ova.xml", XAPI_STYLE_HEADER.encode()),
        ("Ref:9/00000000", first),
        ("Ref:9/00000000.checksum", sha(first)),
        ("Ref:9/00000001", b""),  # keep-alive: no data, numbering moves on
        ("Ref:9/00000001.checksum", sha(b"")),
        ("Ref:9/00000003", last),  # one zero chunk skipped (00000002)
        ("Ref:9/00000003.xxhash", f"{xxhash.xxh64_intdigest(last):016X}".encode()),
    ]
    for compress in (False, True):
        xva = _tar(tmp_path / f"x{compress}.xva", members, compress)
        info = verify(xva)
        assert info.vm["name"] == "exported" and info.vm["is_a_template"] is True
        assert [d.disk.ref for d in info.disks] == ["Ref:9"]  # the CD is not streamed
        raw = tmp_path / f"x{compress}.raw"
        xva_to_raw(xva, raw)
        assert raw.read_bytes() == first + bytes(MiB) + last


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pattern=st.lists(st.sampled_from(["zero", "data", "byte"]), min_size=1, max_size=5),
    tail=st.integers(min_value=0, max_value=MiB - 1).map(lambda n: n - n % 512),
)
def test_round_trip_any_zero_pattern(tmp_path: Path, pattern: list[str], tail: int) -> None:
    blocks = {
        "zero": bytes(MiB),
        "data": os.urandom(MiB),
        "byte": bytes(MiB // 2) + b"\x07" + bytes(MiB // 2 - 1),
    }
    content = b"".join(blocks[p] for p in pattern) + os.urandom(tail)
    raw, xva, back = tmp_path / "p.raw", tmp_path / "p.xva", tmp_path / "p.back"
    raw.write_bytes(content)
    raw_to_xva(raw, xva, "p")
    xva_to_raw(xva, back)
    assert back.read_bytes() == content
    names = [n for n, _ in _members(xva) if n[6:].isdigit()]
    last = (len(content) - 1) // MiB
    expected = [
        f"Ref:3/{n:08d}"
        for n in range(last + 1)
        if n in (0, last) or any(content[n * MiB : (n + 1) * MiB])
    ]
    assert names == expected


def test_memory_stays_flat(tmp_path: Path) -> None:
    """Python allocations stay around a couple of chunks, whatever the disk size."""
    import tracemalloc

    raw, xva, back = tmp_path / "d.raw", tmp_path / "d.xva", tmp_path / "back.raw"
    block = bytearray(os.urandom(MiB))
    with raw.open("wb") as fh:
        for n in range(48):
            block[:4] = n.to_bytes(4, "little")
            fh.write(block)
    tracemalloc.start()
    try:
        raw_to_xva(raw, xva, "big")
        xva_to_raw(xva, back)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB for a 48 MiB disk"
    assert back.stat().st_size == 48 * MiB


def _cli(*args: str) -> int:
    from xcpng_golden.main import main

    return main(["xva", *args])


def test_compressed_xvas_start_as_xapi_detects_them_and_round_trip(tmp_path: Path) -> None:
    """xen-api import.ml: a plain tar, else the zstd magic, else gzip; byte for byte back."""
    raw = _sparse_disk(tmp_path / "d.raw", 20 * MiB, {MiB: os.urandom(MiB), 9 * MiB: b"x" * 4096})
    for kind, magic in (("zstd", b"\x28\xb5\x2f\xfd"), ("gzip", b"\x1f\x8b"), ("none", None)):
        xva, back = tmp_path / f"{kind}.xva", tmp_path / f"{kind}.raw"
        raw_to_xva(raw, xva, "c", compression=kind)
        head = xva.read_bytes()[:512]
        if magic:
            assert head.startswith(magic)
        else:
            assert tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape").name == "ova.xml"
        assert verify(xva).compression == kind
        xva_to_raw(xva, back)
        assert back.read_bytes() == raw.read_bytes()
    # what the external tools XAPI forks read: `zstd -d` and `gzip -d` give the plain tar
    plain = gzip.decompress((tmp_path / "gzip.xva").read_bytes())
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        assert tar.getnames()[:2] == ["ova.xml", "Ref:3/00000000"]


def test_xz_and_bzip2_are_refused_as_a_pool_would(tmp_path: Path) -> None:
    import bz2
    import lzma

    import pytest

    raw = tmp_path / "d.raw"
    raw.write_bytes(os.urandom(MiB))
    xva = tmp_path / "d.xva"
    raw_to_xva(raw, xva, "c")
    for name, pack in (("xz", lzma.compress), ("bzip2", bz2.compress)):
        bad = tmp_path / f"d.{name}"
        bad.write_bytes(pack(xva.read_bytes()))
        with pytest.raises(XvaError, match=f"compressed with {name}.*recompress it"):
            verify(bad)


def test_firmware_follows_the_partition_table(tmp_path: Path) -> None:
    from tests.support.publishing import sparse_disk

    def firmware(xva: Path) -> str:
        header = ovaxml.parse(dict(_members(xva))["ova.xml"])
        vm = next(o for o in header["objects"] if o["class"] == "VM")
        return str(vm["snapshot"]["HVM_boot_params"]["firmware"])

    uefi, bios, blank = tmp_path / "u.raw", tmp_path / "b.raw", tmp_path / "n.raw"
    sparse_disk(uefi, 16 * MiB, MiB)
    sparse_disk(bios, 16 * MiB, MiB, uefi=False)
    _sparse_disk(blank, 16 * MiB, {})
    for raw, want in ((uefi, "uefi"), (bios, "bios"), (blank, "bios")):
        xva = raw.with_suffix(".xva")
        assert _cli("from-raw", str(raw), str(xva), "--name", "f", "--compression", "none") == 0
        assert firmware(xva) == want, raw
    raw_to_xva(uefi, tmp_path / "forced.xva", "f", firmware="bios")
    assert firmware(tmp_path / "forced.xva") == "bios"


def test_cli_writes_zstd_by_default_and_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _sparse_disk(tmp_path / "d.raw", 4 * MiB, {MiB: b"data"})
    xva = tmp_path / "d.xva"
    assert _cli("from-raw", str(raw), str(xva), "--name", "d") == 0
    assert _cli("info", str(xva)) == 0
    assert "compression zstd" in capsys.readouterr().out
    assert _cli("verify", str(xva), "--json") == 0
    assert '"compression": "zstd"' in capsys.readouterr().out


@pytest.mark.parametrize("size", [MiB + 100, 6 * MiB - 1, 511])
def test_a_raw_size_not_a_multiple_of_512_is_refused_with_the_size(
    tmp_path: Path, size: int
) -> None:
    """XAPI's import reads the next checksum header straight after a chunk's data, before its
    tar padding (stream_vdi.ml), so a last chunk of another length breaks every import."""
    raw, xva = tmp_path / "odd.raw", tmp_path / "odd.xva"
    raw.write_bytes(os.urandom(size))
    with pytest.raises(XvaError) as err:
        raw_to_xva(raw, xva, "odd")
    msg = str(err.value)
    assert f"{size} bytes" in msg and "multiple of 512" in msg
    assert f"truncate -s {size + (-size % 512)}" in msg  # the fix, with the padded size
    assert not xva.exists() and list(tmp_path.iterdir()) == [raw]  # nothing half-written
