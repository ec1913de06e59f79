"""The contract every platform fulfils, so neither the build nor the checks care where a VM runs.

Kept in the core: the build phase calls it and the platforms implement it, and neither may
import the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from core.model import BootedVM, BuildResult, TemplateSpec


class Starting(Protocol):
    def ready(self) -> BootedVM:
        """Wait until the clone answers SSH (and cloud-init settled); the same VM every call."""
        ...


class Started:
    """A clone started and booting on its own (QEMU running, a VM powered on), not yet waited
    for: the harness reads the artifact offline meanwhile. `wait` runs once; its result, or
    its exception, is what every later `ready()` returns."""

    def __init__(self, wait: Callable[[], BootedVM]) -> None:
        self._wait = wait
        self._vm: BootedVM | None = None
        self._error: BaseException | None = None

    def ready(self) -> BootedVM:
        if self._vm is None and self._error is None:
            try:
                self._vm = self._wait()
            except Exception as exc:
                self._error = exc
                raise
        if self._error is not None:
            raise self._error
        assert self._vm is not None
        return self._vm


@contextmanager
def booted(starting: AbstractContextManager[Starting]) -> Iterator[BootedVM]:
    """A platform's `boot` from its `start`: started, then waited for at once."""
    with starting as clone:
        yield clone.ready()


class Platform(Protocol):
    name: str
    has_xen: bool  # False on QEMU: checks that need Xen skip with code platform-has-no-xen

    def preflight(self, specs: Sequence[TemplateSpec] = (), building: bool = True) -> list[str]:
        """Problems found (unreachable, bad credentials, no SR, no room, what the selected OSes
        need from the platform), one line each. `building`: Packer will build them (else
        existing artifacts are only booted)."""
        ...

    def build_vars(
        self, spec: TemplateSpec, workdir: Path, log: Callable[[str], None]
    ) -> dict[str, str]:
        """Packer variables this platform feeds the build (passed as PKR_VAR_* environment,
        never on the command line). The local platform prepares its base disk and build seed
        here; XCP-ng passes pool host, credentials, SR and network. Only variables the template
        declares are passed. `workdir` is private to this build and removed after it."""
        ...

    def recipe_digest(self, spec: TemplateSpec) -> dict[str, str]:
        """Build inputs of this platform's own beyond the packer/ tree (e.g. the local base
        disk's recipe); a change means a rebuild."""
        ...

    def start(
        self, spec: TemplateSpec, build: BuildResult, workdir: Path
    ) -> AbstractContextManager[Starting]:
        """Start a clone of the artifact with its own seed and return while it boots (the
        harness runs the offline checks meanwhile); `ready()` waits for it. Leaving the context
        removes everything it created, unless the harness set the VM's `keep`."""
        ...

    def boot(
        self, spec: TemplateSpec, build: BuildResult, workdir: Path
    ) -> AbstractContextManager[BootedVM]:
        """`start`, then wait for it: `booted(self.start(...))`."""
        ...
