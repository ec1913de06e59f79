"""`xcpng-golden`: one command for everything that is not a pytest run.

The dispatcher only: each command is described once beside its code (core.commands.Command),
and the `python -m` aliases build their parsers from the same descriptions.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from core import __version__
from core.commands import Command, Parser, add_commands
from diskformats.vhd import cli as vhd_cli
from diskformats.xva import cli as xva_cli
from platforms import cli as machine_cli
from publish import reader_cli, writer_cli
from xcpng_golden import cloudstack, plan, pool
from xcpng_golden.sbom import SBOM

PROG = "xcpng-golden"


def version() -> str:
    """The project's version, pyproject.toml's (core.__version__)."""
    return __version__


def _no_arguments(_p: argparse.ArgumentParser) -> None:
    pass


def _version(_args: argparse.Namespace) -> int:
    print(f"{PROG} {version()}")
    return 0


VERSION = Command("version", "print the harness's version", "", _no_arguments, _version)
STORE_ORDER = (
    "fetch",
    "diff",
    "list",
    "prune",
    "index",
    "page",
    "link",
    "verify",
    "preflight",
)


def _store_commands() -> tuple[Command, ...]:
    by_name = {c.name: c for c in (*reader_cli.COMMANDS, *writer_cli.STORE_COMMANDS)}
    return tuple(by_name[name] for name in STORE_ORDER)


# (group, its help, its commands); a group of None puts its commands at the top level.
TABLE: tuple[tuple[str | None, str, tuple[Command, ...]], ...] = (
    (None, "", machine_cli.COMMANDS),
    ("pool", "the XCP-ng pool: import a published template, clean up", pool.COMMANDS),
    ("xva", "XVA files: info, verify, to-raw, from-raw", xva_cli.COMMANDS),
    ("vhd", "VHD files (CloudStack's format): info, verify, to-raw, from-raw", vhd_cli.COMMANDS),
    (None, "", (SBOM,)),
    (None, "", (writer_cli.PUBLISH, plan.COMMAND)),
    ("store", "the published store: " + ", ".join(STORE_ORDER), _store_commands()),
    ("cloudstack", "CloudStack: preflight, register, rollback, list", cloudstack.COMMANDS),
    (None, "", (VERSION,)),
)

EXIT_CODES = """exit codes:
  0    done
  1    what was checked failed: a bad XVA or checksum, an OS that passed but could not be
       published, something left that could not be stopped or removed
  2    usage: a bad option, an unknown OS or build, a missing setting (one line, the fix)
  3    infrastructure (store commands and publish): the store is unusable; rerun
  130  interrupted (fetch resumes when run again)"""


def listing() -> str:
    """Every command with its help line, as `xcpng-golden --help` ends."""
    rows = []
    for group, _help, commands in TABLE:
        for c in commands:
            rows.append((" ".join(filter(None, (PROG, group, c.name))), c.help))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {help_}" for name, help_ in rows)


def parser() -> Parser:
    p = Parser(
        prog=PROG,
        usage=f"{PROG} [-h] COMMAND ...",
        description="Golden VM templates for XCP-ng: every command that is not a pytest run\n"
        "(builds and checks run as `pytest --os NAME`). Settings come from the environment\n"
        "(XCPNG_*, S3_*, AWS_*, TEMPLATE_*), as for the harness.",
        epilog=f"commands:\n{listing()}\n\n{EXIT_CODES}\n\n"
        f"`{PROG} COMMAND --help` shows a command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # listed by the epilog, every command of every group: argparse would list the groups only
    sub = p.add_subparsers(prog=PROG, metavar="COMMAND", required=True, help=argparse.SUPPRESS)
    for group, help_, commands in TABLE:
        if group is None:
            add_commands(sub, commands)
            continue
        g = sub.add_parser(group, help=help_, description=help_)
        add_commands(g.add_subparsers(title="commands", metavar="COMMAND", required=True), commands)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(None if argv is None else list(argv))
    run = args.run
    return int(run(args))
