"""A subcommand described once, so the console script and the `python -m` aliases build the
same parser: its name, one line of help, an example, its arguments and what it runs.

A usage error is one line and exit 2 (argparse's default prints the whole usage first).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    name: str
    help: str  # one line, for listings
    example: str  # the arguments after the command, e.g. "info image.xva"
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Run
    description: str = ""  # more than the help line, when it needs saying


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line naming the fix (--help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_commands(sub: argparse._SubParsersAction[Parser], commands: Sequence[Command]) -> None:
    """One parser per command, with its example as the epilog and its run as `args.run`."""
    for c in commands:
        p = sub.add_parser(
            c.name,
            help=c.help,
            description=c.description or c.help,
            epilog=f"example:\n  %(prog)s {c.example}".rstrip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        c.arguments(p)
        p.set_defaults(run=c.run)


def main_of(
    prog: str, description: str, commands: Sequence[Command], argv: Sequence[str] | None = None
) -> int:
    """Parse `argv` against `commands` and run the one named (the `python -m` aliases)."""
    p = Parser(prog=prog, description=description)
    sub = p.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_commands(sub, commands)
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    run: Run = args.run
    return run(args)
