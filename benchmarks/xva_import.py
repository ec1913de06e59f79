"""Benchmark: import of a sparse and a dense XVA into the XAPI twin, against `cat` of the same
file, with this (harness) process's peak memory.

    .venv/bin/python benchmarks/xva_import.py            # 2 GiB sparse + 2 GiB dense
    .venv/bin/python benchmarks/xva_import.py --size 64M --json

The import is the platform's own path (task.create, streaming `PUT /import` with a
Content-Length, task polling) through the unmodified XenAPI client. The twin runs as a separate
process (it verifies every chunk's checksum, like XAPI), so the peak memory printed is the
harness side alone. `cat` reads the same file into /dev/null: the ceiling for reading it.
Both read from the page cache when the file fits in RAM; the ratio is what matters.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from core.ownership import temp_dir
from core.trees import remove_tree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.settings import parse_size  # noqa: E402
from diskformats.xva.writer import raw_to_xva  # noqa: E402
from platforms.xcpng.client import Xapi  # noqa: E402
from platforms.xcpng.transfer import put_file, result_ref, wait_task  # noqa: E402

MiB = 1 << 20


def make_sparse(path: Path, size: int) -> None:
    """A disk with 1 MiB of data every 256 MiB (a freshly installed image is mostly holes)."""
    block = os.urandom(MiB)
    with path.open("wb") as fh:
        fh.truncate(size)
        for offset in range(0, size - MiB + 1, 256 * MiB):
            fh.seek(offset)
            fh.write(block)


def make_dense(path: Path, size: int) -> None:
    """A disk full of incompressible, non-zero data (each chunk differs)."""
    block = bytearray(os.urandom(MiB))
    with path.open("wb") as fh:
        for n in range(size // MiB):
            block[:8] = n.to_bytes(8, "little")
            fh.write(block)
        if size % MiB:
            fh.write(bytes(block[: size % MiB]))


def cat_seconds(path: Path) -> float:
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["cat", str(path)], stdout=null, check=True)
    return time.perf_counter() - start


def start_twin(store: bool) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "tests.twins.xapi", "--port", "0"]
    if not store:
        args.append("--no-storage")
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def import_seconds(xapi: Xapi, xva: Path) -> float:
    start = time.perf_counter()
    task = xapi.call("task.create", "benchmark", xva.name)
    put_file(xapi, "/import", {"task_id": task}, xva, label=f"import {xva.name}")
    vm = result_ref(wait_task(xapi, task, xva.name))
    elapsed = time.perf_counter() - start
    xapi.call("task.destroy", task)
    for vbd in xapi.call("VM.get_VBDs", vm):
        vdi = xapi.call("VBD.get_VDI", vbd)
        xapi.call("VDI.destroy", vdi)
    xapi.call("VM.destroy", vm)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", default="2G", help="virtual size of each disk (default 2G)")
    p.add_argument("--workdir", type=Path, help="where the images go (default: a temp dir)")
    p.add_argument("--twin-storage", action="store_true", help="twin writes disks to files too")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    args = p.parse_args(argv)
    size = parse_size(args.size, "--size")
    work = temp_dir("xcpng-bench-xva", args.workdir)
    twin, url = start_twin(args.twin_storage)
    results: dict[str, Any] = {"size": size, "disks": {}}
    try:
        xapi = Xapi(url, "root", "twin-password").login()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        tracemalloc.start()
        for kind, make in (("sparse", make_sparse), ("dense", make_dense)):
            raw, xva = work / f"{kind}.raw", work / f"{kind}.xva"
            make(raw, size)
            t0 = time.perf_counter()
            raw_to_xva(raw, xva, kind)
            write_s = time.perf_counter() - t0
            raw.unlink()
            cat_s = cat_seconds(xva)
            imp_s = import_seconds(xapi, xva)
            xsize = xva.stat().st_size
            results["disks"][kind] = {
                "xva_bytes": xsize,
                "write_s": round(write_s, 3),
                "cat_s": round(cat_s, 3),
                "import_s": round(imp_s, 3),
                "cat_MiBps": round(xsize / MiB / max(cat_s, 1e-9), 1),
                "import_MiBps": round(xsize / MiB / max(imp_s, 1e-9), 1),
                "disk_MiBps": round(size / MiB / max(imp_s, 1e-9), 1),
                "import_vs_cat": round(imp_s / max(cat_s, 1e-9), 2),
            }
            xva.unlink()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        xapi.logout()
        results["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        results["rss_before_bytes"] = rss_before
        results["python_alloc_peak_bytes"] = traced_peak
    finally:
        twin.terminate()
        twin.wait(timeout=30)
        if twin.stdout is not None:
            twin.stdout.close()
        remove_tree(work)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"XVA import into the XAPI twin, disks of {size / MiB:.0f} MiB each")
    for kind, r in results["disks"].items():
        print(
            f"  {kind:6} XVA {r['xva_bytes'] / MiB:9.1f} MiB  write {r['write_s']:7.2f}s  "
            f"cat {r['cat_s']:6.2f}s ({r['cat_MiBps']:8.1f} MiB/s)  "
            f"import {r['import_s']:6.2f}s ({r['import_MiBps']:8.1f} MiB/s of XVA, "
            f"{r['disk_MiBps']:9.1f} MiB/s of disk)  import/cat {r['import_vs_cat']:.1f}x"
        )
    print(
        f"  peak RSS of this process {results['peak_rss_bytes'] / MiB:.1f} MiB "
        f"(before imports {results['rss_before_bytes'] / MiB:.1f} MiB); Python allocations "
        f"peaked at {results['python_alloc_peak_bytes'] / MiB:.1f} MiB during write+import"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
