"""Code root fetches from the network and runs at once: `curl … | sh` and its spellings.

A job that pipes a download into an interpreter runs whatever the server (or anyone on the
path to it, over plain HTTP) sends, as root, on every clone, with nothing on disk for a check
or a package database to judge. No permission on the image can make that safe, so the command
text itself is the finding. Spellings covered: a downloader piped into a shell or a language
interpreter (through sudo or env too), a command substitution or process substitution of a
downloader handed to a shell, `eval` or `source`. Comments are ignored. Pure.
"""

from __future__ import annotations

import re

DOWNLOADERS = r"(?:curl|wget|fetch|aria2c|busybox\s+wget)"
INTERPRETERS = (
    r"(?:(?:ba|da|z|k|mk|tc|c|fi)?sh|python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|php[0-9.]*|node|"
    r"nodejs|lua[0-9.]*|tclsh|pwsh|source|\.)"
)
_CMD = r"(?:^|[\s;&|(`])"  # where a command word may start
_PREFIX = r"(?:(?:sudo|env|exec|nohup|command)(?:\s+-\S+)*\s+(?:[A-Za-z_]\w*=\S*\s+)*)*"
_BIN = r"(?:/usr)?(?:/local)?(?:/s?bin/)?"
PATTERNS = (
    # curl -fsSL https://x/install.sh | sudo -E bash -s --
    re.compile(
        rf"{_CMD}{_BIN}{DOWNLOADERS}\b[^|;&\n]*\|\s*{_PREFIX}{_BIN}{INTERPRETERS}(?=$|[\s;&|)])"
    ),
    # sh -c "$(curl -fsSL https://x)", eval "$(wget -qO- …)", bash -c `curl …`
    re.compile(
        rf"{_CMD}(?:eval|{_BIN}{INTERPRETERS}\s+(?:-\S+\s+)*-c)\s+[\"']?(?:\$\(|`)\s*"
        rf"{_BIN}{DOWNLOADERS}\b[^)`\n]*[)`]?"
    ),
    # bash <(curl …), source <(wget -qO- …), . <(curl …)
    re.compile(
        rf"{_CMD}{_PREFIX}{_BIN}{INTERPRETERS}\s+(?:-\S+\s+)*<\(\s*{_BIN}{DOWNLOADERS}\b"
        r"[^)\n]*\)?"
    ),
)


def _uncommented(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def fetched_and_run(text: str) -> list[str]:
    """The spans of `text` that run downloaded code, shortened for a message."""
    body = _uncommented(text)
    out = []
    for pattern in PATTERNS:
        for match in pattern.finditer(body):
            span = " ".join(match.group(0).split())
            out.append(span if len(span) <= 100 else span[:97] + "...")
    return out


def findings(what: str, text: str) -> list[str]:
    """One line per spelling found in a command or script root runs."""
    return [
        f"{what}: runs code fetched from the network ({span}): whoever serves that address, or "
        "sits on the way to it, runs commands as root on every clone"
        for span in fetched_and_run(text)
    ]
