"""Prints the mutation table at the end of a run and keeps the outcomes for table.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    import sys

    module = sys.modules.get("test_mutation")
    outcomes = getattr(module, "OUTCOMES", None)
    if not outcomes:
        return
    from table import format_table, rows_from

    rows = [r for r in rows_from(outcomes) if r.failed is not None]
    terminalreporter.write_sep("=", "mutation table")
    terminalreporter.write_line(format_table(rows))
    target = os.environ.get("MUTATION_WORKDIR")
    if target:
        path = Path(target) / "mutation-outcomes.json"
        path.write_text(json.dumps(outcomes, indent=1, sort_keys=True))
        terminalreporter.write_line(
            f"outcomes: {path} (print again: python tests/mutation/table.py {path})"
        )
