"""Reading `reports/results.json`: validated against the harness's schema, or refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import UsageError
from core.results import SCHEMA_ID, schema_error


@dataclass(frozen=True)
class Results:
    path: Path
    data: dict[str, Any]

    @property
    def base(self) -> Path:
        return self.path.parent

    def resolve(self, value: str | None) -> Path | None:
        """A path from the results: absolute as is, else relative to the cwd or results.json."""
        if not value:
            return None
        p = Path(value)
        if p.is_absolute():
            return p
        return p if p.exists() else self.base / p


def load_results(path: Path) -> Results:
    """Load and validate one results file; any doubt is a UsageError naming cause and fix."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        raise UsageError(
            f"{path}: results file not found; run the harness (it writes reports/results.json)"
        ) from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read the results file ({e.strerror})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UsageError(
            f"{path}: not valid JSON (line {e.lineno}: {e.msg}); the run was probably interrupted, "
            "rerun the harness"
        ) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_ID:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise UsageError(
            f"{path}: not a harness results file (schema {found!r}, expected {SCHEMA_ID!r}); "
            "pass the results.json this harness wrote"
        )
    error = schema_error(data)
    if error is not None:
        raise UsageError(
            f"{path}: results do not match the schema at {error}; "
            "rerun the harness with the same version as the publisher"
        )
    return Results(path=path, data=data)
