"""Per-process state of a harness session, kept in the pytest config stash."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from build.builder import BuildContext
from build.cache import ImageCache
from core.model import TemplateSpec
from core.platform import Platform
from core.redact import Redactor
from core.settings import Settings
from harness.freshness import pending_updates_reason
from harness.progress import StatusBoard
from pkgdb.archive import Archive
from platforms.leftovers import run_dir


def new_run_id() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


@dataclass
class Harness:
    """What one pytest process knows of the session: settings, selected OSes, run id."""

    config: pytest.Config
    settings: Settings
    repo_root: Path
    redactor: Redactor
    active: bool = False  # an OS is selected: the template pipeline runs
    specs: dict[str, TemplateSpec] = field(default_factory=dict)  # selected, by name
    run_id: str = ""
    failed_os: set[str] = field(default_factory=set)
    # OSes with a selected check that needs the clone: only these start one (harness/fixtures)
    clone_wanted: set[str] = field(default_factory=set)
    # OS -> the background fixtures its selected checks read (harness/scheduling.py)
    background_wanted: dict[str, set[str]] = field(default_factory=dict)
    interrupted: bool = False  # the session ended on a signal (pytest's exit status 2)
    started_at: float = field(default_factory=time.time)
    _board: StatusBoard | None = None
    _platform: Platform | None = None
    _build_ctx: BuildContext | None = None

    @property
    def run_dir(self) -> Path:
        """Shared by every process of the session (build-once records, progress)."""
        return run_dir(self.settings.artifacts_dir, self.run_id)

    @property
    def board(self) -> StatusBoard:
        if self._board is None:
            self._board = StatusBoard(self.run_dir)
        return self._board

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def platform_name(self) -> str:
        return self.settings.platform

    def platform(self) -> Platform:
        if self._platform is None:
            self._platform = self.config.hook.pytest_harness_make_platform(
                name=self.platform_name,
                settings=self.settings,
                run_id=self.run_id,
                redactor=self.redactor,
            )
        return self._platform

    def build_context(self) -> BuildContext:
        if self._build_ctx is None:
            s = self.settings
            self._build_ctx = BuildContext(
                platform_name=self.platform_name,
                platform=self.platform(),
                run_id=self.run_id,
                packer_bin=s.packer_bin,
                packer_dir=s.packer_dir,
                repo_root=self.repo_root,
                artifacts_dir=s.artifacts_dir,
                cache=ImageCache(s.cache_dir),
                timeout_s=s.build_timeout,
                max_age_s=s.max_image_age,
                rebuild=s.rebuild,
                redactor=self.redactor,
                provided_artifact=s.xva,
                status=self.board.set,
            )
            if not s.reuse_with_pending_updates:
                archive = Archive(s.cache_dir / "archive", s.archive_max_age)
                self._build_ctx.stale_reason = pending_updates_reason(archive)
        return self._build_ctx


HARNESS_KEY = pytest.StashKey[Harness]()
