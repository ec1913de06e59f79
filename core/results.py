"""The contract between a session and the publish step: `reports/results.json` and its schema.

The verdict validates what it writes and the publisher validates what it reads, against the
same schema, so a file one accepts the other accepts.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).parent / "schemas" / "results.schema.json"
SCHEMA_ID = "xcpng-templates/results/v1"


@cache
def results_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def schema_error(data: Any) -> str | None:
    """The most relevant way `data` breaks the schema, as `where: what`, or None if valid."""
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(results_schema()).iter_errors(data)
    )
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"{where}: {error.message}"
