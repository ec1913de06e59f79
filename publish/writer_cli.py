"""The writer's commands: publish, and the store's prune, index, verify, preflight (the reader's
fetch, diff, list, page, link are in publish.reader_cli).

Exit 0 ok, 1 failed (an OS that passed could not be published, a store that does not verify),
2 bad input, 3 the store is unusable (infrastructure: rerun), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from core.commands import Command, Run
from core.destination import Destination
from core.errors import InfrastructureError, UsageError
from core.redact import Redactor
from core.settings import Settings, parse_duration

Log = Callable[[str], None]
Body = Callable[[argparse.Namespace, Destination, Settings, Log], int]
TO_HELP = "s3://bucket/prefix or a folder [env TEMPLATE_PUBLISH_TO, default: published]"
S3_NOTE = "S3 settings come from the environment (S3_*, AWS_*), as for the harness."


def _guarded(body: Body) -> Run:
    """The body with its settings, destination and redacting log; errors as exit codes."""

    def run(args: argparse.Namespace) -> int:
        redactor = Redactor([])
        try:
            settings = Settings.from_env()
            redactor = Redactor(settings.secrets())
            to = Destination.parse(args.to, "--to") if args.to else settings.publish_to

            def say(msg: str) -> None:
                print(redactor(msg), flush=True)

            return body(args, to, settings, say)
        except UsageError as e:
            print(f"error: {redactor(str(e))}", file=sys.stderr)
            return 2
        except InfrastructureError as e:
            print(f"error: {redactor(str(e))}", file=sys.stderr)
            return 3
        except KeyboardInterrupt:
            print("interrupted: latest.json and index.json were not moved", file=sys.stderr)
            return 130

    return run


def _to(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", help=TO_HELP)


def _publish_arguments(p: argparse.ArgumentParser) -> None:
    _to(p)
    p.add_argument(
        "--results",
        nargs="+",
        required=True,
        type=Path,
        metavar="FILE",
        help="results.json of one or more harness runs",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would happen, write nothing")
    p.add_argument(
        "--builds-only",
        action="store_true",
        help="write the build folders only; leave latest.json, index.json and index.html to "
        "`xcpng-golden store index` (a fan-out shard)",
    )


def _prune_arguments(p: argparse.ArgumentParser) -> None:
    _to(p)
    p.add_argument("--dry-run", action="store_true", help="say what would happen, write nothing")
    p.add_argument("--keep", type=int, required=True, help="complete builds to keep per OS")
    p.add_argument(
        "--incomplete-grace",
        default="24h",
        help="delete incomplete build folders older than this [24h]",
    )


def _verify_arguments(p: argparse.ArgumentParser) -> None:
    _to(p)
    p.add_argument("--deep", action="store_true", help="re-hash every object (reads them all)")


def _publish(args: argparse.Namespace, to: Destination, settings: Settings, log: Log) -> int:
    from publish import api

    report = api.publish_results(
        args.results, to, settings, args.dry_run, log, builds_only=args.builds_only
    )
    for line in report.lines():
        log(line)
    return 0 if report.ok else 1


def _preflight(args: argparse.Namespace, to: Destination, settings: Settings, log: Log) -> int:
    from publish import api

    problems = api.preflight(to, settings)
    for p in problems:
        log(p)
    if not problems:
        log(f"{to}: probe object written and deleted")
    return 3 if problems else 0


def _verify(args: argparse.Namespace, to: Destination, settings: Settings, log: Log) -> int:
    from publish.stores import open_store
    from publish.verify import verify_tree

    problems = verify_tree(open_store(to, settings.s3), deep=args.deep)
    for p in problems:
        log(p)
    log(f"{to}: " + (f"{len(problems)} problem(s)" if problems else "OK"))
    return 1 if problems else 0


def _prune(args: argparse.Namespace, to: Destination, settings: Settings, log: Log) -> int:
    from publish.prune import prune
    from publish.stores import open_store

    grace = parse_duration(args.incomplete_grace, "--incomplete-grace")
    r = prune(open_store(to, settings.s3), args.keep, args.dry_run, grace, log)
    verb = "would delete" if args.dry_run else "deleted"
    log(f"kept {len(r.kept)} build(s), {verb} {len(r.deleted)}")
    return 0


def _index(args: argparse.Namespace, to: Destination, settings: Settings, log: Log) -> int:
    from publish.catalog_page import refresh_index
    from publish.stores import open_store

    index = refresh_index(open_store(to, settings.s3), log)
    log(f"index.json lists {len(index['os'])} OS(es)")
    return 0


PUBLISH = Command(
    "publish",
    "upload the OSes that passed (results.json) to S3 or a folder",
    "--results reports/results.json --to s3://bucket/templates",
    _publish_arguments,
    _guarded(_publish),
    description="Publish the OSes that passed, from results.json files, to S3 or a folder. "
    + S3_NOTE,
)
STORE_COMMANDS = (
    Command(
        "prune",
        "delete old builds: keep the newest N complete builds per OS",
        "--keep 5 --to s3://bucket/templates --dry-run",
        _prune_arguments,
        _guarded(_prune),
    ),
    Command(
        "index",
        "move each latest.json to its newest complete build, then rebuild index.json and "
        "index.html",
        "--to s3://bucket/templates",
        _to,
        _guarded(_index),
    ),
    Command(
        "verify",
        "check that index.json and every latest.json lead to complete objects",
        "--to s3://bucket/templates --deep",
        _verify_arguments,
        _guarded(_verify),
    ),
    Command(
        "preflight",
        "write and delete a probe object at the destination",
        "--to s3://bucket/templates",
        _to,
        _guarded(_preflight),
    ),
)
