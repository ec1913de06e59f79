"""One XVA import through `PUT /import`, shared by the harness's boot and by
`xcpng-golden pool import`.

Each attempt runs under its own task and the session's retry policy; whatever an attempt that
failed or was interrupted left (a VM its task created, with its disks, and the task) is removed
before the next attempt or the error, once the task has settled, so nothing half-imported stays
on the pool. The caller hears of each task (`started`, `finished`, `dropped`) to keep its own
records (the harness's ledger).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import XenAPI

from core.errors import ImageDefect, InfrastructureError
from platforms.xcpng import objects
from platforms.xcpng.client import SessionRejected, UploadInterrupted, Xapi, describe, failure_code
from platforms.xcpng.tls import CertificateMismatch
from platforms.xcpng.transfer import Body, result_ref, task_error, upload

log = logging.getLogger("platforms.xcpng")
TaskHook = Callable[[str], None]


def _noop(_task: str) -> None:
    pass


def drop_import(xapi: Xapi, task: str, settle: float = 3.0) -> list[str]:
    """Undo an import attempt: wait (bounded) for its task to settle, remove any VM it created
    with its disks, then the task. Returns what could not be removed."""
    try:
        task_error(xapi, task, settle=settle)  # a pending import may still create objects
    except (XenAPI.Failure, OSError) as exc:
        log.debug("import task %s: %s", task, xapi.redactor(describe(exc)))
    try:
        leftovers = []
        for vm in objects.vms_of_task(xapi, task):
            leftovers += objects.destroy_vm(xapi, vm)
    except (XenAPI.Failure, OSError) as exc:
        leftovers = [xapi.redactor(describe(exc))]
    objects.forget_task(xapi, task)
    return leftovers


def lost_task(exc: BaseException) -> bool:
    """The import's task vanished (HANDLE_INVALID on it): the toolstack restarted under us."""
    details = exc.details if isinstance(exc, XenAPI.Failure) else []
    return len(details) >= 2 and details[0] == "HANDLE_INVALID" and details[1] == "task"


def _once_more_if_the_task_is_lost(xapi: Xapi, label: str, run: Callable[[], str]) -> str:
    """A lost task is a known infrastructure flake: the attempt was undone (drop_import), so
    the import is sent once more; lost again, it is reported as such. Nothing else is retried
    here (an XVA the pool refused is the image's fault and is never sent twice)."""
    try:
        return run()
    except XenAPI.Failure as exc:
        if not lost_task(exc):
            raise
        log.warning("%s lost its task (%s); sending it once more", label, describe(exc))
    try:
        return run()
    except XenAPI.Failure as exc:
        if lost_task(exc):
            raise InfrastructureError(
                f"{label} lost its task twice ({describe(exc)}): the pool's toolstack restarted "
                "during both imports; check the master's /var/log/xensource.log and rerun"
            ) from None
        raise


def import_xva(
    xapi: Xapi,
    src: Path | Body,
    sr: str,
    *,
    name: str,
    what: str,
    started: TaskHook = _noop,
    finished: Callable[[str, str], None] = lambda _task, _vm: None,
    dropped: Callable[[str, list[str]], None] = lambda _task, _left: None,
) -> str:
    """Import the XVA `src` (called `what` in messages) into `sr` for `name`; return the new
    VM's ref.

    A refusal of the XVA by the pool (`IMPORT_*`) raises ImageDefect; anything else that is
    not retried away raises InfrastructureError. Other exceptions raised while the body is read
    (e.g. a checksum found wrong at its end) pass through, after the attempt was undone."""

    label = f"import {name}"

    def attempt() -> str:
        task = str(xapi.call("task.create", "xcpng-golden import", name))
        started(task)
        try:
            vm = result_ref(upload(xapi, "/import", {"sr_id": sr}, src, task, label=label))
        except SessionRejected:
            xapi.relogin()
            dropped(task, drop_import(xapi, task))
            raise
        except BaseException:
            dropped(task, drop_import(xapi, task))
            raise
        finished(task, vm)
        objects.forget_task(xapi, task)
        return vm

    try:
        return _once_more_if_the_task_is_lost(xapi, label, lambda: xapi.attempt(label, attempt))
    except XenAPI.Failure as exc:
        # the pool read the XVA and refused it (IMPORT_ERROR_*, IMPORT_INCOMPATIBLE_VERSION):
        # the image is at fault; anything else (space, SR backend) is the pool's
        kind = ImageDefect if failure_code(exc).startswith("IMPORT_") else InfrastructureError
        raise kind(f"{name}: import of {what} failed: {xapi.redactor(describe(exc))}") from None
    except CertificateMismatch as exc:
        raise InfrastructureError(f"{name}: import of {what} stopped: {exc}") from None
    except (UploadInterrupted, SessionRejected, OSError, TimeoutError) as exc:
        raise InfrastructureError(
            f"{name}: import of {what} failed after retries: {xapi.redactor(str(exc))}"
        ) from None
