"""`--list-os`: the catalog as a table or JSON, printed before anything is collected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from build.catalog import describe, load_catalog
from core.errors import UsageError
from core.settings import Settings


def list_os(settings: Settings, root: Path, out: TextIO, err: TextIO) -> int:
    """Print every OS of the catalog; exit status 0, or 4 on a catalog error."""
    try:
        catalog = load_catalog(settings.packer_dir)
    except UsageError as exc:
        err.write(f"ERROR: {exc}\n")
        return 4
    rows = sorted((describe(s, root) for s in catalog.specs.values()), key=lambda r: r["name"])
    if settings.list_os_format == "json":
        out.write(json.dumps(rows, indent=2) + "\n")
        return 0
    table = [["NAME", "FAMILY", "VERSION", "TEMPLATES", "VAR FILE"]]
    for r in rows:

        def mark(key: str, value: str, r: dict[str, object] = r) -> str:
            return value + (" (inferred)" if key in r["inferred"] else "")  # type: ignore[operator]

        tpls = ", ".join(
            [f"{k}={v}" for k, v in r["templates"].items()] + [f"{k}: no" for k in r["refused"]]
        )
        table.append(
            [
                mark("os_name", r["name"]),
                mark("os_family", r["family"]),
                mark("os_version", r["version"]),
                tpls,
                r["var_file"] or "-",
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    refusals: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        for platform, why in r["refused"].items():
            refusals.setdefault((platform, why), []).append(r["name"])
    for (platform, why), names in sorted(refusals.items()):
        out.write(f"{platform}: no for {', '.join(names)}: the var file {why}\n")
    return 0
