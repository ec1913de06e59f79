"""One error policy for the disk-format commands (`xcpng-golden xva|vhd ...`): a failure is one
line naming the file at fault and the fix, with the exit code the command table documents (1 for
a file that is not what it should be, 2 for usage)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from core.commands import Run
from core.errors import UsageError

RAW_FIX = "give the path of a raw disk image (qemu-img convert -O raw)"


def guarded(
    body: Callable[[argparse.Namespace], None],
    format_error: type[Exception],
    image_arg: str,
    image_fix: str,
    reads_raw: bool = False,
) -> Run:
    """`body` with its failures as one line: a `format_error` names the raw disk when the body
    reads one (`reads_raw`), else the image named by the argument `image_arg`."""

    def run(args: argparse.Namespace) -> int:
        try:
            body(args)
        except format_error as exc:
            if reads_raw:
                src, fix = args.raw, RAW_FIX
            else:
                src, fix = getattr(args, image_arg), image_fix
            print(f"error: {src}: {exc}; fix: {fix}", file=sys.stderr)
            return 1
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        return 0

    return run
