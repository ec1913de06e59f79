"""The pool's commands: `import` (here) and `cleanup` (platforms/xcpng/cli.py).

The import lives above both phases it joins: publish.source finds and streams the build, the
platform imports it, and neither imports the other.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import XenAPI

from core import signals
from core.commands import Command
from core.errors import ImageDefect, InfrastructureError, UsageError
from core.settings import Settings
from platforms.xcpng.cli import CLEANUP
from platforms.xcpng.client import describe
from platforms.xcpng.platform import connect
from platforms.xcpng.template_import import ChecksumMismatch, import_template
from publish.reader_cli import signer_arguments
from publish.source import resolve
from publish.stores.base import IntegrityError
from publish.trust import check_build

IMPORT_DOC = """Stream a published template (S3, a folder, or a fetched file) into the pool, as
a template named golden-<os>, with the XCPNG_* and S3_* environment of the harness. The same
build already in the pool is reported, not imported again; --replace renames the template
holding the name to <name>-<its build id> once the new one is in. A signed build's signature
is checked first, as `store fetch` checks it (--allowed-signers, TEMPLATE_ALLOWED_SIGNERS).

Exit 0 imported or already there, 1 failed (checksum, the pool, the store), 2 usage (unknown
OS or build, a name held by another template), 130 interrupted."""


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        help="s3://bucket/prefix or a folder the publisher wrote, or an XVA that "
        "`xcpng-golden store fetch` downloaded",
    )
    p.add_argument("--os", help="OS name, e.g. debian12 (required with a store)")
    p.add_argument("--build", help="build id (default: the latest)")
    p.add_argument("--name", help="template name [golden-<os>]")
    p.add_argument(
        "--replace",
        action="store_true",
        help="rename the template holding --name to <name>-<its build id>, then take the name",
    )
    p.add_argument("--sr", help="SR to import into [env XCPNG_SR, else the pool's default SR]")
    p.add_argument(
        "--metadata", type=Path, help="metadata of a FILE [FILE.metadata.json beside it]"
    )
    signer_arguments(p)


def run_import(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signals.install_sigterm_as_interrupt()
    try:
        return import_build(args, Settings.from_env())
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (InfrastructureError, ImageDefect, ChecksumMismatch) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: whatever the import had created was removed", file=sys.stderr)
        return 130


def import_build(args: argparse.Namespace, settings: Settings) -> int:
    """Find the build in the store, stream it into the pool, say what happened."""
    try:
        build = resolve(args.source, settings.s3, args.os, args.build, args.metadata)
        if build.store is not None:  # as fetch: the signature before any checksum is used
            allowed = args.allowed_signers or settings.allowed_signers
            print(check_build(build, allowed, allow_unsigned=args.allow_unsigned).line(build))
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


IMPORT = Command(
    "import",
    "import a published template into the pool",
    "--from s3://bucket/templates --os debian12 --replace",
    _arguments,
    run_import,
    description=IMPORT_DOC,
)
COMMANDS = (IMPORT, CLEANUP)
