"""The small core every phase imports: records and errors, settings, redaction, signals, files.

It imports nothing else of the project. Above it sit the phases (build/, platforms/,
validations/, verdict/, publish/), and above them the pytest plugin (harness/), which nothing
imports. tests/unit/test_layers.py fails if a dependency ever points the other way.

`__version__` is the project's one version: pyproject.toml's, as the installed distribution
reports it (read from pyproject.toml itself in a checkout that was never installed). The
results, the published metadata and `xcpng-golden version` all carry it.
"""

import tomllib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "xcpng-golden"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return str(tomllib.loads(PYPROJECT.read_text())["project"]["version"])


__version__ = _version()
