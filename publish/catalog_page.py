"""`index.html`: the catalog people read, written beside `index.json` at every publish and prune.

It is rebuilt from the same `latest.json` files as `index.json`, plus each build's
`metadata.json` (schema-checked) and `junit.xml` (the checks' rationales). One HTML file with
its stylesheet inline, no script and no external asset, so it opens from an S3 bucket (or its
website endpoint), from a folder, or offline; links are relative to the page. A page with
presigned links is only ever written to a file the operator names (`xcpng-golden store page
--presign 12h --out FILE`): `publish_page` refuses to put signatures into the store.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core.checks import SKIP_CODES
from core.errors import UsageError
from core.files import write_atomic
from publish.diff import Diff, diff_of
from publish.metadata import is_signed
from publish.pointers import build_index, rebuild_index
from publish.publisher import BUILD_LOG, JUNIT, METADATA
from publish.repoint import repoint_latest
from publish.source import Build, build_folders, load_build
from publish.stores.base import IntegrityError, Log, Store

PAGE_KEY = "index.html"
CONTENT_TYPE = "text/html; charset=utf-8"
# query parameters of presigned URLs (SigV4, SigV2): never in a page written to the store
PRESIGNED = re.compile(
    r"X-Amz-(Signature|Credential|Security-Token|Expires)|AWSAccessKeyId=|[?&]Signature=",
    re.IGNORECASE,
)
HREF = re.compile(r'href="([^"]*)"')
MAX_JUNIT = 8 << 20
Link = Callable[[str], str]


@dataclass
class Entry:
    """One OS on the page: its current build (or why it cannot be shown) and the others."""

    os_name: str
    latest: dict[str, Any]
    build: Build | None = None
    problem: str | None = None
    rationales: dict[str, str] = field(default_factory=dict)
    previous: list[tuple[str, str, Build | None]] = field(default_factory=list)
    changes: Diff | None = None  # since the build before the current one, from both SBOMs
    changes_problem: str | None = None  # why there are none to show


def refresh_index(store: Store, log: Log | None = None) -> dict[str, Any]:
    """Move each latest.json to its newest complete build (repoint.py), rebuild index.json from
    them (pointers.rebuild_index), then index.html from the same files."""
    repoint_latest(store, log)
    index = rebuild_index(store)
    publish_page(store, render(collect(store, index)))
    if log is not None:
        log(f"{store.describe(PAGE_KEY)} lists {len(index['os'])} OS(es)")
    return index


def render_store(store: Store, presign_s: int | None = None) -> str:
    """The page for what the store holds now; links presigned for `presign_s` seconds."""
    index = build_index(store)
    link = (lambda key: store.presign(key, presign_s)) if presign_s else relative_link
    return render(collect(store, index), link=link)


def signed_links(page: str) -> list[str]:
    """The page's links that carry presigned parameters."""
    return [h for h in HREF.findall(page) if PRESIGNED.search(html.unescape(h))]


def publish_page(store: Store, page: str) -> None:
    if signed_links(page):
        raise IntegrityError(
            "refusing to write a catalog page with presigned links into the store; "
            "write it to a file (xcpng-golden store page --presign ... --out FILE)"
        )
    store.put_bytes(PAGE_KEY, page.encode(), CONTENT_TYPE)


def write_file(path: Path, page: str) -> None:
    write_atomic(path, page, mode=0o600 if signed_links(page) else 0o644)


def relative_link(key: str) -> str:
    return quote(key)


# -- gathering ---------------------------------------------------------------------------


def collect(store: Store, index: dict[str, Any]) -> list[Entry]:
    entries = []
    for os_name, latest in sorted(index["os"].items()):
        entry = Entry(os_name=os_name, latest=latest)
        try:
            entry.build = load_build(store, str(latest["folder"]))
            entry.rationales = _rationales(store, entry.build)
        except (IntegrityError, KeyError) as e:
            entry.problem = str(e)
        for build_id, folder in build_folders(store, os_name):
            if folder == latest.get("folder"):
                continue
            try:
                other: Build | None = load_build(store, folder)
            except IntegrityError:
                other = None
            entry.previous.append((build_id, folder, other))
        _changes(entry)
        entries.append(entry)
    return entries


def _changes(entry: Entry) -> None:
    """The package changes of the current build since the one before it (each SBOM checked
    against its build's SHA256SUMS; signatures are the readers' to check, with `store diff`)."""
    b = entry.build
    if b is None:
        return
    older = [o for bid, _, o in entry.previous if bid < b.build_id]
    if not older:
        entry.changes_problem = "this is the first build of it in the store"
        return
    if older[0] is None:
        entry.changes_problem = "the previous build's metadata is unreadable"
        return
    try:
        entry.changes = diff_of(older[0], b)
    except (UsageError, IntegrityError) as e:
        entry.changes_problem = str(e)


def _rationales(store: Store, build: Build) -> dict[str, str]:
    """check id -> rationale, from the build's JUnit (testcases `[os] id: rationale`)."""
    if JUNIT not in build.meta.get("files", {}):
        return {}
    head = store.head(build.key(JUNIT))
    raw = store.get_bytes(build.key(JUNIT)) if head and head.size <= MAX_JUNIT else None
    if raw is None:
        return {}
    try:
        root = ET.fromstring(raw)  # noqa: S314  # the publisher's own upload, size-capped
    except ET.ParseError:
        return {}
    out: dict[str, str] = {}
    for case in root.iter("testcase"):
        cid = next(
            (p.get("value") for p in case.iter("property") if p.get("name") == "check_id"), None
        )
        prefix = f"[{build.os_name}] {cid}: "
        name = case.get("name") or ""
        if cid and name.startswith(prefix):
            out.setdefault(cid, name[len(prefix) :])
    return out


# -- rendering ---------------------------------------------------------------------------

STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; font: 1rem/1.5 system-ui,
  -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1a1a1a;
  background: #ffffff; }
h1 { font-size: 1.6rem; margin: 0.5rem 0; }
h2 { font-size: 1.3rem; margin: 2rem 0 0.5rem; border-bottom: 2px solid #d0d0d0; }
h3 { font-size: 1.1rem; margin: 1.25rem 0 0.5rem; }
a { color: #0b4fa8; }
a:focus-visible, .scroll:focus-visible { outline: 3px solid #b35c00; outline-offset: 2px; }
code { font: 0.9rem/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.hash, .wrap { overflow-wrap: anywhere; }
.muted { color: #4d4d4d; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
th, td { text-align: left; vertical-align: top; padding: 0.4rem 0.6rem;
  border-bottom: 1px solid #d0d0d0; }
thead th { background: #eeeeee; }
dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr);
  gap: 0.25rem 1rem; margin: 0.5rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; min-width: 0; }
ul.files { margin: 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap;
  gap: 0.25rem 1rem; }
.passed { color: #1e5c23; font-weight: 600; }
.skipped { color: #7a4a00; font-weight: 600; }
.failed { color: #a4161a; font-weight: 600; }
@media (max-width: 40rem) {
  body { padding: 0.75rem; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden;
    clip-path: inset(50%); white-space: nowrap; }
  table.stack, table.stack tbody, table.stack tr, table.stack th, table.stack td {
    display: block; }
  table.stack caption { display: block; }
  table.stack tr { border-bottom: 1px solid #d0d0d0; padding: 0.5rem 0; }
  table.stack th, table.stack td { border: 0; padding: 0.1rem 0; }
  table.stack td::before { content: attr(data-label) ": "; font-weight: 600; }
  dl.facts { grid-template-columns: minmax(0, 1fr); gap: 0; }
  dl.facts dd { margin-bottom: 0.5rem; }
}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def human_time(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def age(then: datetime, now: datetime) -> str:
    seconds = max((now - then).total_seconds(), 0)
    if seconds >= 2 * 86400:
        return f"{int(seconds // 86400)} days"
    if seconds >= 7200:
        return f"{int(seconds // 3600)} hours"
    return f"{int(seconds // 60)} minutes"


def size(n: int) -> str:
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"


def _time(ts: datetime) -> str:
    return f'<time datetime="{iso(ts)}">{human_time(ts)}</time>'


def _a(href: str, text: str, label: str) -> str:
    return f'<a href="{_e(href)}" aria-label="{_e(label)}">{_e(text)}</a>'


def _files(build: Build, link: Link) -> list[str]:
    """The build's objects as links: artifact, metadata, build log, JUnit (those it has)."""
    fmt = (build.meta["artifact"].get("format") or "artifact").upper()
    compression = build.meta["artifact"].get("compression")  # metadata v2 onwards
    if compression and compression != "none":
        fmt += f", {compression}"
    names = [(build.name, f"Artifact ({fmt}, {size(build.size)})")]
    names.append((METADATA, "Metadata (JSON)"))
    files = build.meta.get("files", {})
    if BUILD_LOG in files:
        names.append((BUILD_LOG, "Build log"))
    if JUNIT in files:
        names.append((JUNIT, "JUnit report"))
    sbom, provenance, sig = (build.meta.get(k) for k in ("sbom", "provenance", "signature"))
    if isinstance(sbom, dict):
        names.append((str(sbom["name"]), f"SBOM (CycloneDX {sbom['spec_version']})"))
    if isinstance(provenance, dict):
        names.append((str(provenance["name"]), "Provenance (SLSA v1)"))
        if provenance.get("signature"):
            names.append((str(provenance["signature"]), "Provenance signature"))
    if isinstance(sig, dict):
        names.append((str(sig["sums"]), "SHA256SUMS"))
        if sig.get("file"):
            names.append((str(sig["file"]), "SHA256SUMS signature"))
    return [
        _a(link(build.key(obj)), text, f"{text}: {build.os_name} build {build.build_id}")
        for obj, text in names
    ]


def _table(
    cap_id: str, caption: str, headers: list[str], rows: list[list[str]], stack: bool = False
) -> str:
    """A captioned table in a keyboard-scrollable region; the first cell of a row is its header.
    `stack`: on a narrow screen each row becomes a block of "label: value" lines (the explicit
    roles keep it a table for assistive technology when CSS changes its display)."""
    r = (lambda role: f' role="{role}"') if stack else (lambda role: "")
    cls = ' class="stack"' if stack else ""
    head = "".join(f'<th scope="col"{r("columnheader")}>{h}</th>' for h in headers)
    body = "".join(
        f"<tr{r('row')}>"
        + f'<th scope="row"{r("rowheader")}>{cells[0]}</th>'
        + "".join(
            f'<td{r("cell")} data-label="{_e(h)}">{c}</td>'
            for h, c in zip(headers[1:], cells[1:], strict=False)
        )
        + "</tr>"
        for cells in rows
    )
    return (
        f'<div class="scroll" role="region" aria-labelledby="{cap_id}" tabindex="0">'
        f"<table{cls}{r('table')}>"
        f'<caption id="{cap_id}">{caption}</caption>'
        f"<thead><tr{r('row')}>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _overview(entries: list[Entry], link: Link, now: datetime) -> str:
    rows = []
    for en in entries:
        b = en.build
        name = f'<a href="#os-{_e(en.os_name)}">{_e(en.os_name)}</a>'
        if b is None:
            rows.append([name, '<span class="failed">unavailable</span>'])
            continue
        built = parse_time(b.meta["created_at"])
        rows.append(
            [
                name,
                _e(b.meta["os"]["version"]),
                _time(built),
                age(built, now),
                size(b.size),
                _verdict_html(b),
                _a(link(b.artifact_key), "Download", f"Download {b.os_name} build {b.build_id}"),
            ]
        )
    headers = ["OS", "Version", "Built", "Age", "Size", "Verdict", "Artifact"]
    return (
        '<section aria-labelledby="overview"><h2 id="overview">Current builds</h2>'
        + _table("overview-caption", "The newest complete build of every OS", headers, rows, True)
        + "</section>"
    )


def _verdict(b: Build) -> str:
    checks = b.meta["validation"]["checks"]
    if checks["failed"]:
        return "failed"
    return f"passed ({len(checks['passed'])} checks, {len(checks['skipped'])} skipped)"


def _verdict_html(b: Build) -> str:
    cls = "failed" if b.meta["validation"]["checks"]["failed"] else "passed"
    return f'<span class="{cls}">{_e(_verdict(b))}</span>'


def _checks(en: Entry, b: Build) -> str:
    checks = b.meta["validation"]["checks"]
    rows = [
        [f"<code>{_e(c)}</code>", '<span class="passed">passed</span>', _why(en, c)]
        for c in checks["passed"]
    ]
    rows += [
        [f"<code>{_e(c)}</code>", '<span class="failed">failed</span>', _why(en, c)]
        for c in checks["failed"]
    ]
    for s in checks["skipped"]:
        code = str(s.get("code") or "no code")
        meaning = SKIP_CODES.get(code)
        rows.append(
            [
                f"<code>{_e(s['id'])}</code>",
                f'<span class="skipped">skipped</span> <code>{_e(code)}</code>',
                _why(en, s["id"])
                + (f' <span class="muted">(skipped: {_e(meaning)})</span>' if meaning else ""),
            ]
        )
    caption = (
        f"Checks of build {_e(b.build_id)} on {_e(b.meta['validation']['platform'])}: "
        f"{_e(_verdict(b))}"
    )
    return _table(f"{en.os_name}-checks", caption, ["Check", "Result", "Rationale"], rows)


def _why(en: Entry, check_id: str) -> str:
    return _e(en.rationales.get(check_id, "(rationale not in the JUnit report)"))


def _previous(en: Entry, link: Link) -> str:
    if not en.previous:
        return "<p>None: this is the only build of it in the store.</p>"
    rows = []
    for build_id, _, b in en.previous:
        if b is None:
            rows.append([f"<code>{_e(build_id)}</code>", "metadata unreadable", "", ""])
            continue
        links = " ".join(_files(b, link)[:2])
        built = _time(parse_time(b.meta["created_at"]))
        rows.append([f"<code>{_e(build_id)}</code>", built, size(b.size), links])
    caption = f"Previous builds of {_e(en.os_name)}, newest first"
    headers = ["Build", "Built", "Size", "Files"]
    return _table(f"{en.os_name}-previous", caption, headers, rows, stack=True)


def _count(value: Any, what: str) -> str:
    if isinstance(value, list):
        return f"{len(value)} {what}"
    if isinstance(value, int):
        return f"{value} {what}"
    return '<span class="muted">not recorded</span>'


def _pending(updates: Any) -> str:
    """system-security-updates' list (metadata v2): how many, and which, when it was checked."""
    if not isinstance(updates, list) or not updates:
        return _count(updates, "at check time")
    items = "".join(f"<li><code>{_e(u)}</code></li>" for u in updates)
    return f'{len(updates)} at check time<ul class="files">{items}</ul>'


def _signature(meta: dict[str, Any]) -> str:
    """Who signed the build's SHA256SUMS, or "unsigned" (a build published without a key)."""
    sig = meta.get("signature")
    if not isinstance(sig, dict):
        return '<span class="muted">unsigned (published before signed builds)</span>'
    if not is_signed(meta):
        return '<span class="skipped">unsigned</span> (published without a signing key)'
    return (
        f'<span class="passed">signed</span> by {_e(sig.get("key_type") or "SSH")} key '
        f'<code class="hash">{_e(sig["key"])}</code> (<code>ssh-keygen -Y verify -n file</code>; '
        "<code>xcpng-golden store fetch</code> checks it against your allowed signers)"
    )


def _sbom(b: Build, link: Link) -> str:
    sbom = b.meta.get("sbom")
    if not isinstance(sbom, dict):
        return '<span class="muted">none (published before SBOMs)</span>'
    kernels = ", ".join(sbom.get("kernels") or []) or "none found"
    text = f"CycloneDX {sbom['spec_version']}: {sbom['packages']} packages"
    label = f"{text}: SBOM of {b.os_name} build {b.build_id}"
    return f"{_a(link(b.key(str(sbom['name']))), text, label)} (kernel {_e(kernels)})"


def _changes_html(en: Entry) -> str:
    d = en.changes
    if d is None:
        return f'<p class="muted">Not shown: {_e(en.changes_problem or "no SBOM to compare")}.</p>'
    intro = f"<p>From build <code>{_e(d.base)}</code>: {_e(d.summary())}.</p>"
    if not d.changes:
        return intro
    rows = []
    for c in d.changes:
        mark = '<span class="failed">security</span>' if c.security else ""
        arch = "" if c.arch in ("", "all") else f' <span class="muted">{_e(c.arch)}</span>'
        rows.append(
            [
                f"<code>{_e(c.name)}</code>{arch}",
                _e(c.kind),
                f"<code>{_e(c.old)}</code>" if c.old else "",
                f"<code>{_e(c.new)}</code>" if c.new else "",
                mark,
            ]
        )
    caption = f"Packages changed in {_e(en.os_name)} since build {_e(d.base)}"
    headers = ["Package", "Change", "From", "To", "Security update"]
    return intro + _table(f"{en.os_name}-changes", caption, headers, rows, stack=True)


def _section(en: Entry, link: Link, now: datetime) -> str:
    head = f'<section id="os-{_e(en.os_name)}" aria-labelledby="h-{_e(en.os_name)}">'
    b = en.build
    if b is None:
        return (
            f'{head}<h2 id="h-{_e(en.os_name)}">{_e(en.os_name)}</h2>'
            f'<p class="failed">The current build cannot be shown: {_e(en.problem)}</p>'
            "</section>"
        )
    meta = b.meta
    built = parse_time(meta["created_at"])
    facts = [
        ("Build id", f"<code>{_e(b.build_id)}</code>"),
        ("Version", _e(meta["os"]["version"])),
        ("Built", f"{_time(built)} ({age(built, now)} old when this page was written)"),
        ("Published", _time(parse_time(meta["published_at"]))),
        ("Size", f"{size(b.size)} ({b.size:,} bytes)"),
        ("SHA-256", f'<code class="hash">{_e(b.sha256)}</code>'),
        (
            "Git revision",
            f'<code class="hash">{_e(b.git_revision or "unknown")}</code>'
            + (" (uncommitted changes)" if meta["git"].get("dirty") else ""),
        ),
        ("Checked on", _e(meta["validation"]["platform"])),
        ("Signed", _signature(meta)),
        ("SBOM", _sbom(b, link)),
        ("Packages", _count(meta.get("packages"), "installed")),
        ("Security updates pending", _pending(meta.get("security_updates"))),
        ("Files", '<ul class="files">' + "".join(f"<li>{a}</li>" for a in _files(b, link))),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return (
        f'{head}<h2 id="h-{_e(en.os_name)}">{_e(en.os_name)} '
        f'<span class="muted">({_e(meta["os"]["family"])} {_e(meta["os"]["version"])})</span>'
        f'</h2><dl class="facts">{dl}</dl>'
        f"<h3>Verdict</h3>{_checks(en, b)}"
        f"<h3>Changes since the previous build</h3>{_changes_html(en)}"
        f"<h3>Previous builds still in the store</h3>{_previous(en, link)}</section>"
    )


def render(entries: list[Entry], link: Link = relative_link, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    body = "".join(_section(en, link, now) for en in entries)
    empty = "" if entries else "<p>No template has been published here yet.</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>XCP-ng golden templates</title>"
        '<meta name="generator" content="xcpng-golden publish">'
        f"<style>{STYLE}</style></head><body>"
        "<header><h1>XCP-ng golden templates</h1>"
        f'<p class="muted">Written {_time(now)} from <a href="{_e(link("index.json"))}">'
        "index.json</a>. "
        "Ages are as of then. Every template here passed all of its checks; "
        "to import one, see <code>xcpng-golden pool import</code>.</p></header>"
        f"<main>{empty}{_overview(entries, link, now) if entries else ''}{body}</main>"
        "</body></html>\n"
    )
