"""The Debian base disk the local Packer build starts from, cached by recipe digest and age.

Debian's installer cannot run here (the registry serves no .udeb), so the local build starts
from an mmdebstrap root made into a UEFI-bootable GPT disk by basedisk.sh. The OS var file
names the suite and kernel package (local_base_suite, local_kernel_package); the catalog
refuses the local platform for an OS without them. Making a disk takes a few minutes, so each
recipe is built once per machine, in a temporary directory renamed into place, under a file
lock so parallel workers or sessions never build it twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from core.errors import InfrastructureError, UsageError
from core.files import sha256_file
from core.model import TemplateSpec
from core.ownership import stale_entries, tag, temp_dir
from core.proc import start_group, supervise
from core.signals import deferred
from core.trees import remove_tree, remove_trees

SCRIPT = Path(__file__).with_name("basedisk.sh")
MIRROR = "http://deb.debian.org"
SUITE_VAR, KERNEL_VAR = "local_base_suite", "local_kernel_package"
_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")  # a Debian suite or package name
DEFAULT_SIZE_MB = 6144
MIN_SIZE_MB = 2048
# What the image needs to boot, be reached by Packer and cloud-init, and run the scripts (the
# kernel package comes from the OS var file).
PACKAGES = (
    "initramfs-tools",
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "openssh-client",
    "cloud-init",
    "cloud-guest-utils",
    "sudo",
    "netplan.io",
    "systemd-resolved",
    "iproute2",
    "netbase",
    "ca-certificates",
    "e2fsprogs",
    "procps",
    "less",
    "locales",  # cloud-init's locale module fails without update-locale
)
LOCK_TIMEOUT_S = 3600.0
TIMEOUT_S = 3600.0
GRACE_S = 30.0
# The build runs in its own mount and pid namespaces. mmdebstrap's mounts in the new root
# (proc, sysfs, devpts, dev/shm) then exist only there and vanish with its last process; every
# process of the namespace dies with its first one (--kill-child), which dies with unshare,
# which dies with the harness (parent-death signal). So nothing mounted outlives the harness,
# SIGKILL included. A stop by signal first gives mmdebstrap SIGINT, which it handles by
# unmounting, and GRACE_S to do so (unshare itself waits for its child).
NAMESPACE = ("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child")
META = "meta.json"
IMAGE = "base.qcow2"


@dataclass(frozen=True)
class Recipe:
    """What shapes a base disk: the Debian suite, its kernel package and the disk size."""

    suite: str
    kernel_package: str
    size_mb: int = DEFAULT_SIZE_MB

    @property
    def packages(self) -> tuple[str, ...]:
        return (self.kernel_package, *PACKAGES)

    def digest(self) -> str:
        """Digest of the recipe and the script: a changed recipe means a new cache entry."""
        h = hashlib.sha256()
        h.update(SCRIPT.read_bytes())
        h.update(json.dumps([self.suite, MIRROR, sorted(self.packages), self.size_mb]).encode())
        return h.hexdigest()


@dataclass(frozen=True)
class BaseDisk:
    path: Path
    sha256: str
    built_at: float
    digest: str
    size_mb: int
    cached: bool


def size_for(spec: TemplateSpec) -> int:
    """Root disk size: the OS var file's disk_size_mb, else the default; at least the minimum."""
    size = spec.disk_size_mb or spec.variables.get("disk_size_mb") or DEFAULT_SIZE_MB
    return max(int(size), MIN_SIZE_MB)


def recipe_for(spec: TemplateSpec) -> Recipe:
    """The base-disk recipe an OS var file asks for; the catalog already refused an OS without
    one, so a missing or malformed value here names the var file to fix."""
    values = {k: str(spec.variables.get(k) or "") for k in (SUITE_VAR, KERNEL_VAR)}
    bad = [f"{k}={v!r}" for k, v in values.items() if not _NAME.match(v)]
    if bad:
        raise UsageError(
            f"{spec.name}: the local platform needs a Debian suite and kernel package in "
            f"{spec.var_file or 'its var file'} ({', '.join(bad)}); set e.g. "
            f'{SUITE_VAR} = "trixie" and {KERNEL_VAR} = "linux-image-amd64"'
        )
    return Recipe(values[SUITE_VAR], values[KERNEL_VAR], size_for(spec))


def _load(entry: Path, max_age_s: float) -> BaseDisk | None:
    """The cached disk if complete and young enough (max_age_s <= 0 means never reuse)."""
    try:
        meta = json.loads((entry / META).read_text())
        image = entry / IMAGE
        if not image.is_file() or max_age_s <= 0:
            return None
        if time.time() - float(meta["built_at"]) > max_age_s:
            return None
        return BaseDisk(
            image, meta["sha256"], float(meta["built_at"]), meta["digest"], meta["size_mb"], True
        )
    except (OSError, ValueError, KeyError):
        return None


def _run(argv: list[str], log: Callable[[str], None], env: dict[str, str]) -> None:
    """Run the build script in its own namespaces, stopped the way Packer is stopped."""
    tail: deque[str] = deque(maxlen=30)

    def on_line(raw: str) -> None:
        tail.append(raw.rstrip())
        log(raw.rstrip())

    def on_stop(why: str) -> None:
        log(f"base disk: {why}: SIGINT to mmdebstrap (it unmounts), SIGKILL after {GRACE_S:.0f}s")

    try:
        proc = start_group([*NAMESPACE, *argv], env=env, death_signal=signal.SIGKILL)
    except FileNotFoundError:
        raise InfrastructureError(
            "unshare not found; install it: apt-get install util-linux"
        ) from None
    ended = supervise(proc, timeout_s=TIMEOUT_S, grace_s=GRACE_S, on_line=on_line, on_stop=on_stop)
    if ended == "timed out":
        why = f"timed out after {TIMEOUT_S:.0f}s"
    elif proc.returncode != 0:
        why = f"exit {proc.returncode}"
    else:
        return
    raise InfrastructureError(
        f"building the Debian base disk failed ({why}); last output:\n"
        + "\n".join(tail)
        + "\nfix: check network access to the Debian registry and the tools preflight lists"
    )


def ensure_base_disk(
    cache_dir: Path,
    log: Callable[[str], None],
    recipe: Recipe,
    max_age_s: float = 7 * 86400,
) -> BaseDisk:
    """Return the cached base disk for this recipe, building it first if absent or too old."""
    recipe = Recipe(recipe.suite, recipe.kernel_package, max(int(recipe.size_mb), MIN_SIZE_MB))
    digest = recipe.digest()
    base = cache_dir / "base"
    base.mkdir(parents=True, exist_ok=True)
    entry = base / digest[:20]
    with FileLock(str(base / f"{digest[:20]}.lock"), timeout=LOCK_TIMEOUT_S):
        found = _load(entry, max_age_s)
        if found:
            log(f"base disk: cache hit {found.path} ({recipe.suite})")
            return found
        _log_problems(log, remove_trees(stale_entries(base, (".tmp-", ".old-"))))
        tmp = temp_dir(f".tmp-{digest[:20]}", base)
        try:
            started = time.monotonic()
            log(f"base disk: building {recipe.suite} ({recipe.size_mb} MiB) into {tmp}")
            env = {k: v for k, v in os.environ.items() if not k.startswith("PKR_VAR_")}
            # mmdebstrap's own temporary files (its gpg home, ...) inside this entry, so a
            # SIGKILL leaves them where the next run removes the entry, not in /tmp
            (tmp / "tmp").mkdir()
            env["TMPDIR"] = str(tmp / "tmp")
            work = tmp / "work"
            _run(
                [
                    "bash",
                    str(SCRIPT),
                    str(tmp / IMAGE),
                    str(recipe.size_mb),
                    str(work),
                    recipe.suite,
                    MIRROR,
                    ",".join(recipe.packages),
                ],
                log,
                env,
            )
            _log_problems(log, remove_trees([work, tmp / "tmp"]))
            built_at = time.time()
            sha = sha256_file(tmp / IMAGE)
            meta = {
                "digest": digest,
                "sha256": sha,
                "built_at": built_at,
                "size_mb": recipe.size_mb,
                "suite": recipe.suite,
                "packages": list(recipe.packages),
                "seconds": round(time.monotonic() - started, 1),
            }
            (tmp / META).write_text(json.dumps(meta, indent=1))
            old = None
            if entry.exists():
                old = base / f"{tag(f'.old-{digest[:20]}')}0"
                entry.rename(old)
            tmp.rename(entry)
            if old:
                _log_problems(log, remove_tree(old))
            log(f"base disk: built in {meta['seconds']} s: {entry / IMAGE}")
            return BaseDisk(entry / IMAGE, sha, built_at, digest, recipe.size_mb, False)
        finally:
            with deferred():  # a second signal must not leave half a root behind
                _log_problems(log, remove_tree(tmp))


def _log_problems(log: Callable[[str], None], problems: list[str]) -> None:
    for problem in problems:
        log(f"base disk: left behind: {problem}")
