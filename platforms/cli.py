"""The machine-side commands: `janitor` (stop the clones --keep-vm kept, once their time is up)
and `cleanup` (remove what runs killed outright left, after a machine crash).

janitor: one command for both platforms, QEMU processes on this machine and VMs on the pool.
Run it on a schedule (the templates workflow does), or with --name to stop one clone now.
cleanup: what no live run owns in the image cache, the temporary folder and the artifacts
(platforms/leftovers.py), and the pool objects of dead runs when XCPNG_* is set.
Exit 0 when everything selected is gone, 1 when something could not be stopped or removed (or
needs the command printed), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.commands import Command
from core.errors import InfrastructureError, UsageError
from core.model import KeptVM
from core.proc import argv_of, stop_pid
from core.redact import Redactor
from core.settings import Settings
from platforms.kept import Stopper, sweep
from platforms.leftovers import tidy


def stop_local(kept: KeptVM) -> list[str]:
    pid = int(kept.details.get("qemu_pid", 0))
    argv = argv_of(pid) if pid else []
    if not argv or kept.name not in argv:
        return []  # already gone (or the pid now belongs to someone else): nothing to stop
    return [] if stop_pid(pid) else [f"QEMU pid {pid} did not stop"]


def stop_xcpng(settings: Settings) -> Stopper:
    def stop(kept: KeptVM) -> list[str]:
        import XenAPI

        from platforms.xcpng import objects
        from platforms.xcpng.platform import connect

        xapi = connect(settings.xcpng)
        try:
            try:
                vm = str(xapi.call("VM.get_by_uuid", kept.details["vm_uuid"]))
            except XenAPI.Failure:
                return []  # already gone
            return objects.destroy_vm(xapi, vm)
        finally:
            xapi.logout()

    return stop


def cleanup(settings: Settings, dry_run: bool) -> int:
    try:
        report = tidy(settings, dry_run=dry_run, pool=True)
    except (UsageError, InfrastructureError) as exc:
        print(f"error: {Redactor(settings.secrets())(str(exc))}", file=sys.stderr)
        return 1
    for line in report.removed:
        print(line)
    for line in report.notes:
        print(f"left: {line}")
    for line in report.problems:
        print(f"error: {line}", file=sys.stderr)
    if not (report.removed or report.notes or report.problems):
        print("nothing left behind by earlier runs")
    return 0 if report.clean else 1


def _janitor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--artifacts-dir",
        type=Path,
        help="the harness's artifacts folder [env TEMPLATE_ARTIFACTS_DIR, default artifacts]",
    )
    p.add_argument("--name", help="stop this kept clone now, whatever its time-to-live")
    p.add_argument("--dry-run", action="store_true", help="list, stop nothing")


def _cleanup_arguments(p: argparse.ArgumentParser) -> None:
    for flag, help_ in (
        ("--artifacts-dir", "[env TEMPLATE_ARTIFACTS_DIR, default artifacts]"),
        ("--reports-dir", "[env TEMPLATE_REPORTS_DIR, default reports]"),
        ("--cache-dir", "[env TEMPLATE_CACHE_DIR, default ~/.cache/xcpng-templates]"),
    ):
        p.add_argument(flag, type=Path, help=f"the harness's {flag[2:-4]} folder {help_}")
    p.add_argument("--dry-run", action="store_true", help="list, remove nothing")


def run_cleanup(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(
            artifacts_dir=args.artifacts_dir,
            reports_dir=args.reports_dir,
            cache_dir=args.cache_dir,
        )
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return cleanup(settings, args.dry_run)


def run_janitor(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    artifacts = (args.artifacts_dir or settings.artifacts_dir).absolute()
    stoppers = {"local": stop_local, "xcpng": stop_xcpng(settings)}
    try:
        report = sweep(artifacts, stoppers, name=args.name, dry_run=args.dry_run)
    except (UsageError, InfrastructureError) as exc:
        print(f"error: {Redactor(settings.secrets())(str(exc))}", file=sys.stderr)
        return 1
    for line in report.stopped:
        print(line)
    for line in report.problems:
        print(f"error: {line}", file=sys.stderr)
    if report.left:
        print(f"{len(report.left)} kept clone(s) still within their time-to-live")
    if not (report.stopped or report.problems or report.left):
        print("no kept clones")
    return 1 if report.problems else 0


JANITOR = Command(
    "janitor",
    "stop kept clones (--keep-vm) whose time-to-live has passed",
    "--name debian12-20250101120000-a1b2c3",
    _janitor_arguments,
    run_janitor,
)
CLEANUP = Command(
    "cleanup",
    "remove what runs killed outright left (cache, temp, processes, pool)",
    "--dry-run",
    _cleanup_arguments,
    run_cleanup,
)
COMMANDS = (JANITOR, CLEANUP)
