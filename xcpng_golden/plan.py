"""`xcpng-golden plan`: the selected OSes split over N runners, and the job time limit that
follows from the fleet.

Each shard runs the same harness (`pytest -n WORKERS --os <its OSes>`), so its OSes go through
build, boot and checks WORKERS at a time, and then its publishing step uploads them one by
one. One OS takes at most its build limit (--build-timeout), its boot limit (--boot-timeout)
and its import and checks (CHECKS_MINUTES). So a shard of k OSes needs, in the worst case,

    SETUP + ceil(k / WORKERS) x (build + boot + CHECKS) + k x PUBLISH_PER_OS   minutes

and every shard gets the figure of the largest one. The workflow's `plan` job runs this and
hands the shards to a matrix and the minutes to `timeout-minutes`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from build.catalog import load_catalog
from core.commands import Command
from core.errors import UsageError
from core.settings import Settings

SETUP_MINUTES = 15  # checkout, scripts/setup (a fresh .venv), setup-packer, packer init, preflight
CHECKS_MINUTES = 15  # the XVA download from the build, its import, the clone's checks
PUBLISH_PER_OS_MINUTES = 5  # one XVA (about 1 GiB compressed) to the store, verified
GITHUB_MAX_MINUTES = 7200  # a self-hosted runner's job runs at most 5 days


@dataclass(frozen=True)
class Plan:
    shards: list[list[str]]
    workers: int
    os_minutes: int  # build + boot + checks of one OS
    timeout_minutes: int

    def matrix(self) -> dict[str, Any]:
        n = len(self.shards)
        return {
            "include": [
                {"index": i, "shard": f"{i}/{n}", "os": ",".join(names)}
                for i, names in enumerate(self.shards, start=1)
            ]
        }

    def arithmetic(self) -> str:
        k = max((len(s) for s in self.shards), default=0)
        waves = math.ceil(k / self.workers) if k else 0
        return (
            f"{SETUP_MINUTES} + ceil({k}/{self.workers}) x {self.os_minutes} + {k} x "
            f"{PUBLISH_PER_OS_MINUTES} = {SETUP_MINUTES} + {waves} x {self.os_minutes} + "
            f"{k * PUBLISH_PER_OS_MINUTES} = {self.timeout_minutes} minutes"
        )


def shard(names: list[str], runners: int) -> list[list[str]]:
    """Round robin over the sorted names: sizes differ by one at most; no empty shard."""
    ordered = sorted(names)
    n = max(1, min(runners, len(ordered)))
    return [ordered[i::n] for i in range(n)] if ordered else []


def make_plan(names: list[str], runners: int, workers: int, settings: Settings) -> Plan:
    if runners < 1 or workers < 1:
        raise UsageError("--runners and --workers must be at least 1")
    shards = shard(names, runners)
    os_minutes = math.ceil((settings.build_timeout + settings.boot_timeout) / 60 + CHECKS_MINUTES)
    k = max((len(s) for s in shards), default=0)
    minutes = SETUP_MINUTES + math.ceil(k / workers) * os_minutes + k * PUBLISH_PER_OS_MINUTES
    if minutes > GITHUB_MAX_MINUTES:
        raise UsageError(
            f"a shard of {k} OSes needs {minutes} minutes, more than a job may run "
            f"({GITHUB_MAX_MINUTES}); add runners (TEMPLATE_RUNNERS) or workers"
        )
    return Plan(shards, workers, os_minutes, minutes)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runners", type=int, required=True, help="runners to split the OSes over")
    p.add_argument("--workers", type=int, default=5, help="pytest -n of each runner [5]")
    p.add_argument("--os", help="'all' or a comma list [env TEMPLATE_OS]")
    p.add_argument("--platform", help="xcpng or local [env TEMPLATE_PLATFORM, default xcpng]")
    p.add_argument("--packer-dir", type=Path, help="the Packer templates folder")
    p.add_argument(
        "--github-output",
        type=Path,
        metavar="FILE",
        help="append matrix=, timeout= and arithmetic= lines ($GITHUB_OUTPUT)",
    )


def _run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(os=args.os, platform=args.platform, packer_dir=args.packer_dir)
        specs = load_catalog(settings.packer_dir).select(settings.os, settings.platform)
        for s in specs:
            s.template_for(settings.platform)
        plan = make_plan([s.name for s in specs], args.runners, args.workers, settings)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in _table(plan):
        print(line)
    if args.github_output:
        with args.github_output.open("a") as fh:
            fh.write(f"matrix={json.dumps(plan.matrix(), separators=(',', ':'))}\n")
            fh.write(f"timeout={plan.timeout_minutes}\n")
            fh.write(f"arithmetic={plan.arithmetic()}\n")
    return 0


def _table(plan: Plan) -> list[str]:
    rows = [f"shard {row['shard']}: {row['os']}" for row in plan.matrix()["include"]]
    return [*rows, f"job time limit: {plan.arithmetic()}"]


COMMAND = Command(
    "plan",
    "split the selected OSes over N runners and compute the job time limit",
    "--runners 3 --os all",
    _arguments,
    _run,
    description=__doc__ or "",
)
