"""Read the artifact offline in a thread while the clone is started.

The offline checks read the image itself (validations/offline.py): a walk of the whole root
filesystem, account files, configuration. They run first, while the clone boots under TCG
(harness/fixtures.py); the loader opens the image and walks it in a thread started beside the
clone's start, so neither waits for the other."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from core.model import BuildResult


class ImageLoader:
    """One OS's artifact, opened read-only and walked in the background."""

    def __init__(self, build: BuildResult, workdir: Path) -> None:
        self.build = build
        self.workdir = workdir
        self._stack = contextlib.ExitStack()
        self._image: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._load, name=f"image-{build.os_name}", daemon=True
        )
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def _load(self) -> None:
        from validations.offline import open_image

        try:
            image = self._stack.enter_context(open_image(self.build, self.workdir))
            for _ in image.walk("/"):  # lists every folder once; later reads hit the cache
                pass
            self._image = image
        except BaseException as exc:  # handed to the checks, which report it as theirs
            self._error = exc

    def get(self) -> Any:
        """The opened image; waits for the walk. A failure to open it is raised here, in the
        check that needs the image, with its own class (infrastructure or image defect)."""
        self.start()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._image

    def close(self) -> None:
        if self._started:
            self._thread.join()
        self._stack.close()
