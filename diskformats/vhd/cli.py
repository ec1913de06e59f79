"""The VHD commands: info, verify, to-raw, from-raw (`xcpng-golden vhd ...`).

Exit 0 on success, 1 when the VHD (or raw disk) is bad, with one line naming the structure at
fault, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from core.commands import Command, Run
from diskformats.guard import guarded
from diskformats.vhd import COMPRESSIONS, VhdError
from diskformats.vhd.reader import VhdInfo, verify, vhd_to_raw
from diskformats.vhd.writer import raw_to_vhd


def _vhd_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("vhd", type=Path, help="a dynamic VHD, plain or bzip2'd (.vhd.bz2)")
    p.add_argument("--json", action="store_true")


def _to_raw_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("vhd", type=Path)
    p.add_argument("raw", type=Path)


def _from_raw_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("raw", type=Path)
    p.add_argument("vhd", type=Path)
    p.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default="none",
        help="bzip2 makes the .vhd.bz2 CloudStack registers and unpacks itself (default none)",
    )


def _show(info: VhdInfo, as_json: bool, path: Path) -> None:
    if as_json:
        print(json.dumps(info.to_json(), indent=2))
        return
    print(
        f"{path}: {info.disk_type} VHD ({info.compression}), {info.size} bytes, "
        f"{info.allocated} of {info.blocks} blocks of {info.block_size} bytes stored, "
        f"creator {info.creator!r}, created {info.created}"
    )


def _info(args: argparse.Namespace) -> None:
    _show(verify(args.vhd), args.json, args.vhd)


def _verify(args: argparse.Namespace) -> None:
    info = verify(args.vhd)
    _show(info, args.json, args.vhd)
    if not args.json:
        print(f"{args.vhd}: OK")


def _to_raw(args: argparse.Namespace) -> None:
    vhd_to_raw(args.vhd, args.raw)
    print(f"{args.raw}: written from {args.vhd}")


def _from_raw(args: argparse.Namespace) -> None:
    raw_to_vhd(args.raw, args.vhd, compression=args.compression)
    print(f"{args.vhd}: written from {args.raw}")


def _guarded(body: Callable[[argparse.Namespace], None], reads_raw: bool = False) -> Run:
    fix = "re-download or re-export it (a partial copy or bad medium)"
    return guarded(body, VhdError, "vhd", fix, reads_raw)


COMMANDS = (
    Command(
        "info",
        "show the disk a VHD holds (reads and checks it whole)",
        "debian12.vhd.bz2 --json",
        _vhd_argument,
        _guarded(_info),
    ),
    Command(
        "verify",
        "check footer, header, allocation table and every stored block",
        "debian12.vhd.bz2",
        _vhd_argument,
        _guarded(_verify),
    ),
    Command(
        "to-raw",
        "verify and write the disk as a sparse raw image",
        "debian12.vhd.bz2 disk.raw",
        _to_raw_arguments,
        _guarded(_to_raw),
    ),
    Command(
        "from-raw",
        "make a dynamic VHD (optionally .vhd.bz2) from a raw disk image",
        "disk.raw debian12.vhd.bz2 --compression bzip2",
        _from_raw_arguments,
        _guarded(_from_raw, reads_raw=True),
    ),
)
