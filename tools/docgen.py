"""The generated parts of the README and the documentation site, from the code that holds them.

    python tools/docgen.py           rewrite every generated part
    python tools/docgen.py --check   exit 1, naming each stale file, when one differs

Each generated part sits between two markers in its file,
``<!-- generated: NAME ... -->`` and ``<!-- end generated: NAME -->``; the text around them is
written by hand. tests/unit/test_docgen.py fails when a part differs from what this module
produces (the catalog, the settings table, a check or the mutation table changed).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the project's packages are beside tools/
    sys.path.insert(0, str(ROOT))

from build.catalog import load_catalog  # noqa: E402
from core.settings import markdown_table  # noqa: E402
from validations.expected import EXPECTED  # noqa: E402

PLATFORM_NAMES = {"xcpng": "XCP-ng pool (`--platform xcpng`)", "local": "QEMU (`--platform local`)"}


def support_table(packer_dir: Path | None = None) -> str:
    """The OS x platform table: every OS of the catalog and where it can be built and checked."""
    catalog = load_catalog(packer_dir or ROOT / "packer")
    specs = [catalog.specs[n] for n in catalog.names()]
    platforms = sorted(
        {p for s in specs for p in s.templates} | {p for s in specs for p in s.refused},
        key=lambda p: (p != "xcpng", p),
    )
    head = ["OS", "family", "version", *(PLATFORM_NAMES.get(p, f"`{p}`") for p in platforms)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    refusals: dict[tuple[str, str], list[str]] = {}
    for s in specs:
        cells = [f"`{s.name}`", s.family, s.version]
        for p in platforms:
            if p in s.refused:
                cells.append("no")
                refusals.setdefault((p, s.refused[p]), []).append(s.name)
            else:
                cells.append("yes" if p in s.templates or "any" in s.templates else "no")
        rows.append("| " + " | ".join(cells) + " |")
    notes = [
        f"- {p}: no for {', '.join(f'`{n}`' for n in names)}: the var file {why}"
        for (p, why), names in sorted(refusals.items())
    ]
    return "\n".join(rows) + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def list_os_output() -> str:
    """What `pytest --list-os` prints for this checkout's catalog, as a code block."""
    import io

    from core.settings import Settings
    from harness.listing import list_os

    out, err = io.StringIO(), io.StringIO()
    settings = Settings.from_env(env={}, packer_dir=ROOT / "packer")
    if list_os(settings, ROOT, out, err) != 0:
        raise RuntimeError(err.getvalue())
    return "```\n" + out.getvalue() + "```\n"


def settings_table() -> str:
    """Every setting: option, environment variable, default, what (core/settings.py OPTIONS)."""
    return markdown_table().rstrip("\n") + "\n"


@dataclass(frozen=True)
class CheckDoc:
    id: str
    rationale: str
    module: str


def declared_checks(folder: Path | None = None) -> dict[str, CheckDoc]:
    """Every `@check(id, rationale)` of validations/test_*.py, read from the source."""
    folder = folder or ROOT / "validations"
    found: dict[str, CheckDoc] = {}
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Name)
                    and deco.func.id == "check"
                    and len(deco.args) == 2
                ):
                    cid, why = (ast.literal_eval(a) for a in deco.args)
                    found[cid] = CheckDoc(cid, why, f"validations/{path.name}")
    return found


def _mutation_table() -> tuple[list[Any], list[Any], dict[str, str]]:
    """DEFECTS, GOOD_VARIANTS and NOT_MUTABLE_LOCALLY of tests/mutation/defects.py."""
    folder = str(ROOT / "tests" / "mutation")
    if folder not in sys.path:  # the table's modules import each other by bare name
        sys.path.insert(0, folder)
    import defects

    return list(defects.DEFECTS), list(defects.GOOD_VARIANTS), dict(defects.NOT_MUTABLE_LOCALLY)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def checks_reference() -> str:
    """Each check id: the families that run it, its rationale, the defects that prove it."""
    declared = declared_checks()
    defects, good, not_mutable = _mutation_table()
    families: dict[str, list[str]] = {}
    for family, ids in EXPECTED.items():
        for cid in ids:
            families.setdefault(cid, []).append(family)
    out: list[str] = []
    for cid, fams in families.items():
        doc = declared.get(cid)
        out.append(f"## `{cid}`\n")
        where = f" · `{doc.module}`" if doc else ""
        out.append(f"*Families:* {', '.join(fams)}{where}\n")
        out.append((_one_line(doc.rationale) if doc else "(no @check declares this id)") + "\n")
        proofs = [d for d in defects if cid in d.fails]
        if proofs:
            out.append("Proven by:\n")
            out += [
                f"- `{d.name}`{' (test command)' if d.ci else ''}: {_one_line(d.description)}"
                for d in proofs
            ]
            out.append("")
        elif cid in not_mutable:
            out.append(f"No offline defect proves it here: {_one_line(not_mutable[cid])}.\n")
        else:
            out.append("No defect of the mutation table names it.\n")
    out.append("## Good variants\n")
    out.append(
        "Sound changes to the good image that every check must accept (a failure is a false "
        "alarm):\n"
    )
    out += [
        f"- `{g.name}`: {_one_line(g.description)}. *Policy:* {_one_line(g.policy)}" for g in good
    ]
    return "\n".join(out).rstrip("\n") + "\n"


@dataclass(frozen=True)
class Part:
    path: str  # relative to the repository root
    name: str
    make: Callable[[], str]


PARTS = (
    Part("README.md", "support", support_table),
    Part("docs/fleet/index.md", "list-os", list_os_output),
    Part("docs/fleet/index.md", "support", support_table),
    Part("docs/configuration.md", "settings", settings_table),
    Part("docs/checks/reference.md", "checks", checks_reference),
)

_REGION = r"(<!-- generated: {name}\b[^\n]*-->\n)(.*?)(<!-- end generated: {name} -->)"


def render(text: str, name: str, content: str) -> str:
    """`text` with the part `name` replaced by `content`; ValueError without its markers."""
    pattern = re.compile(_REGION.format(name=re.escape(name)), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no '<!-- generated: {name} -->' ... '<!-- end generated: {name} -->'")
    return pattern.sub(lambda m: m.group(1) + "\n" + content + "\n" + m.group(3), text, count=1)


def stale(root: Path = ROOT) -> list[str]:
    """The files whose generated part differs from what the code produces now."""
    out = []
    for part in PARTS:
        path = root / part.path
        text = path.read_text()
        if render(text, part.name, part.make()) != text:
            out.append(f"{part.path} (part '{part.name}')")
    return out


def write_all(root: Path = ROOT) -> None:
    for part in PARTS:
        path = root / part.path
        text = path.read_text()
        new = render(text, part.name, part.make())
        if new != text:
            path.write_text(new)


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        bad = stale()
        for item in bad:
            print(f"stale: {item}; run python tools/docgen.py", file=sys.stderr)
        return 1 if bad else 0
    if argv:
        print("usage: python tools/docgen.py [--check]", file=sys.stderr)
        return 2
    write_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
