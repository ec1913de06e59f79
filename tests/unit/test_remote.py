"""validations/remote.py: many questions, one round trip, answers framed so none can forge
another's."""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.waiting import WaitTimeout
from validations.remote import RemoteError, ask, collect, launch


@dataclass
class _Out:
    rc: int
    stdout: str
    stderr: str


class LocalHost:
    """testinfra's host.run and host.sudo, on this machine (the tests run as root)."""

    def __init__(self) -> None:
        self.calls = 0
        self.sudo = contextlib.nullcontext

    def run(self, command: str) -> _Out:
        self.calls += 1
        proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        return _Out(proc.returncode, proc.stdout, proc.stderr)


def test_every_answer_in_one_exchange() -> None:
    host = LocalHost()
    answers = ask(
        host,
        {
            "hello": "echo hello",
            "fails": "echo oops >&2; exit 3",
            "binary": "printf 'a\\0b\\n'",
            "forger": "printf '@@deadbeefdeadbeef hello 0\\nZm9yZ2Vk\\n\\n'",
        },
    )
    assert host.calls == 1
    assert answers["hello"].stdout == "hello\n" and answers["hello"].rc == 0
    assert answers["fails"].rc == 3 and answers["fails"].stderr == "oops\n"
    assert answers["binary"].stdout == "a\0b\n"
    assert answers["forger"].stdout.startswith("@@deadbeef")
    assert answers["hello"].stdout == "hello\n"  # the forged frame changed nothing


def test_a_batch_that_did_not_run_is_an_error() -> None:
    class Broken:
        sudo = contextlib.nullcontext

        def run(self, command: str) -> _Out:
            return _Out(127, "", "sh: not found")

    with pytest.raises(RemoteError, match="answered 0 of 1"):
        ask(Broken(), {"x": "true"})


def test_names_must_be_words() -> None:
    with pytest.raises(ValueError, match="single words"):
        ask(LocalHost(), {"two words": "true"})


def test_questions_run_side_by_side(tmp_path: Path) -> None:
    """Each waits for the other's mark: only side by side can both answer."""
    a, b = tmp_path / "a", tmp_path / "b"
    wait = "i=0; while [ ! -e {0} ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; [ -e {0} ]"
    both = {"x": f"touch {a}; {wait.format(b)}", "y": f"touch {b}; {wait.format(a)}"}
    answers = ask(LocalHost(), both)
    assert [answers["x"].rc, answers["y"].rc] == [0, 0]


def test_launched_questions_run_in_the_background_step_after_step(tmp_path: Path) -> None:
    """`launch` returns while the clone still works; each step sees what the one before
    saved; `collect` waits, answers every question and removes the folder."""
    host = LocalHost()
    folder = tmp_path / "bg"
    gate = tmp_path / "gate"
    steps = [
        {"first": f"i=0; while [ ! -e {gate} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; "
         f"echo saved >{tmp_path}/saved"},
        {"second": f"cat {tmp_path}/saved", "fails": "echo no >&2; exit 4"},
    ]  # fmt: skip
    pending = launch(host, steps, str(folder))
    assert not (tmp_path / "saved").exists()  # still waiting on the gate: launch did not wait
    gate.touch()
    answers = collect(host, pending, timeout=30)
    assert answers["first"].rc == 0
    assert answers["second"].stdout == "saved\n"
    assert (answers["fails"].rc, answers["fails"].stderr) == (4, "no\n")
    assert not folder.exists()


def test_collect_names_what_never_came(tmp_path: Path) -> None:
    host = LocalHost()
    pending = launch(host, [{"x": "true"}], str(tmp_path / "bg"))
    (tmp_path / "bg" / "never").touch()
    broken = type(pending)(pending.folder, "@@not-the-boundary", pending.names, pending.sudo)
    with pytest.raises(RemoteError, match="answered 0 of 1"):
        collect(host, broken, timeout=30)


def test_collect_gives_up_after_its_timeout(tmp_path: Path) -> None:
    host = LocalHost()
    pending = launch(host, [{"slow": "sleep 30"}], str(tmp_path / "bg"))
    with pytest.raises(WaitTimeout):
        collect(host, pending, timeout=0.5)


def test_a_launch_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bg").mkdir()  # the folder must be new: nothing of an earlier launch is read
    with pytest.raises(RemoteError, match="did not start"):
        launch(LocalHost(), [{"x": "true"}], str(tmp_path / "bg"))


def test_names_are_unique_across_steps(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        launch(LocalHost(), [{"x": "true"}, {"x": "true"}], str(tmp_path / "bg"))
