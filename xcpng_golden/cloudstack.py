"""The CloudStack commands: preflight, register, rollback, list (`xcpng-golden cloudstack ...`).

`xcpng-golden publish` (and pytest's --publish) registers by itself with TEMPLATE_CLOUDSTACK=1;
these are for a build already in the store, for moving the featured template back, and to look.
Settings (CLOUDSTACK_*) come from the environment, the secrets only from there.

Exit 0 done, 1 CloudStack refused or the template did not become ready (its status said), 2 usage
(a missing setting, an unknown zone, OS, OS type or build), 3 CloudStack or the store unreachable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from core.commands import Command, Run
from core.destination import Destination
from core.errors import InfrastructureError, UsageError
from core.redact import Redactor
from core.settings import Settings
from publish.cloudstack import CloudStackRefused
from publish.cloudstack.api import CloudStackApi
from publish.cloudstack.register import BuildToRegister, Registrar, vhd_url
from publish.stores import open_store
from publish.stores.base import IntegrityError

Say = Callable[[str], None]
Body = Callable[[argparse.Namespace, Settings, Registrar, Say], int]


def _guarded(body: Body) -> Run:
    def run(args: argparse.Namespace) -> int:
        redactor = Redactor([])
        try:
            settings = Settings.from_env()
            redactor = Redactor(settings.secrets())

            def say(msg: str) -> None:
                print(redactor(msg), flush=True)

            api = CloudStackApi(settings.cloudstack, redactor)
            return body(args, settings, Registrar(api, settings.cloudstack, say), say)
        except UsageError as e:
            print(f"error: {redactor(str(e))}", file=sys.stderr)
            return 2
        except (CloudStackRefused, IntegrityError) as e:
            print(f"error: {redactor(str(e))}", file=sys.stderr)
            return 1
        except InfrastructureError as e:
            print(f"error: {redactor(str(e))}", file=sys.stderr)
            return 3
        except KeyboardInterrupt:
            print("interrupted: a registration under way was deleted", file=sys.stderr)
            return 130

    return run


def _preflight(
    args: argparse.Namespace, s: Settings, r: Registrar, say: Callable[[str], None]
) -> int:
    problems = r.preflight()
    for p in problems:
        say(p)
    if not problems:
        say(f"CloudStack at {s.cloudstack.endpoint}: signed listZones answered; zones "
            f"{', '.join(s.cloudstack.zones)} found")  # fmt: skip
    return 2 if problems else 0


def _register(
    args: argparse.Namespace, s: Settings, r: Registrar, say: Callable[[str], None]
) -> int:
    from publish.source import find_build

    dest = Destination.parse(args.source, "--from") if args.source else s.publish_to
    store = open_store(dest, s.s3)
    build = find_build(store, args.os, args.build)
    vhd = build.meta.get("vhd") or {}
    url = vhd_url(s.cloudstack, store, build.key(vhd.get("name", "")))
    for line in r.register(BuildToRegister.from_metadata(build.meta, url)):
        say(line)
    return 0


def _rollback(
    args: argparse.Namespace, s: Settings, r: Registrar, say: Callable[[str], None]
) -> int:
    for line in r.rollback(args.os, args.to):
        say(line)
    return 0


def _list(args: argparse.Namespace, s: Settings, r: Registrar, say: Say) -> int:
    regs = r.registered(args.os)
    if not regs:
        say(f"{args.os}: nothing registered")
    for reg in regs:
        zones = ", ".join(f"{z}: {status or state}" for z, (_, status, state) in reg.zones.items())
        mark = " (featured)" if reg.featured else ""
        say(f"{reg.build_id}  {reg.name}{mark}  {zones}")
    return 0


def _register_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", help="s3://bucket/prefix or a folder [env "
                   "TEMPLATE_PUBLISH_TO]")  # fmt: skip
    p.add_argument("--os", required=True, help="OS name, e.g. debian12")
    p.add_argument("--build", help="build id (default: the latest)")


def _rollback_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--os", required=True, help="OS name, e.g. debian12")
    p.add_argument("--to", help="the build id to feature (default: the one before the featured)")


def _os_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--os", required=True, help="OS name, e.g. debian12")


def _nothing(_p: argparse.ArgumentParser) -> None:
    pass


COMMANDS = (
    Command(
        "preflight",
        "one read-only signed call (listZones): endpoint, keys, clock and zones",
        "",
        _nothing,
        _guarded(_preflight),
    ),
    Command(
        "register",
        "register a published build's VHD in the configured zones and wait until ready",
        "--from s3://bucket/templates --os debian12",
        _register_arguments,
        _guarded(_register),
    ),
    Command(
        "rollback",
        "make the previous registered build of an OS its featured template again",
        "--os debian12",
        _rollback_arguments,
        _guarded(_rollback),
    ),
    Command(
        "list",
        "the registered builds of an OS, newest first, with each zone's status",
        "--os debian12",
        _os_argument,
        _guarded(_list),
    ),
)
