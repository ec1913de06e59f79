"""`python -m platforms.xcpng cleanup|import`, with the same XCPNG_* environment as the harness.

- `cleanup [--run-id ID | --older-than AGE] [--dry-run]` removes the VMs and disks a run left
  on the pool (see cleanup.py for what is selected). Exit 0 when everything selected is gone,
  1 when something could not be removed, 2 on a usage error.
- `import --from s3://...|FOLDER|FILE --os NAME [--build ID] [--name LABEL] [--replace]`
  streams a published template into the pool (see importer.py). Exit 0 imported or already
  there, 1 failed (checksum, the pool, the store), 2 on a usage error (unknown OS or build, a
  name held by another template).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import XenAPI

from core import signals
from core.errors import ImageDefect, InfrastructureError, UsageError
from core.settings import Settings, parse_duration
from platforms.xcpng.cleanup import cleanup
from platforms.xcpng.client import describe
from platforms.xcpng.importer import ChecksumMismatch, import_template
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
    i = sub.add_parser("import", help="import a published template into the pool")
    i.add_argument(
        "--from",
        dest="source",
        required=True,
        help="s3://bucket/prefix or a folder the publisher wrote, or an XVA that "
        "`python -m publish fetch` downloaded",
    )
    i.add_argument("--os", help="OS name, e.g. debian12 (required with a store)")
    i.add_argument("--build", help="build id (default: the latest)")
    i.add_argument("--name", help="template name [golden-<os>]")
    i.add_argument(
        "--replace",
        action="store_true",
        help="rename the template holding --name to <name>-<its build id>, then take the name",
    )
    i.add_argument("--sr", help="SR to import into [env XCPNG_SR, else the pool's default SR]")
    i.add_argument(
        "--metadata", type=Path, help="metadata of a FILE [FILE.metadata.json beside it]"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signals.install_sigterm_as_interrupt()
    try:
        older = None
        if args.cmd == "cleanup" and args.older_than:
            older = parse_duration(args.older_than, "--older-than")
        settings = Settings.from_env()
        if args.cmd == "import":
            return _import(args, settings)
        xapi = connect(settings.xcpng)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (InfrastructureError, ImageDefect, ChecksumMismatch) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: whatever the import had created was removed", file=sys.stderr)
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


def _import(args: argparse.Namespace, settings: Settings) -> int:
    # The command is where the reading side of the store meets the pool: publish.source finds
    # and streams the build, the platform imports it (see the import contract in pyproject).
    from publish.source import IntegrityError, resolve

    try:
        build = resolve(args.source, settings.s3, args.os, args.build, args.metadata)
    except IntegrityError as exc:
        raise InfrastructureError(str(exc)) from None
    xapi = connect(settings.xcpng)
    try:
        outcome = import_template(
            xapi,
            build,
            label=args.name or f"golden-{build.os_name}",
            sr_name=args.sr or settings.xcpng.sr,
            replace=args.replace,
        )
    except IntegrityError as exc:
        raise InfrastructureError(str(exc)) from None
    except (XenAPI.Failure, OSError) as exc:  # a call outside the import's own error mapping
        raise InfrastructureError(
            f"the pool refused a call: {xapi.redactor(describe(exc))}"
        ) from None
    finally:
        xapi.logout()
    for line in outcome.lines(build):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
