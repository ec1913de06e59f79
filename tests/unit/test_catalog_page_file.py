"""index.html beside index.json, without a browser: rewritten by publish and prune, robust to
one unreadable build, and guarded against presigned links (the browser test is in
tests/integration/test_catalog_page.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.settings import Settings
from publish.catalog_page import publish_page, refresh_index, render_store
from publish.prune import prune
from publish.stores.base import IntegrityError
from publish.stores.local import LocalStore
from tests.support.catalog import publish_three
from xcpng_golden import main as cli


@pytest.fixture
def store(tmp_path: Path) -> Path:
    publish_three(tmp_path, str(tmp_path / "pub"), Settings.from_env(env={}))
    return tmp_path / "pub"


def old_build(store: Path) -> str:
    return sorted(p.name for p in (store / "debian12" / "12").iterdir())[0]


def test_prune_rewrites_the_page(store: Path) -> None:
    old = old_build(store)
    assert old in (store / "index.html").read_text()
    report = prune(LocalStore(store), keep=1, log=lambda _m: None)
    assert report.deleted == [f"debian12/12/{old}"]
    page = (store / "index.html").read_text()
    assert old not in page
    assert "None: this is the only build of it in the store." in page


def test_one_unreadable_build_does_not_take_the_page_down(store: Path) -> None:
    doc = json.loads((store / "alma9" / "latest.json").read_text())
    (store / doc["metadata"]).write_text("{not json")
    refresh_index(LocalStore(store))
    page = (store / "index.html").read_text()
    assert "The current build cannot be shown" in page and "is not JSON" in page
    for name in ("debian12", "ubuntu2404"):
        build = json.loads((store / name / "latest.json").read_text())["build_id"]
        assert build in page


def test_signatures_never_go_into_the_store(store: Path) -> None:
    before = (store / "index.html").read_bytes()
    page = render_store(LocalStore(store)).replace(
        'href="index.json"', 'href="index.json?X-Amz-Credential=AKIA%2F1&amp;X-Amz-Signature=f"'
    )
    with pytest.raises(IntegrityError, match="refusing to write a catalog page with presigned"):
        publish_page(LocalStore(store), page)
    assert (store / "index.html").read_bytes() == before
    # the words alone, in text rather than in a link, are not a signature
    publish_page(LocalStore(store), render_store(LocalStore(store)) + "<!-- X-Amz-Signature -->")


def test_page_command_rewrites_and_refuses_presigning_into_the_store(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (store / "index.html").unlink()
    assert cli.main(["store", "page", "--from", str(store)]) == 0
    assert (store / "index.html").is_file()
    assert cli.main(["store", "page", "--from", str(store), "--presign", "1h"]) == 2
    assert "a page with presigned links is never written into the store" in capsys.readouterr().err


def test_fetch_into_a_file_is_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "a-file"
    target.write_text("")
    argv = ["store", "fetch", "--from", str(store), "--os", "alma9", "--to", str(target)]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith(f"error: --to {target}: cannot make that folder")


def test_pending_security_updates_are_counted_and_named(store: Path) -> None:
    """metadata v2's security_updates: the page says how many, and which, at check time."""
    doc = json.loads((store / "debian12" / "latest.json").read_text())
    meta_path = store / doc["metadata"]
    meta = json.loads(meta_path.read_text())
    assert meta["security_updates"] == []
    assert "0 at check time" in render_store(LocalStore(store))
    meta["security_updates"] = ["libssl3 3.0.19 -> 3.0.22 <bookworm-security>"]
    meta_path.write_text(json.dumps(meta))
    page = render_store(LocalStore(store))
    assert "1 at check time" in page
    assert "libssl3 3.0.19 -&gt; 3.0.22 &lt;bookworm-security&gt;" in page  # escaped
