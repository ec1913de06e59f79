"""The image's apt sources, as apt reads them from its own /etc/apt.

Both formats: one-line `deb [opt=val ...] URI SUITE [COMPONENT...]` in sources.list and
sources.list.d/*.list, and deb822 stanzas in sources.list.d/*.sources (Types, URIs, Suites,
Components, Architectures, Signed-By, Trusted, Enabled). Only binary (`deb`) sources count.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass

from debian import deb822

from core.errors import ImageDefect
from pkgdb.reader import ImageReader

APT_DIR = "/etc/apt"
_OPTIONS = re.compile(r"^\[([^\]]*)\]\s*")


@dataclass(frozen=True)
class AptSource:
    """One URI and suite of the image's sources, with the components apt fetches for it."""

    uri: str
    suite: str
    components: tuple[str, ...]
    arches: tuple[str, ...] = ()  # empty: the image's native architecture
    signed_by: tuple[str, ...] = ()  # keyring paths, fingerprints or an inline key block
    trusted: bool = False  # [trusted=yes]: apt accepts it unsigned
    origin: str = ""  # "file:line" in the image, or why the harness added it

    @property
    def in_image(self) -> bool:
        """Named by the image's own sources (its origin is a file of the image)."""
        return self.origin.startswith("/")

    @property
    def base(self) -> str:
        """The suite's folder: <uri>/dists/<suite>/ (a flat repository's suite ends in /)."""
        if self.suite.endswith("/"):
            return posixpath.join(self.uri.rstrip("/"), self.suite)
        return f"{self.uri.rstrip('/')}/dists/{self.suite}/"


def _split(value: str) -> tuple[str, ...]:
    return tuple(v for v in re.split(r"[\s,]+", value.strip()) if v)


def parse_one_line(text: str, origin: str) -> list[AptSource]:
    """The `deb` lines of a sources.list-format file."""
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb ") and not line.startswith("deb\t"):
            continue
        rest = line[3:].strip()
        options: dict[str, str] = {}
        if m := _OPTIONS.match(rest):
            for opt in shlex.split(m.group(1)):
                key, _, value = opt.partition("=")
                options[key.rstrip("+-").lower()] = value
            rest = rest[m.end() :]
        fields = rest.split()
        if len(fields) < 2:
            raise ImageDefect(f"{origin}:{n}: a deb line needs a URI and a suite: {raw.strip()!r}")
        out.append(
            AptSource(
                uri=fields[0],
                suite=fields[1],
                components=tuple(fields[2:]),
                arches=_split(options.get("arch", "")),
                signed_by=_split(options.get("signed-by", "")),
                trusted=options.get("trusted", "").lower() == "yes",
                origin=f"{origin}:{n}",
            )
        )
    return out


def _signed_by(value: str) -> tuple[str, ...]:
    """Signed-By: paths and fingerprints, or one inline ASCII-armored key block."""
    if "BEGIN PGP PUBLIC KEY BLOCK" in value:
        lines = ["" if line.strip() == "." else line.strip() for line in value.splitlines()]
        return ("\n".join(lines).strip() + "\n",)
    return _split(value)


def parse_deb822(text: str, origin: str) -> list[AptSource]:
    """The enabled `deb` stanzas of a .sources file: one source per URI and suite."""
    out = []
    for n, para in enumerate(deb822.Deb822.iter_paragraphs(text.splitlines(keepends=True)), 1):
        if "deb" not in _split(para.get("Types", "")):
            continue
        if para.get("Enabled", "yes").strip().lower() == "no":
            continue
        uris, suites = _split(para.get("URIs", "")), _split(para.get("Suites", ""))
        if not uris or not suites:
            raise ImageDefect(f"{origin}: stanza {n} has Types: deb without URIs or Suites")
        for uri in uris:
            for suite in suites:
                out.append(
                    AptSource(
                        uri=uri,
                        suite=suite,
                        components=_split(para.get("Components", "")),
                        arches=_split(para.get("Architectures", "")),
                        signed_by=_signed_by(para.get("Signed-By", "")),
                        trusted=para.get("Trusted", "").strip().lower() == "yes",
                        origin=f"{origin} stanza {n}",
                    )
                )
    return out


def read_sources(reader: ImageReader) -> list[AptSource]:
    """Every binary source of the image, in apt's order (sources.list, then sources.list.d)."""
    out = []
    main = f"{APT_DIR}/sources.list"
    if reader.exists(main):
        out += parse_one_line(_text(reader, main), main)
    folder = f"{APT_DIR}/sources.list.d"
    for name in reader.listdir(folder) if reader.exists(folder) else []:
        path = f"{folder}/{name}"
        if name.endswith(".list"):
            out += parse_one_line(_text(reader, path), path)
        elif name.endswith(".sources"):
            out += parse_deb822(_text(reader, path), path)
    return out


def _text(reader: ImageReader, path: str) -> str:
    return reader.read_bytes(path).decode("utf-8", "replace")
