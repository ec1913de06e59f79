"""The `xcpng-golden ...` and `pytest ...` command lines the documentation shows, and whether
each still parses.

A command is a line of a code block (fenced, or indented by four spaces) of README.md or
docs/**/*.md that starts with `xcpng-golden` or `pytest` (after an optional `$ ` prompt and
`.venv/bin/`), joined with the lines its trailing backslashes continue to, its `# comment`
dropped. Synopsis notation is read as an example: `[--opt VALUE]` as `--opt VALUE`, `a|b|c` as
`a`, the metavar `N` as 1. A `$ ` line followed by a line starting with `ERROR:` is a documented
refusal: it must still be refused with those words.

How each is checked, without building or booting anything:
- `xcpng-golden ...`: the real parser parses the line (an unknown option, a missing argument,
  a bad choice or number fails), and the line with `--help` appended prints that command's
  help. Nothing runs: parsing never calls a command.
- `pytest ...`: the line runs with `--collect-only -q -p no:cacheprovider` appended, which
  parses every option and the harness's settings, reads the catalog, collects, and does
  nothing else (no preflight, build, boot or file written). `-n K` stays on the line: xdist
  starts no worker to collect only. A path given to `--xva` that does not exist is a
  placeholder: an empty file of that name stands in.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from xcpng_golden.main import main as xcpng_golden_main
from xcpng_golden.main import parser as xcpng_golden_parser

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("xcpng-golden", "pytest")
_START = re.compile(r"^\s*(\$ )?(\.venv/bin/)?(xcpng-golden|pytest)(\s|$)")


@dataclass(frozen=True)
class DocCommand:
    path: Path
    line: int
    text: str  # as shown, continuations joined
    program: str
    args: tuple[str, ...]  # after the program, synopsis read as an example
    refusal: str = ""  # the documented ERROR: line, for a refusal shown as a transcript

    def where(self, root: Path = ROOT) -> str:
        try:
            shown = self.path.relative_to(root)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}"


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def _code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every line inside a code block."""
    out: list[tuple[int, str]] = []
    fence = False
    for n, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if fence:
            out.append((n, line))
        elif line.startswith("    ") and line.strip():
            out.append((n, line[4:]))
    return out


def _example(words: list[str]) -> list[str]:
    """Synopsis notation as an example: brackets dropped, first alternative, N as 1."""
    out = []
    for w in words:
        w = w.removeprefix("[").removesuffix("]")
        if "|" in w and not w.startswith(("-", "s3://", "/")):
            w = w.split("|")[0]
        out.append("1" if w == "N" else w)
    return [w for w in out if w]


def commands_in(path: Path) -> list[DocCommand]:
    lines = _code_lines(path.read_text())
    found: list[DocCommand] = []
    i = 0
    while i < len(lines):
        n, line = lines[i]
        i += 1
        m = _START.match(line)
        if not m:
            continue
        text = line.strip()
        while text.endswith("\\") and i < len(lines) and lines[i][0] == lines[i - 1][0] + 1:
            text = text[:-1].rstrip() + " " + lines[i][1].strip()
            i += 1
        words = shlex.split(text, comments=True)
        if words[0] == "$":
            words = words[1:]
        refusal = ""
        if m.group(1) and i < len(lines) and lines[i][1].startswith("ERROR:"):
            refusal = lines[i][1].removeprefix("ERROR:").strip()
        found.append(
            DocCommand(
                path=path,
                line=n,
                text=text,
                program=m.group(3),
                args=tuple(_example(words[1:])),
                refusal=refusal,
            )
        )
    return found


def all_commands(root: Path = ROOT) -> list[DocCommand]:
    return [c for f in doc_files(root) for c in commands_in(f)]


def _check_xcpng_golden(cmd: DocCommand) -> str | None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            xcpng_golden_parser().parse_args(list(cmd.args))
        except SystemExit as exc:
            return f"does not parse (exit {exc.code}): {err.getvalue().strip().splitlines()[-1]}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            xcpng_golden_main([*cmd.args, "--help"])
        except SystemExit as exc:
            if exc.code == 0 and out.getvalue().startswith("usage: xcpng-golden"):
                return None
            return f"--help exited {exc.code}: {err.getvalue().strip()[-300:]}"
    return "--help printed no help"


def _check_pytest(cmd: DocCommand, scratch: Path) -> str | None:
    args = list(cmd.args)
    for k, a in enumerate(args[:-1]):
        if a == "--xva" and not (ROOT / args[k + 1]).exists():
            stand_in = scratch / "stand-ins" / Path(args[k + 1]).name
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.touch()
            args[k + 1] = str(stand_in)
    env = {
        **os.environ,
        "TEMPLATE_ARTIFACTS_DIR": str(scratch / "artifacts"),
        "TEMPLATE_REPORTS_DIR": str(scratch / "reports"),
        "TEMPLATE_CACHE_DIR": str(scratch / "cache"),
    }
    pytest = ROOT / ".venv" / "bin" / "pytest"
    argv = [str(pytest) if pytest.exists() else "pytest", *args]
    argv += ["--collect-only", "-q", "-p", "no:cacheprovider"]
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    said = (run.stdout + run.stderr).strip()
    if cmd.refusal:
        if run.returncode != 0 and cmd.refusal[:60] in said.replace(str(ROOT), "..."):
            return None
        return f"documented refusal not given (exit {run.returncode}): {said[-300:]}"
    if run.returncode == 0:
        return None
    return f"does not parse or collect (exit {run.returncode}): {said[-400:]}"


def check(cmd: DocCommand, scratch: Path) -> str | None:
    """None when the command line still parses; else what went wrong."""
    if cmd.program == "xcpng-golden":
        return _check_xcpng_golden(cmd)
    return _check_pytest(cmd, scratch)
