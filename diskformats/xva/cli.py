"""The XVA commands: info, verify, to-raw, from-raw (`xcpng-golden xva ...`).

Exit 0 on success, 1 when the XVA (or raw disk) is bad, with one line naming the member at
fault, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from core.commands import Command, Run
from core.settings import parse_size
from diskformats.guard import guarded
from diskformats.xva import XvaError, ovaxml
from diskformats.xva.reader import compression_of, header_only, verify, xva_to_raw
from diskformats.xva.writer import COMPRESSIONS, DEFAULT_COMPRESSION, raw_to_xva


def _xva_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("xva", type=Path)
    p.add_argument("--json", action="store_true")


def _to_raw_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("xva", type=Path)
    p.add_argument("raw", type=Path)
    p.add_argument("--disk", help="the disk's Ref:N (default: the boot disk)")


def _from_raw_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("raw", type=Path)
    p.add_argument("xva", type=Path)
    p.add_argument("--name", required=True, help="the VM's name_label")
    p.add_argument("--memory", default="1G", help="VM memory (default 1G)")
    p.add_argument("--vcpus", type=int, default=1)
    p.add_argument(
        "--firmware",
        choices=("auto", "bios", "uefi"),
        default="auto",
        help="auto (default): uefi for a GPT disk with an EFI system partition and no BIOS "
        "boot partition, else bios",
    )
    p.add_argument("--template", action="store_true", help="import as a template")
    p.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default=DEFAULT_COMPRESSION,
        help=f"how the XVA is stored; XCP-ng 8.2 and 8.3 import all three "
        f"(default {DEFAULT_COMPRESSION})",
    )
    p.add_argument("--level", type=int, help="compression level (default: zstd 3, gzip 6)")


def _info(args: argparse.Namespace) -> None:
    header = header_only(args.xva)
    with args.xva.open("rb") as fh:
        compression = compression_of(fh.read(512))
    out: dict[str, object] = {
        "vm": ovaxml.vm_summary(header),
        "compression": compression,
        "disks": [d.__dict__ for d in ovaxml.disks(header)],
    }
    _show(out, args.json)


def _verify(args: argparse.Namespace) -> None:
    info = verify(args.xva)
    _show(info.to_json(), args.json)
    if not args.json:
        print(f"{args.xva}: OK")


def _to_raw(args: argparse.Namespace) -> None:
    xva_to_raw(args.xva, args.raw, disk=args.disk)
    print(f"{args.raw}: written from {args.xva}")


def _from_raw(args: argparse.Namespace) -> None:
    memory = parse_size(args.memory, "--memory")
    raw_to_xva(
        args.raw,
        args.xva,
        args.name,
        memory=memory,
        vcpus=args.vcpus,
        firmware=args.firmware,
        template=args.template,
        compression=args.compression,
        level=args.level,
    )
    print(f"{args.xva}: written from {args.raw}")


def _guarded(body: Callable[[argparse.Namespace], None], reads_raw: bool = False) -> Run:
    fix = "re-export or re-download it (a partial copy or bad medium)"
    return guarded(body, XvaError, "xva", fix, reads_raw)


COMMANDS = (
    Command(
        "info",
        "show the VM and disks an XVA describes (reads ova.xml)",
        "artifacts/debian12/debian12.xva --json",
        _xva_argument,
        _guarded(_info),
    ),
    Command(
        "verify",
        "check order, checksums and completeness of every chunk",
        "debian12.xva",
        _xva_argument,
        _guarded(_verify),
    ),
    Command(
        "to-raw",
        "verify and write one disk as a sparse raw image",
        "debian12.xva disk.raw",
        _to_raw_arguments,
        _guarded(_to_raw),
    ),
    Command(
        "from-raw",
        "make an importable XVA from a raw disk image",
        "disk.raw debian12.xva --name debian12 --memory 2G --template",
        _from_raw_arguments,
        _guarded(_from_raw, reads_raw=True),
    ),
)


def _show(data: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
        return
    vm = data["vm"]
    assert isinstance(vm, dict)
    kind = "template" if vm.get("is_a_template") else "VM"
    print(
        f"{kind} {vm.get('name')!r} (export_vsn {vm.get('export_vsn')}, "
        f"compression {data.get('compression')})"
    )
    disks = data["disks"]
    assert isinstance(disks, list)
    for d in disks:
        size = d.get("virtual_size", d.get("size"))
        stored = (
            f", {d['chunks']} chunks, {d['stored_bytes']} bytes stored" if "chunks" in d else ""
        )
        print(f"  disk {d['ref']} userdevice {d.get('userdevice')}: {size} bytes{stored}")
