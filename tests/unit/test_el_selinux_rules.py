"""validations/selinux.py: file_contexts matched as libselinux matches them.

Each rule of the matcher (exact paths last, last match wins, file types, <<none>>, path
aliases) is pinned on a small file_contexts, and compared with libselinux's selabel_lookup on
the same file where selinux-utils is installed (scripts/apt-packages.txt installs it).
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from core.errors import InfrastructureError
from validations import selinux
from validations.inode import Stat

FILE_CONTEXTS = """\
/.*	system_u:object_r:default_t:s0
/etc/.*	system_u:object_r:etc_t:s0
/etc/app(/.*)?	system_u:object_r:app_etc_t:s0
/etc/app/secret.*	--	system_u:object_r:app_secret_t:s0
/etc/app/run	-d	system_u:object_r:app_run_t:s0
/etc/app/cache(/.*)?	<<none>>
/etc/plain	system_u:object_r:plain_exact_t:s0
/etc/pl.in	system_u:object_r:plain_regex_t:s0
/usr/lib/units(/.*)?	system_u:object_r:unit_t:s0
"""
SUBS = "/etc/units /usr/lib/units\n"
FILE = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755
LINK = stat.S_IFLNK | 0o777

CASES = [
    ("/etc/hosts", FILE, "etc_t"),  # the general rule
    ("/etc/app", DIR, "app_etc_t"),  # (/.*)? matches the folder itself
    ("/etc/app/secret.key", FILE, "app_secret_t"),  # more specific, later: wins
    ("/etc/app/secret.d", DIR, "app_etc_t"),  # -- names regular files only
    ("/etc/app/run", DIR, "app_run_t"),
    ("/etc/app/run", FILE, "app_etc_t"),
    ("/etc/plain", FILE, "plain_exact_t"),  # exact paths are tried before any regex
    ("/etc/units/a.service", LINK, "unit_t"),  # alias from file_contexts.subs
    ("/srv/x", FILE, "default_t"),
]


@pytest.fixture
def rules(tmp_path: Path) -> tuple[selinux.FileContexts, Path]:
    fc = tmp_path / "file_contexts"
    fc.write_text(FILE_CONTEXTS)
    (tmp_path / "file_contexts.subs").write_text(SUBS)
    specs = selinux.parse_specs(FILE_CONTEXTS, str(fc))
    return selinux.FileContexts(specs, selinux.parse_subs(SUBS)), fc


@pytest.mark.parametrize(("path", "mode", "want"), CASES)
def test_lookup(rules: tuple[selinux.FileContexts, Path], path: str, mode: int, want: str) -> None:
    spec = rules[0].lookup(path, mode)
    assert spec is not None and selinux.context_type(spec.context) == want


def test_none_means_leave_unlabelled(rules: tuple[selinux.FileContexts, Path]) -> None:
    fc, _ = rules
    st = Stat(FILE, 0, 0, 0)
    assert selinux.mislabel(fc, "/etc/app/cache/x", st, None) is None
    assert selinux.mislabel(fc, "/etc/hosts", st, "system_u:object_r:etc_t:s0") is None
    assert selinux.mislabel(fc, "/etc/hosts", st, None) == (
        f"/etc/hosts: unlabeled, policy wants etc_t ({fc.lookup('/etc/hosts', FILE).source})"  # type: ignore[union-attr]
    )
    assert "labelled user_tmp_t, policy wants etc_t" in str(
        selinux.mislabel(fc, "/etc/hosts", st, "unconfined_u:object_r:user_tmp_t:s0")
    )


def test_a_reader_without_attributes_is_an_infrastructure_error() -> None:
    class NoXattr:
        pass

    with pytest.raises(InfrastructureError, match="cannot read extended attributes"):
        selinux.label(NoXattr(), "/etc/hosts")  # type: ignore[arg-type]


def test_a_pattern_python_cannot_compile_is_skipped() -> None:
    specs = selinux.parse_specs(
        "/etc/(?<bad.*	system_u:object_r:x_t:s0\n/etc/.*	a:b:etc_t:s0\n", "fc"
    )
    assert [s.context for s in specs] == ["a:b:etc_t:s0"]


@pytest.mark.skipif(not shutil.which("selabel_lookup"), reason="apt-get install selinux-utils")
@pytest.mark.parametrize(("path", "mode", "want"), CASES)
def test_libselinux_agrees(
    rules: tuple[selinux.FileContexts, Path], path: str, mode: int, want: str
) -> None:
    _, fc = rules
    done = subprocess.run(
        ["selabel_lookup", "-b", "file", "-k", path, "-t", str(mode), "-f", str(fc)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert selinux.context_type(done.stdout.strip().removeprefix("Default context: ")) == want
