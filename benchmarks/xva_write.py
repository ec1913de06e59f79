"""Benchmark: what the published XVA costs, for each compression, on a real (or synthetic) disk.

For one raw disk it prints, each with the peak RSS of the step:

- published bytes / the disk's data bytes (data: what SEEK_DATA finds, as `qemu-img map`);
- XVA write throughput / `cat disk.raw > /dev/null` (the same virtual bytes; holes are never
  read by the writer, `cat` reads them as zeros);
- XVA verify throughput / `cat image.xva > /dev/null`;
- the import side: `zstd -d` / `gzip -d` of the XVA to /dev/null, the very commands XAPI forks
  on `/import` (xen-api `ocaml/libs/zstd`, `gzip`), in MiB/s of tar produced.

    .venv/bin/python benchmarks/xva_write.py                  # the newest cached local image
    .venv/bin/python benchmarks/xva_write.py --raw disk.raw --compression zstd:3,gzip:6,none
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from core.ownership import scratch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.measure import MiB, report, run_child, timed_command, warm  # noqa: E402

CACHE = Path("~/.cache/xcpng-templates/images").expanduser()
DEFAULT = "zstd:1,zstd:3,zstd:9,gzip:1,gzip:6,none"
DECOMPRESS = {"zstd": ["zstd", "-d", "-c"], "gzip": ["gzip", "-d", "-c"], "none": ["cat"]}


def newest_cached_raw() -> Path | None:
    found = sorted(CACHE.glob("*/local/*/image.raw"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def make_disk(path: Path, size: int, data: int) -> None:
    """A sparse disk: `data` bytes in 1 MiB extents over `size`, half random, half text-like."""
    words = b"the quick brown fox jumps over the lazy dog 0123456789 /usr/lib/x86_64-linux-gnu\n"
    text = (words * (MiB // len(words) + 1))[:MiB]
    extents = max(data // MiB, 1)
    stride = max(size // MiB // extents, 1) * MiB
    with path.open("wb") as fh:
        fh.truncate(size)
        for i in range(extents):
            if i * stride + MiB > size:
                break
            fh.seek(i * stride)
            fh.write(os.urandom(MiB) if i % 2 else text)


def data_bytes(path: Path) -> int:
    from core.files import data_extents

    with path.open("rb") as fh:
        return sum(e - s for s, e in data_extents(fh.fileno(), os.fstat(fh.fileno()).st_size))


def child(step: str, a: str, *rest: str) -> dict[str, Any]:
    """One step in this process: cat, decompress, write or verify."""
    if step == "cat":
        return timed_command(["cat", a])
    if step == "decompress":
        return timed_command(DECOMPRESS[rest[0]], stdin=Path(a))
    if step == "write":
        from diskformats.xva.writer import raw_to_xva

        kind, _, level = rest[0].partition(":")
        start = time.perf_counter()
        raw_to_xva(
            Path(a),
            Path(rest[1]),
            "bench",
            template=True,
            compression=kind,
            level=int(level) if level else None,
        )
        return {"seconds": time.perf_counter() - start}
    from diskformats.xva.reader import verify

    start = time.perf_counter()
    info = verify(Path(a))
    return {"seconds": time.perf_counter() - start, "compression": info.compression}


def step(*args: Path | str) -> dict[str, Any]:
    return run_child(Path(__file__), [str(a) for a in args])


def measure(raw: Path, work: Path, compression: str, cat_raw: dict[str, Any]) -> dict[str, Any]:
    kind, _, level = compression.partition(":")
    xva = work / f"image-{kind}{level}.xva"
    write = step("write", raw, compression, xva)
    try:
        warm(xva)
        cat_xva = step("cat", xva)
        verify = step("verify", xva)
        unpack = step("decompress", xva, kind)
        size = xva.stat().st_size
        tar_bytes = size if kind == "none" else _tar_size(xva, kind)
        return {
            "compression": compression,
            "xva_bytes": size,
            "xva_allocated": xva.stat().st_blocks * 512,
            "write": write,
            "write_ratio": cat_raw["seconds"] / write["seconds"],
            "verify": verify,
            "cat_xva": cat_xva,
            "verify_ratio": cat_xva["seconds"] / verify["seconds"],
            "decompress": unpack,
            "decompress_mibps": tar_bytes / MiB / unpack["seconds"],
        }
    finally:
        xva.unlink(missing_ok=True)


def _tar_size(xva: Path, kind: str) -> int:
    import subprocess

    with xva.open("rb") as src:
        proc = subprocess.Popen(DECOMPRESS[kind], stdin=src, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        total = 0
        while block := proc.stdout.read(MiB):
            total += len(block)
        proc.wait()
    return total


def main(argv: list[str] | None = None) -> int:
    from core.settings import parse_size

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw", type=Path, help="raw disk (default: newest cached local image)")
    p.add_argument("--size", default="8G", help="synthetic disk's virtual size [8G]")
    p.add_argument("--data", default="1G", help="synthetic disk's data [1G]")
    p.add_argument("--compression", default=DEFAULT, help=f"comma list [{DEFAULT}]")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        report(child(*args.child))
        return 0
    with scratch("xcpng-bench-xva") as tmp:
        work = Path(tmp)
        raw = args.raw or newest_cached_raw()
        if raw is None:
            raw = work / "disk.raw"
            make_disk(raw, parse_size(args.size, "--size"), parse_size(args.data, "--data"))
            what = f"synthetic disk ({args.size} virtual, {args.data} data)"
        else:
            what = str(raw)
        virtual, data = raw.stat().st_size, data_bytes(raw)
        warm(raw)
        cat_raw = step("cat", raw)
        print(f"disk: {what}: {virtual / MiB:.0f} MiB virtual, {data / MiB:.0f} MiB data")
        print(
            f"cat disk.raw > /dev/null: {cat_raw['seconds']:.2f} s "
            f"({virtual / MiB / cat_raw['seconds']:.0f} MiB/s of disk), "
            f"peak RSS of cat {cat_raw['command_peak_rss_mib']} MiB"
        )
        rows = [measure(raw, work, c, cat_raw) for c in args.compression.split(",")]
    print(
        f"{'compression':>11} {'XVA MiB':>8} {'pub/data':>8} {'write s':>8} {'w/cat':>6} "
        f"{'RSS':>6} {'verify s':>8} {'v/cat':>6} {'RSS':>6} {'XAPI unpack MiB/s':>17}"
    )
    for r in rows:
        print(
            f"{r['compression']:>11} {r['xva_bytes'] / MiB:8.0f} {r['xva_bytes'] / data:8.2f} "
            f"{r['write']['seconds']:8.2f} {r['write_ratio']:6.2f} "
            f"{r['write']['peak_rss_mib']:6.1f} {r['verify']['seconds']:8.2f} "
            f"{r['verify_ratio']:6.2f} {r['verify']['peak_rss_mib']:6.1f} "
            f"{r['decompress_mibps']:17.0f}"
        )
    print(
        "pub/data: published bytes / data bytes; w/cat: XVA write throughput / cat of the raw "
        "disk; v/cat: verify throughput / cat of the XVA; RSS: peak RSS in MiB"
    )
    if args.json:
        print(json.dumps({"virtual": virtual, "data": data, "cat_raw": cat_raw, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
