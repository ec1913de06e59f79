"""The reader's commands: `fetch`, `diff`, `list`, `page` and `link` (`xcpng-golden store ...`).

Exit codes as for publishing: 0 done, 1 a checksum or the store's contents are wrong, 2 bad
input (an unknown OS or build), 3 the store is unusable or the download broke (rerun to
resume), 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from core.commands import Command, Run
from core.errors import InfrastructureError, UsageError
from core.redact import Redactor
from core.settings import Settings, parse_duration
from publish.stores.base import IntegrityError, Log, Store

MAX_PRESIGN = 7 * 86400  # SigV4 presigned URLs live at most 7 days
EXITS = ((UsageError, 2), (IntegrityError, 1), (InfrastructureError, 3))
Body = Callable[[argparse.Namespace, Settings, Log], int]


def _guarded(body: Body, resumable: bool = False) -> Run:
    """The body with its settings and redacting log; errors as exit codes, and for a command
    that resumes (fetch), how to resume."""

    def run(args: argparse.Namespace) -> int:
        redactor = Redactor([])
        try:
            settings = Settings.from_env()
            redactor = Redactor(settings.secrets())

            def say(msg: str) -> None:
                print(redactor(msg), flush=True)

            return body(args, settings, say)
        except (UsageError, IntegrityError, InfrastructureError) as e:
            code = next(c for kind, c in EXITS if isinstance(e, kind))
            hint = "; run the same command again to resume" if resumable and code == 3 else ""
            print(f"error: {redactor(str(e))}{hint}", file=sys.stderr)
            return code
        except KeyboardInterrupt:
            if resumable:
                print("interrupted: run the same command again to resume", file=sys.stderr)
            return 130

    return run


def _source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        help="s3://bucket/prefix or a folder the publisher wrote",
    )


def _build(p: argparse.ArgumentParser) -> None:
    p.add_argument("--os", required=True, help="OS name, e.g. debian12")
    p.add_argument("--build", help="build id (default: the latest)")


def signer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allowed-signers",
        type=Path,
        help="ssh-keygen allowed-signers file listing the publisher's key(s) "
        "[env TEMPLATE_ALLOWED_SIGNERS]",
    )
    p.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="accept a build that is unsigned, or whose signature cannot be checked here "
        "(no allowed-signers file), on its checksums alone",
    )


def _fetch_arguments(p: argparse.ArgumentParser) -> None:
    _source(p)
    _build(p)
    p.add_argument("--to", required=True, type=Path, help="folder to download into")
    signer_arguments(p)


def _diff_arguments(p: argparse.ArgumentParser) -> None:
    _source(p)
    p.add_argument("--os", required=True, help="OS name, e.g. debian12")
    p.add_argument("--build", help="the newer build [the latest]")
    p.add_argument("--base", help="the build to compare with [the one before --build]")
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format [text]"
    )
    signer_arguments(p)


def _list_arguments(p: argparse.ArgumentParser) -> None:
    _source(p)
    p.add_argument("--os", help="list this OS's complete builds, newest first")


def _page_arguments(p: argparse.ArgumentParser) -> None:
    _source(p)
    p.add_argument(
        "--presign",
        metavar="EXPIRY",
        help="link objects with presigned URLs valid this long (e.g. 12h, at most 7d); "
        "needs --out: a presigned page is never written into the store",
    )
    p.add_argument("--out", type=Path, help="write the page to this file, not the store")


def _link_arguments(p: argparse.ArgumentParser) -> None:
    _source(p)
    _build(p)
    p.add_argument("--expires", default="1h", help="how long the link works [1h, max 7d]")


def presign_seconds(text: str, what: str) -> int:
    seconds = int(parse_duration(text, what))
    if not 1 <= seconds <= MAX_PRESIGN:
        raise UsageError(f"{what} {text}: a presigned link lives 1 s to 7 days; choose e.g. 12h")
    return seconds


def _store(args: argparse.Namespace, settings: Settings) -> Store:
    from publish import source

    store = source.open_source(args.source, settings.s3)
    if isinstance(store, Path):
        raise UsageError(f"{args.source} is a file; pass the store it came from")
    return store


def _fetch(args: argparse.Namespace, settings: Settings, log: Log) -> int:
    from publish import source
    from publish.fetch import fetch
    from publish.trust import check_build, companions

    build = source.resolve(args.source, settings.s3, args.os, args.build)
    extras = None
    if build.store is not None:  # the signature first: no checksum is used before it holds
        allowed = args.allowed_signers or settings.allowed_signers
        trust = check_build(build, allowed, allow_unsigned=args.allow_unsigned)
        log(trust.line(build))
        extras = companions(build, trust, allowed)
    fetch(build, args.to, log, extras=extras)
    return 0


def _diff(args: argparse.Namespace, settings: Settings, log: Log) -> int:
    import json

    from publish.diff import diff_builds

    store = _store(args, settings)
    d = diff_builds(
        store,
        args.os,
        args.build,
        args.base,
        allowed_signers=args.allowed_signers or settings.allowed_signers,
        allow_unsigned=args.allow_unsigned,
    )
    if args.format == "json":
        print(json.dumps(d.to_json(), indent=2, sort_keys=True))
    else:
        for line in d.lines():
            log(line)
    return 0


def _list(args: argparse.Namespace, settings: Settings, log: Log) -> int:
    from publish import source

    store = _store(args, settings)
    if args.os:
        source.find_build(store, args.os)  # an unknown OS is a usage error naming what exists
        for build_id, folder in source.build_folders(store, args.os):
            log(f"{args.os}  {build_id}  {store.describe(folder)}")
        return 0
    oses = source.published_oses(store)
    for os_name in oses:
        latest = source.find_build(store, os_name)
        log(f"{os_name}  {latest.build_id}  {latest.size} bytes  (latest)")
    if not oses:
        log(f"{store.url}: nothing published")
    return 0


def _page(args: argparse.Namespace, settings: Settings, log: Log) -> int:
    from publish import catalog_page

    store = _store(args, settings)
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


def _link(args: argparse.Namespace, settings: Settings, log: Log) -> int:
    from publish import source

    store = _store(args, settings)
    build = source.find_build(store, args.os, args.build)
    build.token()  # the object is there and whole
    print(store.presign(build.artifact_key, presign_seconds(args.expires, "--expires")))
    return 0


COMMANDS = (
    Command(
        "fetch",
        "download one published build (latest by default) and verify it",
        "--from s3://bucket/templates --os debian12 --to ~/templates",
        _fetch_arguments,
        _guarded(_fetch, resumable=True),
    ),
    Command(
        "diff",
        "packages added, removed, upgraded between two builds of an OS",
        "--from s3://bucket/templates --os debian12 --base 20261101T020304Z-1a2b3c4d5e6f",
        _diff_arguments,
        _guarded(_diff),
        description="Packages added, removed, upgraded and downgraded between two builds of "
        "an OS, read from their SBOMs (checked against each build's SHA256SUMS, and its "
        "signature when allowed signers are given); upgrades whose new version the "
        "distribution's security suite published are marked [security]. Default: the latest "
        "build against the one before it.",
    ),
    Command(
        "list",
        "list the published OSes and their latest build, or one OS's builds",
        "--from s3://bucket/templates --os debian12",
        _list_arguments,
        _guarded(_list),
    ),
    Command(
        "page",
        "write the catalog page (index.html) of a store",
        "--from s3://bucket/templates --presign 12h --out catalog.html",
        _page_arguments,
        _guarded(_page),
    ),
    Command(
        "link",
        "print a presigned link to a build's artifact (Xen Orchestra)",
        "--from s3://bucket/templates --os debian12 --expires 2h",
        _link_arguments,
        _guarded(_link),
    ),
)
