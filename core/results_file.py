"""`reports/results.json`, the contract between a session and the publish step: its schema,
the writer's check and the reader's load.

The harness validates what it writes and the publisher validates what it reads, against the
same schema, so a file one accepts the other accepts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from core.errors import UsageError

SCHEMA_PATH = Path(__file__).parent / "schemas" / "results.schema.json"
SCHEMA_ID = "xcpng-templates/results/v1"


@cache
def results_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def schema_error(data: Any) -> str | None:
    """The most relevant way `data` breaks the schema, as `where: what`, or None if valid."""
    # imported here: jsonschema loads its optional format checkers (rfc3987_syntax builds a
    # grammar), 2 s of start-up that every pytest process and xdist worker would pay
    import jsonschema

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(results_schema()).iter_errors(data)
    )
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"{where}: {error.message}"


def validate_results(data: dict[str, Any]) -> None:
    """A results file that breaks its own schema is a bug here, never something to publish."""
    error = schema_error(data)
    if error is not None:
        raise ValueError(f"results.json would not match its schema at {error}")


@dataclass(frozen=True)
class Results:
    """One results.json as the publisher reads it: validated, with where it came from."""

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
