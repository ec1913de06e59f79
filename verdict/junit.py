"""One JUnit file per OS, for CI's test report: the build, each check, each missing check.

Secrets are masked in every message; the file is written whole or not at all.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from core.files import atomic_writer
from core.redact import Redactor


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
