"""`PUT /import` as xen-api does it (`import.ml`, `stream_vdi.ml`), written independently of
`diskformats.xva` so the two check each other: ova.xml first, checked against the release's
version rule and required record fields (`datamodel.py`), objects created from it, then each
non-CD disk received chunk by chunk with its checksum verified; on any error everything the
import created is removed again.

Compression as `Import.with_open_archive` detects it, by content only: a first block that is
a tar header is a plain XVA; else the zstd magic means zstd, and anything else is tried as
gzip (so garbage fails as a gzip error, as on XAPI). XCP-ng 8.2 and 8.3 both accept both."""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import xmlrpc.client
import zlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import xxhash
import zstandard

from tests.twins.xapi.datamodel import check_header
from tests.twins.xapi.db import NULL
from tests.twins.xapi.wire import XapiError

if TYPE_CHECKING:
    from tests.twins.xapi.server import XapiTwin


class Storage:
    """VDI contents as sparse files, or nowhere (hash-only) when `root` is None."""

    def __init__(self, root: Path | None):
        self.root = root

    def path(self, vdi_uuid: str) -> Path:
        assert self.root is not None
        return self.root / f"{vdi_uuid}.raw"

    def create(self, vdi_uuid: str, size: int) -> None:
        if self.root is not None:
            with self.path(vdi_uuid).open("wb") as fh:
                fh.truncate(size)

    def resize(self, vdi_uuid: str, size: int) -> None:
        if self.root is not None:
            with self.path(vdi_uuid).open("r+b") as fh:
                fh.truncate(size)

    def write(self, vdi_uuid: str, offset: int, data: bytes) -> None:
        if self.root is not None and data.count(0) != len(data):
            with self.path(vdi_uuid).open("r+b") as fh:
                fh.seek(offset)
                fh.write(data)

    def read(self, vdi_uuid: str) -> bytes:
        return self.path(vdi_uuid).read_bytes()

    def remove(self, vdi_uuid: str) -> None:
        if self.root is not None:
            self.path(vdi_uuid).unlink(missing_ok=True)


def _header(tar: tarfile.TarFile) -> dict[str, Any]:
    first = tar.next()
    if first is None or first.name != "ova.xml":
        raise XapiError("IMPORT_ERROR_UNEXPECTED_FILE", "ova.xml", first.name if first else "")
    fh = tar.extractfile(first)
    assert fh is not None
    text = fh.read().decode()
    try:
        (header,), _ = xmlrpc.client.loads(
            f"<methodResponse><params><param>{text}</param></params></methodResponse>"
        )
    except Exception as exc:
        raise XapiError("IMPORT_ERROR", f"ova.xml: {exc}") from None
    if not isinstance(header, dict):
        raise XapiError("IMPORT_ERROR", "ova.xml is not a struct")
    return header


def _objects(header: dict[str, Any], cls: str) -> list[dict[str, Any]]:
    return [o for o in header.get("objects", []) if o.get("class") == cls]


def _receive_disk(
    twin: XapiTwin, tar: tarfile.TarFile, prefix: str, vdi_uuid: str, size: int
) -> None:
    offset, last, first_len = 0, -1, -1
    while offset < size:
        hdr = tar.next()
        if hdr is None:
            raise XapiError("IMPORT_ERROR", f"End_of_file in {prefix} at {offset} of {size}")
        if not hdr.name.startswith(prefix + "/"):
            raise XapiError("IMPORT_ERROR", f"Expected VDI chunk prefixed {prefix}; got {hdr.name}")
        suffix = hdr.name[len(prefix) + 1 :]
        if not suffix.isdigit() or int(suffix) <= last:
            raise XapiError("IMPORT_ERROR", f"chunk {hdr.name} not in increasing order")
        fh = tar.extractfile(hdr)
        assert fh is not None
        data = fh.read()
        if len(data) % tarfile.BLOCKSIZE:
            # stream_vdi.ml reads the checksum member's header right after the data, before
            # skipping the chunk's padding: it finds zeros and the next header's start there
            raise XapiError("IMPORT_ERROR", "INTERNAL_ERROR: [ Tar_unix.Header.Checksum_mismatch ]")
        if first_len < 0:
            first_len = len(data)
        offset += (int(suffix) - last - 1) * first_len
        twin.storage.write(vdi_uuid, offset, data)
        csum_hdr = tar.next()
        if csum_hdr is None or csum_hdr.name not in (hdr.name + ".xxhash", hdr.name + ".checksum"):
            raise XapiError("IMPORT_ERROR", f"no checksum after {hdr.name}")
        cfh = tar.extractfile(csum_hdr)
        assert cfh is not None
        claimed = cfh.read().decode()
        if csum_hdr.name.endswith(".xxhash"):
            actual = f"{xxhash.xxh64_intdigest(data):016X}"
        else:
            actual = hashlib.sha1(data).hexdigest()
        if claimed != actual:
            raise XapiError(
                "IMPORT_ERROR",
                f"Block {hdr.name} checksum failed: original = {claimed}; recomputed = {actual}",
            )
        offset += len(data)
        last = int(suffix)
        twin.import_progress(len(data))


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DECOMPRESSION_ERRORS = (gzip.BadGzipFile, zlib.error, EOFError, zstandard.ZstdError)


class _Prefixed:
    """The stream with its first block, already read to sniff the format, put back."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = (self.head, b"") if n < 0 else (self.head[:n], self.head[n:])
            return out
        return self.rest.read(n)


def _is_tar_header(block: bytes) -> bool:
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def open_archive(stream: IO[bytes]) -> Any:
    """The XVA's tar stream, decompressed when it is not a plain tar."""
    head = stream.read(512)
    src = _Prefixed(head, stream)
    if _is_tar_header(head):
        return src
    if head.startswith(ZSTD_MAGIC):
        return zstandard.ZstdDecompressor().stream_reader(cast(Any, src))
    return gzip.GzipFile(fileobj=cast(Any, src))


def import_xva(twin: XapiTwin, stream: IO[bytes], sr: str, task: str) -> str:
    """Read the XVA from `stream`; return the new VM's ref (a template if the XVA says so)."""
    try:
        return _import(twin, open_archive(stream), sr, task)
    except DECOMPRESSION_ERRORS as exc:
        raise XapiError("IMPORT_ERROR", f"decompression failed: {exc}") from None


def _import(twin: XapiTwin, stream: IO[bytes], sr: str, task: str) -> str:
    tar = tarfile.open(fileobj=stream, mode="r|", bufsize=1 << 20)  # noqa: SIM115  # the stream's owner closes it
    header = _header(tar)
    check_header(twin.release, header)
    exported = {str(o.get("id")) for o in header.get("objects", [])}
    db = twin.db
    created: list[tuple[str, str]] = []
    try:
        vms = _objects(header, "VM")
        if len(vms) != 1:
            raise XapiError("IMPORT_ERROR", f"expected one VM in ova.xml, found {len(vms)}")
        snap = vms[0].get("snapshot", {})
        vm = db.add(
            "VM",
            {
                "name_label": snap.get("name_label", ""),
                "name_description": snap.get("name_description", ""),
                "is_a_template": bool(snap.get("is_a_template", False)),
                "is_control_domain": False,
                "power_state": "Halted",
                "domid": -1,
                "memory_static_max": int(snap.get("memory_static_max", 1 << 30)),
                "VCPUs_max": int(snap.get("VCPUs_max", 1)),
                "guest_metrics": NULL,
                "other_config": {**snap.get("other_config", {}), "import_task": task},
                "tags": [],
                "HVM_boot_params": snap.get("HVM_boot_params", {}),
            },
        )
        created.append(("VM", vm))
        ext_to_int: dict[str, str] = {}
        cd_vdis = set()
        for o in _objects(header, "VBD"):
            if str(o["snapshot"].get("type", "")).lower() == "cd":
                cd_vdis.add(o["snapshot"].get("VDI"))
        disks = []
        for o in sorted(_objects(header, "VDI"), key=lambda o: o["id"]):
            if o["id"] in cd_vdis:
                continue
            s = o["snapshot"]
            if str(s.get("SR")) not in exported:  # VDI.precheck: find_in_export vDI_SR
                raise XapiError("IMPORT_ERROR_FAILED_TO_FIND_OBJECT", str(s.get("SR")))
            size = int(s["virtual_size"])
            ref = db.add(
                "VDI",
                {
                    "name_label": s.get("name_label", ""),
                    "SR": sr,
                    "virtual_size": size,
                    "type": s.get("type", "user"),
                    "sharable": False,
                    "read_only": False,
                    "other_config": {},
                },
            )
            created.append(("VDI", ref))
            twin.storage.create(db.get("VDI", ref)["uuid"], size)
            ext_to_int[o["id"]] = ref
            disks.append((o["id"], ref, size))
        for o in _objects(header, "VBD"):
            s = o["snapshot"]
            if s.get("VDI") not in ext_to_int:
                continue
            ref = db.add(
                "VBD",
                {
                    "VM": vm,
                    "VDI": ext_to_int[s["VDI"]],
                    "userdevice": str(s.get("userdevice", "0")),
                    "bootable": bool(s.get("bootable", False)),
                    "mode": s.get("mode", "RW"),
                    "type": "Disk",
                    "empty": False,
                    "currently_attached": False,
                },
            )
            created.append(("VBD", ref))
        networks = db.refs("network", bridge="xenbr0")
        for o in _objects(header, "VIF"):
            s = o["snapshot"]
            ref = db.add(
                "VIF",
                {"VM": vm, "network": networks[0], "device": str(s.get("device", "0")), "MAC": ""},
            )
            created.append(("VIF", ref))
        for ext, ref, size in disks:
            _receive_disk(twin, tar, ext, db.get("VDI", ref)["uuid"], size)
        return vm
    except BaseException:
        for cls, ref in reversed(created):
            if ref in db.objects[cls]:
                if cls == "VDI":
                    twin.storage.remove(db.get("VDI", ref)["uuid"])
                db.remove(cls, ref)
        raise


def import_raw(twin: XapiTwin, stream: IO[bytes], length: int, vdi: str) -> None:
    """`PUT /import_raw_vdi?format=raw`: the body is the disk from byte 0."""
    rec = twin.db.get("VDI", vdi)
    if length > int(rec["virtual_size"]):
        raise XapiError("VDI_IO_ERROR", "raw image larger than the VDI")
    offset = 0
    while offset < length:
        data = stream.read(min(1 << 20, length - offset))
        if not data:
            raise XapiError("IMPORT_ERROR_PREMATURE_EOF")
        twin.storage.write(rec["uuid"], offset, data)
        offset += len(data)
    rec["physical_utilisation"] = length
