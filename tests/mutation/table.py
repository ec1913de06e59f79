"""Print the mutation table: defect, checks that failed, checks expected to fail.

    .venv/bin/python tests/mutation/table.py [OUTCOMES.json]

Without an outcomes file (written by test_mutation.py as mutation-outcomes.json in
MUTATION_WORKDIR) it prints the table as declared, so the docs can show it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


@dataclass(frozen=True)
class Row:
    defect: str
    failed: tuple[str, ...] | None  # None: not run
    expected: tuple[str, ...]
    note: str = ""  # shown after the expected ids, e.g. for defects that make the clone unreachable
    seconds: int | None = None  # from the command's start to its verdict
    boot_seconds: int | None = None  # unreachable clones: from the boot's start to its diagnosis

    @property
    def verdict(self) -> str:
        if self.failed is None:
            return "not run"
        want = set(self.expected)
        return "ok" if set(self.failed) == want else "MISMATCH"


def _cell(ids: Iterable[str], limit: int = 3) -> str:
    ids = sorted(ids)
    if len(ids) > limit:
        return ", ".join(ids[:limit]) + f" (+{len(ids) - limit} more)"
    return ", ".join(ids) or "-"


def format_table(rows: list[Row]) -> str:
    header = ("defect", "checks that failed", "expected", "reported after", "result")
    cells = [header] + [
        (
            r.defect,
            "(not run)" if r.failed is None else _cell(set(r.failed)),
            r.note or _cell(r.expected),
            "-"
            if r.seconds is None
            else f"{r.seconds} s"
            + (f" (boot failed after {r.boot_seconds} s)" if r.boot_seconds else ""),
            r.verdict,
        )
        for r in rows
    ]
    n = len(header)
    widths = [max(len(c[i]) for c in cells) for i in range(n)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(n)).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _outcome(raw: object) -> tuple[tuple[str, ...] | None, int | None, int | None]:
    """An outcome as test_mutation.py records it (a dict; older files: a list of ids)."""
    if raw is None:
        return None, None, None
    if isinstance(raw, dict):
        seconds, boot = raw.get("seconds"), raw.get("boot_failed_after")
        return (
            tuple(raw.get("failed", ())),
            int(seconds) if seconds is not None else None,
            int(boot) if boot is not None else None,
        )
    return tuple(raw), None, None  # type: ignore[arg-type]


def rows_from(outcomes: dict[str, object] | None) -> list[Row]:
    from defects import DEFECTS

    outcomes = outcomes or {}
    failed, seconds, _ = _outcome(outcomes.get("good"))
    rows = [Row("(good image)", failed, (), "", seconds, None)]
    for d in DEFECTS:
        failed, seconds, boot = _outcome(outcomes.get(d.name))
        note = f"{', '.join(d.fails)} + every booted check (unreachable)" if d.boot_fails else ""
        expected = tuple(sorted(d.expected_failures()))
        rows.append(Row(d.name, failed, expected, note, seconds, boot))
    return rows


def main(argv: list[str]) -> int:
    outcomes = json.loads(Path(argv[0]).read_text()) if argv else None
    rows = rows_from(outcomes)
    print(format_table(rows))
    return 1 if any(r.verdict == "MISMATCH" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
