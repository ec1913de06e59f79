"""Configuration text as the checks read it: `#` starts a comment, to the end of the line."""

from __future__ import annotations


def uncommented(line: str) -> str:
    """The line without its comment and surrounding blanks ("" for a comment or blank line)."""
    return line.split("#", 1)[0].strip()
