"""The catalog page in a real browser: Debian's chromium, headless, driven by Selenium through
Debian's chromium-driver, on a store the real publisher filled with three OSes (debian12 with
two builds). What the browser shows is read back (text, links, computed styles) and checked
against index.json and each build's metadata; screenshots at desktop and phone widths are kept
in reports/test-artifacts/catalog-page/ (uploaded with the CI run's reports)."""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from core.settings import Settings
from tests.support.catalog import RATIONALES, publish_three

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "reports" / "test-artifacts" / "catalog-page"
CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
# the machine notes' flags for a headless Chromium that reaches for nothing outside
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

# Everything the tests read back from the rendered page, computed by the browser itself.
READ_BACK = """
const sections = {};
for (const s of document.querySelectorAll('main section[id^="os-"]')) {
  const facts = {};
  const dts = s.querySelectorAll('dl.facts dt');
  for (const dt of dts) facts[dt.innerText.trim()] = dt.nextElementSibling.innerText.trim();
  const tables = Array.from(s.querySelectorAll('table')).map(t => ({
    caption: t.caption ? t.caption.innerText.trim() : null,
    rows: Array.from(t.tBodies[0].rows).map(r => Array.from(r.cells).map(c => c.innerText.trim())),
  }));
  const links = Array.from(s.querySelectorAll('a')).map(a => ({href: a.href, text: a.innerText.trim(),
    label: a.getAttribute('aria-label')}));
  sections[s.id.slice(3)] = {heading: s.querySelector('h2').innerText.trim(), facts, tables, links,
    text: s.innerText};
}
const overview = document.querySelector('#overview').parentElement.querySelector('table');
return {
  sections,
  overview: Array.from(overview.tBodies[0].rows).map(r => ({
    cells: Array.from(r.cells).map(c => c.innerText.trim()),
    links: Array.from(r.querySelectorAll('a')).map(a => a.href)})),
  links: Array.from(document.links).map(a => ({href: a.href, text: a.innerText.trim(),
    label: a.getAttribute('aria-label')})),
  scripts: document.scripts.length,
  resources: performance.getEntriesByType('resource').map(e => e.name),
  external: Array.from(document.querySelectorAll('[src], link[href]')).length,
  lang: document.documentElement.lang,
  viewport: (document.querySelector('meta[name=viewport]') || {}).content,
  headings: Array.from(document.querySelectorAll('h1,h2,h3')).map(h => Number(h.tagName[1])),
  tables: Array.from(document.querySelectorAll('table')).map(t => ({
    caption: t.caption ? t.caption.innerText.trim() : '',
    colheads: Array.from(t.tHead.querySelectorAll('th')).map(th => th.scope),
    rowheads: Array.from(t.tBodies[0].rows).map(r => r.cells[0].tagName + ':' + r.cells[0].scope)})),
  regions: Array.from(document.querySelectorAll('[role=region]')).map(r => ({
    tabindex: r.tabIndex,
    name: (document.getElementById(r.getAttribute('aria-labelledby')) || {}).innerText})),
};
"""

# WCAG 2 contrast of every element that has text of its own, against its effective background.
CONTRAST = """
function rgb(s) { const m = s.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : [...m, 1]; }
function lum(c) { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255;
  return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b; }
function background(el) { for (; el; el = el.parentElement) {
  const c = rgb(getComputedStyle(el).backgroundColor); if (c[3] > 0) return c; }
  return [255, 255, 255, 1]; }
const out = [];
for (const el of document.body.querySelectorAll('*')) {
  const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  const fg = lum(rgb(getComputedStyle(el).color)), bg = lum(background(el));
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  out.push([el.tagName + '.' + el.className, Math.round(ratio * 100) / 100,
    parseFloat(getComputedStyle(el).fontSize)]);
}
return out;
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for tool in (CHROMIUM, DRIVER):
        assert Path(tool).exists(), f"{tool} missing: scripts/setup installs chromium-driver"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    publish_three(root, str(root / "pub"), Settings.from_env(env={}))
    return root / "pub"


def local(href: str) -> Path:
    parts = urlsplit(href)
    assert parts.scheme == "file", href
    return Path(unquote(parts.path))


def shoot(driver: Any, name: str, width: int) -> Path:
    """A full-page screenshot at `width` CSS pixels, kept with the test's artifacts."""
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 20, 12000))
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    driver.save_screenshot(str(path))
    return path


def test_page_shows_what_index_json_and_the_metadata_say(browser: Any, store: Path) -> None:
    index = json.loads((store / "index.json").read_text())
    assert sorted(index["os"]) == ["alma9", "debian12", "ubuntu2404"]
    browser.set_window_size(1280, 900)
    browser.get((store / "index.html").as_uri())
    page = browser.execute_script(READ_BACK)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(store / "index.html", SHOTS / "index.html")

    # the overview: one row per OS of index.json, its artifact link pointing at latest.json's
    assert [row["cells"][0] for row in page["overview"]] == sorted(index["os"])
    for row in page["overview"]:
        latest = index["os"][row["cells"][0]]
        assert row["cells"][1] == latest["version"]
        assert local(row["links"][-1]) == store / latest["artifact"]

    for name, latest in index["os"].items():
        meta = json.loads((store / latest["metadata"]).read_text())
        sec = page["sections"][name]
        facts = sec["facts"]
        assert facts["Build id"] == latest["build_id"] == meta["build_id"]
        assert facts["SHA-256"] == latest["sha256"]
        assert facts["Git revision"] == meta["git"]["revision"]
        assert facts["Size"] == f"{latest['size'] / 2**20:.1f} MiB ({latest['size']:,} bytes)"
        assert facts["Built"].startswith(meta["created_at"][:10])
        assert "old when this page was written" in facts["Built"]
        assert facts["Packages"] == f"{len(meta['packages'])} installed"
        assert facts["Security updates pending"] == "0 at check time"
        # links to the artifact, metadata, build log and JUnit of the current build, all there
        folder = store / latest["folder"]
        targets = {local(link["href"]) for link in sec["links"] if "#" not in link["href"]}
        current = {folder / n for n in (meta["artifact"]["name"], "metadata.json")}
        assert current | {folder / "build.log", folder / "junit.xml"} <= targets
        # the verdict: every check id with its rationale, passed or skipped with its code
        checks = next(t for t in sec["tables"] if t["caption"].startswith("Checks of build"))
        rows = {r[0]: r for r in checks["rows"]}
        expected = meta["validation"]["checks"]
        assert set(rows) == set(expected["passed"]) | {s["id"] for s in expected["skipped"]}
        for cid in expected["passed"]:
            assert rows[cid][1] == "passed" and rows[cid][2] == RATIONALES[cid]
        for s in expected["skipped"]:
            assert rows[s["id"]][1] == f"skipped {s['code']}"
            assert rows[s["id"]][2].startswith(RATIONALES[s["id"]])

    # alma9 skipped a check with a code; debian12 has a previous build, the others none
    assert page["sections"]["alma9"]["tables"][0]["rows"][-1][:2] == [
        "xen-01",
        "skipped platform-has-no-xen",
    ]
    deb = page["sections"]["debian12"]
    (previous,) = [t for t in deb["tables"] if t["caption"].startswith("Previous builds")]
    (old_id, old_built, _old_size, _old_files) = previous["rows"][0]
    assert len(previous["rows"]) == 1 and old_id != index["os"]["debian12"]["build_id"]
    assert old_id.startswith("20251123T") and old_built.startswith("2025-11-23")
    old_folder = store / "debian12" / "12" / old_id
    assert {old_folder / "debian12.xva", old_folder / "metadata.json"} <= {
        local(link["href"]) for link in deb["links"]
    }
    for name in ("alma9", "ubuntu2404"):
        assert "None: this is the only build" in page["sections"][name]["text"]

    # every link of the page leads to a file of the store (it works offline, from the folder)
    for link in page["links"]:
        if "#" in link["href"]:
            continue
        assert local(link["href"]).is_file(), link
    # no script, no asset fetched from anywhere: one self-contained file
    assert page["scripts"] == 0 and page["external"] == 0 and page["resources"] == []
    shoot(browser, "desktop.png", 1280)


def test_page_is_accessible(browser: Any, store: Path) -> None:
    browser.set_window_size(1280, 900)
    browser.get((store / "index.html").as_uri())
    page = browser.execute_script(READ_BACK)
    assert page["lang"] == "en"
    levels = page["headings"]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))  # no level skipped
    for t in page["tables"]:  # semantic tables: a caption, column and row headers with scope
        assert t["caption"]
        assert set(t["colheads"]) == {"col"}
        assert all(h in ("TH:row", "TH:") for h in t["rowheads"]) and t["rowheads"]
    for r in page["regions"]:  # scrollable regions are named and reachable by keyboard
        assert r["tabindex"] == 0 and r["name"]
    for link in page["links"]:  # a name for every link, and the visible text in it
        assert link["text"]
        if link["label"]:
            assert link["label"].startswith(link["text"]), link
    ratios = browser.execute_script(CONTRAST)
    assert ratios
    low = [r for r in ratios if r[1] < 4.5]  # WCAG AA for normal text
    assert low == []


def test_page_reads_on_a_phone(browser: Any, store: Path) -> None:
    browser.set_window_size(390, 844)
    browser.get((store / "index.html").as_uri())
    width, scroll_width, font = browser.execute_script(
        "return [window.innerWidth, document.documentElement.scrollWidth,"
        " parseFloat(getComputedStyle(document.body).fontSize)]"
    )
    assert width <= 400
    assert scroll_width <= width  # nothing makes the page scroll sideways
    assert font >= 16
    page = browser.execute_script(READ_BACK)
    assert page["viewport"] == "width=device-width, initial-scale=1"
    # the overview stacks its rows: every cell starts at the left edge, labelled
    lefts = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.stack tbody td'))"
        ".map(td => [td.getBoundingClientRect().left, getComputedStyle(td, '::before').content])"
    )
    assert lefts and all(left < 20 for left, _ in lefts)
    assert {label for _, label in lefts} >= {'"Version: "', '"Built: "', '"Artifact: "'}
    assert shoot(browser, "phone.png", 390).stat().st_size > 10_000
