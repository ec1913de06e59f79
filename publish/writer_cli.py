"""The writer's commands: publish, prune, verify, preflight (the reader's fetch, page, link are
in publish.reader_cli). Exit 0 ok, 1 failed, 2 bad input, 3 infra."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from core.destination import Destination
from core.errors import InfrastructureError, UsageError
from core.redact import Redactor
from core.settings import Settings, parse_duration

COMMANDS = ("prune", "verify", "preflight")
READ_COMMANDS = ("fetch", "page", "link")
Log = Callable[[str], None]


def _parser(command: str | None) -> argparse.ArgumentParser:
    prog = "python -m publish" + (f" {command}" if command else "")
    p = argparse.ArgumentParser(
        prog=prog,
        description={
            None: "Publish the OSes that passed, from results.json files, to S3 or a folder.",
            "prune": "Delete old builds: keep the newest N complete builds per OS.",
            "verify": "Check that index.json and every latest.json lead to complete objects.",
            "preflight": "Write and delete a probe object at the destination.",
        }[command],
        epilog=f"other commands: {', '.join(COMMANDS + READ_COMMANDS)} "
        "(python -m publish COMMAND --help). "
        "S3 settings come from the environment (S3_*, AWS_*), see the README.",
    )
    p.add_argument(
        "--to",
        help="s3://bucket/prefix or a folder [env TEMPLATE_PUBLISH_TO, default: published]",
    )
    if command is None:
        p.add_argument(
            "--results",
            nargs="+",
            required=True,
            type=Path,
            metavar="FILE",
            help="results.json of one or more harness runs",
        )
    if command in (None, "prune"):
        p.add_argument(
            "--dry-run", action="store_true", help="say what would happen, write nothing"
        )
    if command == "prune":
        p.add_argument("--keep", type=int, required=True, help="complete builds to keep per OS")
        p.add_argument(
            "--incomplete-grace",
            default="24h",
            help="delete incomplete build folders older than this [24h]",
        )
    if command == "verify":
        p.add_argument("--deep", action="store_true", help="re-hash every object (reads them all)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0] in READ_COMMANDS:
        from publish.reader_cli import main as read_main

        return read_main(args_in[0], args_in[1:])
    command = args_in[0] if args_in and args_in[0] in COMMANDS else None
    args = _parser(command).parse_args(args_in[1:] if command else args_in)
    redactor = Redactor([])
    try:
        settings = Settings.from_env()
        redactor = Redactor(settings.secrets())
        to = Destination.parse(args.to, "--to") if args.to else settings.publish_to

        def say(msg: str) -> None:
            print(redactor(msg), flush=True)

        return _run(command, args, to, settings, say)
    except UsageError as e:
        print(f"error: {redactor(str(e))}", file=sys.stderr)
        return 2
    except InfrastructureError as e:
        print(f"error: {redactor(str(e))}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted: latest.json and index.json were not moved", file=sys.stderr)
        return 130


def _run(
    command: str | None, args: argparse.Namespace, to: Destination, settings: Settings, log: Log
) -> int:
    from publish import api
    from publish.stores import open_store

    if command == "preflight":
        problems = api.preflight(to, settings)
        for p in problems:
            log(p)
        if not problems:
            log(f"{to}: probe object written and deleted")
        return 3 if problems else 0
    if command == "verify":
        from publish.verify import verify_tree

        problems = verify_tree(open_store(to, settings.s3), deep=args.deep)
        for p in problems:
            log(p)
        log(f"{to}: " + (f"{len(problems)} problem(s)" if problems else "OK"))
        return 1 if problems else 0
    if command == "prune":
        from publish.prune import prune

        grace = parse_duration(args.incomplete_grace, "--incomplete-grace")
        r = prune(open_store(to, settings.s3), args.keep, args.dry_run, grace, log)
        verb = "would delete" if args.dry_run else "deleted"
        log(f"kept {len(r.kept)} build(s), {verb} {len(r.deleted)}")
        return 0
    report = api.publish_results(args.results, to, settings, args.dry_run, log)
    for line in report.lines():
        log(line)
    return 0 if report.ok else 1
