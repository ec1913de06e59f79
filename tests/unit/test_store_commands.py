"""`xcpng-golden store list` and `store index` on a folder store the real publisher wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.settings import Settings
from tests.support.catalog import publish_three
from xcpng_golden.main import main


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    publish_three(root, str(root / "pub"), Settings.from_env(env={}))
    return root / "pub"


def latest_id(store: Path, os_name: str) -> str:
    return str(json.loads((store / os_name / "latest.json").read_text())["build_id"])


def test_list_names_each_os_with_its_latest_build(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "list", "--from", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        [name, latest_id(store, name)] for name in ("alma9", "debian12", "ubuntu2404")
    ]
    assert all(line.endswith("(latest)") for line in lines)


def test_list_of_one_os_gives_its_builds_newest_first(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "list", "--from", str(store), "--os", "debian12"]) == 0
    ids = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
    assert len(ids) == 2 and ids == sorted(ids, reverse=True)
    assert ids[0] == latest_id(store, "debian12")


def test_list_of_an_unknown_os_names_what_exists(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "list", "--from", str(store), "--os", "fedora43"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "alma9, debian12, ubuntu2404" in err


def test_index_is_rebuilt_from_the_latest_files(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = store / "index.json"
    before = json.loads(index.read_text())
    index.unlink()
    (store / "index.html").unlink()
    assert main(["store", "index", "--to", str(store)]) == 0
    assert json.loads(index.read_text())["os"] == before["os"]
    assert (store / "index.html").is_file()
    assert "index.json lists 3 OS(es)" in capsys.readouterr().out
