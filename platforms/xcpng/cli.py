"""The pool's `cleanup` command, with the same XCPNG_* environment as the harness.

`cleanup [--run-id ID | --older-than AGE] [--dry-run]` removes the VMs and disks a run left on
the pool (see cleanup.py for what is selected). Exit 0 when everything selected is gone, 1 when
something could not be removed, 2 on a usage error, 130 interrupted. (Importing a published
template joins the store and the pool, so it lives above both: xcpng_golden/pool.py.)
"""

from __future__ import annotations

import argparse
import logging
import sys

from core import signals
from core.commands import Command
from core.errors import InfrastructureError, UsageError
from core.settings import Settings, parse_duration
from platforms.xcpng.cleanup import cleanup
from platforms.xcpng.platform import connect, ledger_path


def _arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--run-id", help="everything of this run (ledger and tags)")
    which.add_argument("--older-than", help="everything created longer ago, e.g. 12h, 7d")
    p.add_argument("--dry-run", action="store_true", help="list, do not remove")


def run_cleanup(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signals.install_sigterm_as_interrupt()
    try:
        older = parse_duration(args.older_than, "--older-than") if args.older_than else None
        settings = Settings.from_env()
        xapi = connect(settings.xcpng)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except InfrastructureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was removed", file=sys.stderr)
        return 130
    try:
        report = cleanup(
            xapi, ledger_path(settings), run_id=args.run_id, older_than=older, dry_run=args.dry_run
        )
    finally:
        xapi.logout()
    for line in report.removed:
        print(line)
    for line in report.problems:
        print(f"error: {line}", file=sys.stderr)
    if not report.removed and not report.problems:
        print("nothing to remove")
    return 1 if report.problems else 0


CLEANUP = Command(
    "cleanup",
    "remove the VMs and disks runs left on the pool (ledger and tags)",
    "--run-id 20250101120000-a1b2c3",
    _arguments,
    run_cleanup,
    description=__doc__ or "",
)
