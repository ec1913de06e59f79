"""core.trees.remove_tree: one filesystem, never through a mount point.

Mount cases run in a child process inside its own private mount namespace (`unshare --mount
--propagation private`): the mounts they make (a bind of a "precious" folder, a procfs, like a
killed mmdebstrap leaves in its root) exist only there and vanish with the child.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.trees import mounts_below, remove_tree

REPO = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="mount cases need root and unshare (util-linux)",
)


def tree(root: Path) -> Path:
    """A temporary tree with files, a nested folder and symlinks pointing out of it."""
    (root / "t" / "a" / "b").mkdir(parents=True)
    (root / "t" / "a" / "b" / "f").write_text("x")
    (root / "t" / "top").write_text("y")
    (root / "outside").mkdir()
    (root / "outside" / "keep").write_text("precious")
    (root / "t" / "link-dir").symlink_to(root / "outside")
    (root / "t" / "a" / "link-file").symlink_to(root / "outside" / "keep")
    return root / "t"


def test_removes_a_tree_and_never_follows_a_symlink(tmp_path: Path) -> None:
    t = tree(tmp_path)
    assert remove_tree(t) == []
    assert not t.exists()
    assert (tmp_path / "outside" / "keep").read_text() == "precious"


def test_missing_path_and_plain_file(tmp_path: Path) -> None:
    assert remove_tree(tmp_path / "nothing") == []
    (tmp_path / "file").write_text("x")
    assert remove_tree(tmp_path / "file") == []
    assert not (tmp_path / "file").exists()


def in_private_namespace(tmp_path: Path, body: str) -> dict:
    """Run `body` (Python, with `t`, `outside`, `remove_tree`, `trees` bound) in a child
    process with its own mount namespace; it prints a JSON result."""
    t = tree(tmp_path)
    script = textwrap.dedent(
        f"""
        import json, subprocess, sys
        from pathlib import Path
        from core import trees
        from core.trees import remove_tree
        t, outside = Path({str(t)!r}), Path({str(tmp_path / "outside")!r})
        def mount(*argv):
            subprocess.run(["mount", *argv], check=True)
        """
    ) + textwrap.dedent(body)
    out = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", script],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_root
def test_bind_mount_and_proc_inside_are_unmounted_then_removed(tmp_path: Path) -> None:
    """What a killed mmdebstrap leaves: proc in the root, and (worse) a bind mount."""
    r = in_private_namespace(
        tmp_path,
        """
        (t / "a" / "proc").mkdir(); (t / "a" / "bind").mkdir()
        mount("-t", "proc", "proc", str(t / "a" / "proc"))
        mount("--bind", str(outside), str(t / "a" / "bind"))
        before = [str(m) for m in trees.mounts_below(t)]
        problems = remove_tree(t)
        print(json.dumps({"before": before, "problems": problems, "exists": t.exists(),
                          "after": [str(m) for m in trees.mounts_below(t)]}))
        """,
    )
    assert len(r["before"]) == 2, r
    assert r["problems"] == [] and r["exists"] is False and r["after"] == []
    assert (tmp_path / "outside" / "keep").read_text() == "precious"


@needs_root
def test_a_mount_that_cannot_be_freed_stops_the_removal_and_is_named(tmp_path: Path) -> None:
    r = in_private_namespace(
        tmp_path,
        """
        (t / "bind").mkdir()
        mount("--bind", str(outside), str(t / "bind"))
        trees.unmount = lambda path: "Operation not permitted"
        problems = remove_tree(t)
        print(json.dumps({"problems": problems, "top": (t / "top").exists()}))
        """,
    )
    (problem,) = r["problems"]
    assert "is a mount point (Operation not permitted)" in problem
    assert f"umount -R {tmp_path / 't' / 'bind'}" in problem
    assert r["top"] is True, "nothing of the tree may be deleted while a mount is in it"
    assert (tmp_path / "outside" / "keep").read_text() == "precious"


@needs_root
def test_a_mount_missed_beforehand_is_never_crossed(tmp_path: Path) -> None:
    """A bind mount of the same filesystem (same st_dev) that appears after the mount table was
    read: the walk itself refuses to enter it (mount id per open folder)."""
    r = in_private_namespace(
        tmp_path,
        """
        (t / "a" / "bind").mkdir()
        mount("--bind", str(outside), str(t / "a" / "bind"))
        trees.mounts_below = lambda root: []
        problems = remove_tree(t)
        print(json.dumps({"problems": problems, "top": (t / "top").exists(),
                          "f": (t / "a" / "b" / "f").exists()}))
        """,
    )
    (problem,) = r["problems"]
    assert f"{tmp_path / 't' / 'a' / 'bind'} is a mount point" in problem
    assert r["top"] is False and r["f"] is False, "the rest of the tree is removed"
    assert (tmp_path / "outside" / "keep").read_text() == "precious"


def test_mounts_below_reads_escaped_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "24 1 8:1 / / rw - ext4 /dev/vda rw\n"
        f"30 24 0:5 / {tmp_path}/with\\040space/proc rw - proc proc rw\n"
        f"31 24 0:6 / {tmp_path}/with\\040space rw - tmpfs none rw\n"
    )
    monkeypatch.setattr("core.trees.MOUNTINFO", info)
    assert mounts_below(tmp_path / "with space") == [
        tmp_path / "with space" / "proc",
        tmp_path / "with space",
    ]
    assert mounts_below(tmp_path / "other") == []
