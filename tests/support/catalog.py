"""Test support: a store filled by the real publisher with real XVAs and real JUnit reports.

Three OSes (debian12 with two builds, alma9 with a skipped check, ubuntu2404), each artifact a
small XVA the XAPI twin imports, each JUnit written by the verdict's own writer so that the
catalog page finds every check's rationale where a real run leaves it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from core.redact import Redactor
from core.settings import Settings
from diskformats.xva.writer import raw_to_xva
from publish import api
from publish.stores.base import Store
from tests.support.publishing import CHECKS, fake_os, rebind_inventory, write_results
from verdict.junit import write_junit

RATIONALES = {
    "ssh-01": "password logins are refused: a template must not ship a guessable door",
    "ssh-02": "host keys are generated on first boot, never shared by every clone",
    "hyg-01": "no installer leftovers or machine-id in the image",
    "xen-01": "the guest tools report the IP and OS to XCP-ng",
}
FIRST = 1_763_900_000.0  # build times (epoch s) of the two debian12 builds
SECOND = FIRST + 86400 * 3


def xva_of(path: Path, name: str, data_mib: int = 1) -> Path:
    """A template XVA whose disk holds `data_mib` MiB of random data at its start and a marker,
    "the end", at 5 MiB + 100 (an XVA omits the zero chunks between)."""
    raw = path.with_suffix(".raw")
    with raw.open("wb") as fh:
        fh.write(hashlib.shake_256(f"{name}{path}".encode()).digest(data_mib << 20))
        fh.truncate(max(6, data_mib + 2) << 20)
        fh.seek((5 << 20) + 100)
        fh.write(b"the end")
    raw_to_xva(raw, path, name, template=True)
    raw.unlink()
    return path


def make_os(
    root: Path,
    name: str,
    *,
    built_at: float,
    version: str,
    skipped: dict[str, str] | None = None,
    data_mib: int = 1,
) -> dict[str, Any]:
    """fake_os with a real XVA as its artifact and a JUnit carrying the rationales."""
    rec = fake_os(root, name, built_at=built_at, version=version)
    artifact = Path(rec["build"]["artifact"])
    xva_of(artifact, f"{name}-golden", data_mib)
    data = artifact.read_bytes()
    rec["build"].update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    rebind_inventory(rec)
    skipped = skipped or {}
    rec["checks"]["passed"] = [c for c in CHECKS if c not in skipped]
    rec["checks"]["skipped"] = [{"id": c, "code": code} for c, code in skipped.items()]
    rec["tests"] = [
        {
            "nodeid": f"validations/test_{cid.split('-')[0]}.py::test_{cid}[{name}]",
            "check_id": cid,
            "rationale": RATIONALES[cid],
            "outcome": "skipped" if cid in skipped else "passed",
            "phase": "call",
            "duration_s": 0.5,
            "message": f"[skip-code:{skipped[cid]}] no Xen here" if cid in skipped else None,
            "skip_code": skipped.get(cid),
        }
        for cid in CHECKS
    ]
    write_junit(root / "reports" / rec["junit"], rec, Redactor([]))
    return rec


def publish_three(root: Path, to: str, settings: Settings, store: Store | None = None) -> None:
    """debian12 twice (the second build is the latest), alma9 and ubuntu2404 once (larger than
    the importer holds back, so that it streams)."""
    first = root / "run1"
    path = write_results(
        first,
        [make_os(first, "debian12", built_at=FIRST, version="12")],
        revision="1111111111111111aaaa",
        committed_at=FIRST - 600,
    )
    assert api.publish_results([path], to, settings, log=_quiet, store=store).ok
    second = root / "run2"
    oses = [
        make_os(second, "debian12", built_at=SECOND, version="12"),
        make_os(
            second, "alma9", built_at=SECOND, version="9", skipped={"xen-01": "platform-has-no-xen"}
        ),
        make_os(second, "ubuntu2404", built_at=SECOND, version="24.04", data_mib=6),
    ]
    path = write_results(second, oses, revision="2222222222222222bbbb", committed_at=SECOND - 600)
    assert api.publish_results([path], to, settings, log=_quiet, store=store).ok


def _quiet(_msg: str) -> None:
    pass
