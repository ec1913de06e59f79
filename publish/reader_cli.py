"""The reader's commands: `fetch`, `page` and `link` (`python -m publish COMMAND --help`).

Exit codes as for publishing: 0 done, 1 a checksum or the store's contents are wrong, 2 bad
input (an unknown OS or build), 3 the store is unusable or the download broke (rerun to
resume), 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import InfrastructureError, UsageError
from core.redact import Redactor
from core.settings import Settings, parse_duration
from publish.stores.base import IntegrityError, Log

COMMANDS = ("fetch", "page", "link")
MAX_PRESIGN = 7 * 86400  # SigV4 presigned URLs live at most 7 days
EXITS = ((UsageError, 2), (IntegrityError, 1), (InfrastructureError, 3))


def _parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m publish {command}",
        description={
            "fetch": "Download one published build (latest by default) and verify it.",
            "page": "Write the catalog page (index.html) of a store.",
            "link": "Print a presigned link to a build's artifact (Xen Orchestra: import "
            "from URL).",
        }[command],
        epilog="S3 settings come from the environment (S3_*, AWS_*), see the README.",
    )
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        help="s3://bucket/prefix or a folder the publisher wrote",
    )
    if command in ("fetch", "link"):
        p.add_argument("--os", required=True, help="OS name, e.g. debian12")
        p.add_argument("--build", help="build id (default: the latest)")
    if command == "fetch":
        p.add_argument("--to", required=True, type=Path, help="folder to download into")
    if command == "page":
        p.add_argument(
            "--presign",
            metavar="EXPIRY",
            help="link objects with presigned URLs valid this long (e.g. 12h, at most 7d); "
            "needs --out: a presigned page is never written into the store",
        )
        p.add_argument("--out", type=Path, help="write the page to this file, not the store")
    if command == "link":
        p.add_argument("--expires", default="1h", help="how long the link works [1h, max 7d]")
    return p


def main(command: str, argv: Sequence[str]) -> int:
    args = _parser(command).parse_args(list(argv))
    redactor = Redactor([])
    try:
        settings = Settings.from_env()
        redactor = Redactor(settings.secrets())

        def say(msg: str) -> None:
            print(redactor(msg), flush=True)

        return _run(command, args, settings, say)
    except (UsageError, IntegrityError, InfrastructureError) as e:
        code = next(c for kind, c in EXITS if isinstance(e, kind))
        resume = code == 3 and command == "fetch"
        hint = "; run the same command again to resume" if resume else ""
        print(f"error: {redactor(str(e))}{hint}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        if command == "fetch":
            print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


def presign_seconds(text: str, what: str) -> int:
    seconds = int(parse_duration(text, what))
    if not 1 <= seconds <= MAX_PRESIGN:
        raise UsageError(f"{what} {text}: a presigned link lives 1 s to 7 days; choose e.g. 12h")
    return seconds


def _run(command: str, args: argparse.Namespace, settings: Settings, log: Log) -> int:
    from publish import catalog_page, source
    from publish.fetch import fetch

    if command == "fetch":
        build = source.resolve(args.source, settings.s3, args.os, args.build)
        fetch(build, args.to, log)
        return 0
    store = source.open_source(args.source, settings.s3)
    if isinstance(store, Path):
        raise UsageError(f"{args.source} is a file; pass the store it came from")
    if command == "link":
        build = source.find_build(store, args.os, args.build)
        build.token()  # the object is there and whole
        print(store.presign(build.artifact_key, presign_seconds(args.expires, "--expires")))
        return 0
    if args.presign and not args.out:
        raise UsageError(
            "--presign needs --out FILE: a page with presigned links is never written into "
            "the store (anyone who can read it could use them)"
        )
    expires = presign_seconds(args.presign, "--presign") if args.presign else None
    html = catalog_page.render_store(store, expires)
    if args.out:
        catalog_page.write_file(args.out, html)
        log(f"catalog page written to {args.out}")
    else:
        catalog_page.publish_page(store, html)
        log(f"catalog page written to {store.describe(catalog_page.PAGE_KEY)}")
    return 0
