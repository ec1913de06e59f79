"""`python -m publish [COMMAND]`: an alias of `xcpng-golden publish` (no command or `publish`)
and of `xcpng-golden store COMMAND` (fetch, diff, list, page, link, prune, index, verify,
preflight)."""

import sys

from core.commands import main_of
from publish.reader_cli import COMMANDS as READ
from publish.writer_cli import PUBLISH, STORE_COMMANDS

COMMANDS = (PUBLISH, *STORE_COMMANDS, *READ)
argv = sys.argv[1:]
if argv and argv[0] not in {c.name for c in COMMANDS} | {"-h", "--help"}:
    argv = ["publish", *argv]  # `python -m publish --results ...`, as before the subcommands
sys.exit(main_of("python -m publish", __doc__ or "", COMMANDS, argv))
