"""Every `xcpng-golden ...` and `pytest ...` command line the README and the site show still
parses (tests/support/doc_commands.py says how, without building or booting anything)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.doc_commands import ROOT, DocCommand, all_commands, check, commands_in

COMMANDS = all_commands()
# one run per distinct command line; the test id names where it is shown first
UNIQUE: dict[tuple[str, tuple[str, ...], str], DocCommand] = {}
for _c in COMMANDS:
    UNIQUE.setdefault((_c.program, _c.args, _c.refusal), _c)


def test_the_docs_show_both_kinds() -> None:
    programs = {c.program for c in COMMANDS}
    assert programs == {"xcpng-golden", "pytest"}
    assert len(COMMANDS) > 30
    assert any(c.refusal for c in COMMANDS)  # fleet/index.md's refused ubuntu2404


@pytest.mark.parametrize("cmd", list(UNIQUE.values()), ids=lambda c: c.where())
def test_documented_command_parses(cmd: DocCommand, tmp_path: Path) -> None:
    problem = check(cmd, tmp_path)
    assert problem is None, f"{cmd.where()}: {cmd.text}\n  {problem}"


BROKEN = """\
# A page

Text with `xcpng-golden store fetch --form x` in prose, which is not a command line.

```sh
export XCPNG_URL=https://pool
xcpng-golden store fetch --from s3://b/t --os debian12 --to ~/t   # fine
xcpng-golden store fetch --form s3://b/t --os debian12 --to .     # --from misspelt
xcpng-golden xva from-raw disk.raw image.xva --name debian12 \\
    [--firmware auto|bios|uefi] [--level N]
xcpng-golden pool nuke --all
xcpng-golden store prune --keep 5 --to published --dry-rn
```

    .venv/bin/pytest --os debian12 --platform local --keep-vm sometimes
    .venv/bin/pytest --list-os

    $ .venv/bin/pytest --os ubuntu2404 --platform local
    ERROR: a refusal the harness does not give
"""


def test_a_broken_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(BROKEN)
    found = commands_in(page)
    assert [(c.line, c.program) for c in found] == [
        (7, "xcpng-golden"),
        (8, "xcpng-golden"),
        (9, "xcpng-golden"),
        (11, "xcpng-golden"),
        (12, "xcpng-golden"),
        (15, "pytest"),
        (16, "pytest"),
        (18, "pytest"),
    ]
    assert found[2].args == (
        "xva", "from-raw", "disk.raw", "image.xva", "--name", "debian12",
        "--firmware", "auto", "--level", "1",
    )  # fmt: skip
    problems = {c.where(tmp_path): check(c, tmp_path) for c in found}
    assert problems["page.md:7"] is None
    assert "arguments are required: --from" in str(problems["page.md:8"])
    assert problems["page.md:9"] is None
    assert "invalid choice: 'nuke'" in str(problems["page.md:11"])
    assert "unrecognized arguments: --dry-rn" in str(problems["page.md:12"])
    assert "invalid choice: 'sometimes'" in str(problems["page.md:15"])
    assert problems["page.md:16"] is None
    assert "documented refusal not given" in str(problems["page.md:18"])


def test_the_real_docs_hold_no_broken_line() -> None:
    assert all(c.path.is_relative_to(ROOT) for c in COMMANDS)
    assert not any("--form " in c.text for c in COMMANDS)
