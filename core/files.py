"""Files the harness writes: whole or not at all, hashed in one place, shown relative.

Every record, report and pointer appears by rename of a finished temporary file beside it, so
a reader (another xdist worker, the publish step, an operator) never sees half of one. The
temporary file is named after its owner (core.leftovers): what a killed writer left beside the
same target is removed by the next writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from core.leftovers import stale_entries, tag
from core.trees import remove_trees

BLOCK = 1 << 20


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644, fsync: bool = False) -> Iterator[IO[bytes]]:
    """Yield a binary file that replaces `path` only when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_trees(stale_entries(path.parent, (f".{path.name}.pid",)))
    fd, tmp = tempfile.mkstemp(prefix=tag(f".{path.name}"), suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644, fsync: bool = False) -> Path:
    with atomic_writer(path, mode, fsync) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    return path


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> Path:
    return write_atomic(path, json.dumps(data, indent=2) + "\n", mode)


def read_json(path: Path) -> Any | None:
    """The JSON in `path`, or None when it is missing or not (yet) valid."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def display_path(path: Path | str | None, root: Path) -> str | None:
    """`path` relative to `root` when it lies below it, else as it is (for records and logs)."""
    if path is None:
        return None
    p = Path(path)
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)
