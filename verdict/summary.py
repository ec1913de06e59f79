"""The verdict as a table: in the terminal at session end and in the GitHub job summary."""

from __future__ import annotations

from typing import Any


def _dur(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 60}m{s % 60:02d}s"


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, r in sorted(results["os"].items()):
        c = r["checks"]
        rows.append(
            [
                name,
                f"{r['build']['status']} {_dur(r['build'].get('duration_s'))}",
                str(len(c["passed"])),
                str(len(c["failed"]) + len(c["missing"])),
                str(len(c["skipped"])),
                r["verdict"].upper(),
                r["failure_class"] or "",
            ]
        )
    return rows


HEADER = ["OS", "build", "passed", "failed", "skipped", "verdict", "class"]


def summary_text(results: dict[str, Any]) -> str:
    rows = [HEADER, *summary_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if results["partial"]:
        lines.append("PARTIAL RUN (" + "; ".join(results["partial_reasons"]) + "): not publishable")
    for name, r in sorted(results["os"].items()):
        for reason in r["reasons"][:10]:
            lines.append(f"  {name}: {reason}")
    return "\n".join(lines)


def summary_markdown(results: dict[str, Any]) -> str:
    out = ["### XCP-ng templates", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in summary_rows(results):
        out.append("| " + " | ".join(row) + " |")
    if results["partial"]:
        out += [
            "",
            "**Partial run** (" + "; ".join(results["partial_reasons"]) + "): not publishable.",
        ]
    for name, r in sorted(results["os"].items()):
        for reason in r["reasons"][:10]:
            out.append(f"- `{name}`: {reason}")
    return "\n".join(out) + "\n"
