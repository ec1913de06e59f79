"""What a session leaves behind: reports/results.json, one JUnit file per OS, a summary table.

results.json is validated against its JSON Schema before it is written, so the publish step
can trust its shape; a file that fails validation is a bug here, not something to publish.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from core.files import atomic_writer
from core.redact import Redactor
from core.results import schema_error


def validate_results(data: dict[str, Any]) -> None:
    """A results file that breaks its own schema is a bug here, never something to publish."""
    error = schema_error(data)
    if error is not None:
        raise ValueError(f"results.json would not match its schema at {error}")


def write_junit(path: Path, os_result: dict[str, Any], redact: Redactor) -> None:
    """One testsuite per OS; each testcase named `[os] check-id: rationale`."""
    name = os_result["name"]
    tests = os_result["tests"]
    failures = sum(1 for t in tests if t["outcome"] == "failed")
    errors = sum(1 for t in tests if t["outcome"] == "error")
    skipped = sum(1 for t in tests if t["outcome"] == "skipped")
    suite = ET.Element(
        "testsuite",
        name=f"templates.{name}",
        tests=str(len(tests) + (1 if os_result["build"]["status"] == "failed" else 0)),
        failures=str(failures),
        errors=str(errors + (1 if os_result["build"]["status"] == "failed" else 0)),
        skipped=str(skipped),
        time=f"{sum(t['duration_s'] for t in tests):.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("os", name),
        ("family", os_result["family"]),
        ("version", os_result["version"]),
        ("build", os_result["build"]["status"]),
        ("verdict", os_result["verdict"]),
        ("failure_class", os_result["failure_class"] or ""),
    ):
        ET.SubElement(props, "property", name=key, value=str(value))
    build = os_result["build"]
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"{name}.build",
        name=f"[{name}] build",
        time=f"{build.get('duration_s') or 0:.3f}",
    )
    if build["status"] == "failed":
        ET.SubElement(case, "error", message=redact(str(build.get("message"))))
    for t in tests:
        label = t["check_id"] or t["nodeid"].split("::")[-1]
        title = f"[{name}] {label}" + (f": {t['rationale']}" if t.get("rationale") else "")
        # the module's own name: node ids are relative to a rootdir that depends on where
        # pytest was started
        module = Path(t["nodeid"].split("::")[0]).stem
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{name}.{module}",
            name=title,
            time=f"{t['duration_s']:.3f}",
        )
        cprops = ET.SubElement(case, "properties")
        ET.SubElement(cprops, "property", name="check_id", value=t["check_id"] or "")
        ET.SubElement(cprops, "property", name="os", value=name)
        ET.SubElement(cprops, "property", name="nodeid", value=t["nodeid"])
        msg = redact(t.get("message") or "")
        if t["outcome"] == "failed":
            el = ET.SubElement(case, "failure", message=msg.splitlines()[-1][:500] if msg else "")
            el.text = msg
        elif t["outcome"] == "error":
            el = ET.SubElement(case, "error", message=msg.splitlines()[-1][:500] if msg else "")
            el.text = msg
        elif t["outcome"] == "skipped":
            ET.SubElement(case, "skipped", message=msg[:500])
    for cid in os_result["checks"]["missing"]:
        case = ET.SubElement(
            suite, "testcase", classname=f"{name}.missing", name=f"[{name}] {cid}", time="0"
        )
        ET.SubElement(case, "error", message=f"expected check {cid} did not run")
    ET.indent(suite)
    with atomic_writer(path) as fh:  # whole or not at all, like every report
        ET.ElementTree(suite).write(fh, encoding="utf-8", xml_declaration=True)


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
