"""`python -m platforms.xcpng cleanup`, with the same XCPNG_* environment as the harness.

`cleanup [--run-id ID | --older-than AGE] [--dry-run]` removes the VMs and disks a run left on
the pool (see cleanup.py for what is selected). Exit 0 when everything selected is gone, 1 when
something could not be removed, 2 on a usage error. (Importing a published template joins the
store and the pool, so it lives above both: `python -m xcpng_golden.pool import`.)
"""

from __future__ import annotations

import argparse
import logging
import sys

from core import signals
from core.errors import InfrastructureError, UsageError
from core.settings import Settings, parse_duration
from platforms.xcpng.cleanup import cleanup
from platforms.xcpng.platform import connect, ledger_path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m platforms.xcpng",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cleanup", help="remove VMs and disks left by killed or kept runs")
    which = c.add_mutually_exclusive_group()
    which.add_argument("--run-id", help="everything of this run (ledger and tags)")
    which.add_argument("--older-than", help="everything created longer ago, e.g. 12h, 7d")
    c.add_argument("--dry-run", action="store_true", help="list, do not remove")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signals.install_sigterm_as_interrupt()
    try:
        older = None
        if args.older_than:
            older = parse_duration(args.older_than, "--older-than")
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


if __name__ == "__main__":
    sys.exit(main())
