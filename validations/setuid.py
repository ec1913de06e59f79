"""setuid and setgid files judged against the package database: privilege no package granted.

Every setuid/setgid regular file of the root filesystem must be owned by an installed package,
hold the content that package installed (dpkg's md5sums, rpm's file digests), and carry only
the special bits the package gives it. On Debian that is the mode of the file in the package's
.deb (its data archive), a `chmod` in the .deb's own postinst or preinst (openssh-client makes
ssh-agent setgid there), or a dpkg-statoverride entry; on EL it is the header's FILEMODES.
The .debs come from the image's own sources (pkgdb.locate), cached on the host by sha256.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pkgdb.archive import Archive
from pkgdb.debfile import SPECIAL, maintainer_scripts, member_modes, script_grants
from pkgdb.dpkg import DpkgDatabase
from pkgdb.locate import locate
from pkgdb.owners import OwnedFile, PackageFiles
from pkgdb.paths import canonical, directory_links
from pkgdb.sources import read_sources
from validations.inode import Stat
from validations.offline import OfflineImage


def special_files(image: OfflineImage) -> list[tuple[str, Stat]]:
    """Every setuid or setgid regular file of the image's root filesystem."""
    return [(p, st) for p, st in image.walk("/") if st.is_file and st.mode & SPECIAL]


def describe(bits: int) -> str:
    return " and ".join(w for b, w in ((0o4000, "setuid"), (0o2000, "setgid")) if bits & b)


def _shipped_bits(deb: Path, links: dict[str, str]) -> dict[str, int]:
    """Special bits a .deb gives its files: in its data archive, or by its maintainer scripts."""
    bits = {canonical(p, links): m & SPECIAL for p, m in member_modes(deb).items()}
    for script in maintainer_scripts(deb).values():
        for path, granted in script_grants(script).items():
            key = canonical(path, links)
            bits[key] = bits.get(key, 0) | granted
    return bits


def content_findings(
    files: Iterable[tuple[str, Stat]], contents: dict[str, bytes], owned: PackageFiles
) -> tuple[list[str], dict[str, list[OwnedFile]]]:
    """(findings for unowned or changed files, the owners of the files that are unchanged)."""
    found, intact = [], {}
    for path, st in files:
        head = f"{path}: mode {st.perms:04o} ({describe(st.mode)}, owner {st.uid}:{st.gid})"
        owners = owned.owners(path)
        if not owners:
            found.append(f"{head}: no installed package owns it")
            continue
        matching = [o for o in owners if o.matches(contents.get(path, b""))]
        if not matching:
            sums = (
                "records no checksum for it"
                if all(o.digest is None for o in owners)
                else ("installed other content (its checksum differs)")
            )
            found.append(f"{head}: {', '.join(o.package for o in owners)} {sums}")
            continue
        intact[path] = matching
    return found, intact


def dpkg_findings(
    image: OfflineImage,
    files: list[tuple[str, Stat]],
    db: DpkgDatabase,
    owned: PackageFiles,
    archive: Archive,
) -> list[str]:
    contents = dict(image.read_files(p for p, _ in files))
    found, intact = content_findings(files, contents, owned)
    links = directory_links(image)
    overrides = {canonical(p, links): o for p, o in db.statoverrides.items()}
    judged = []
    for path, st in files:
        override = overrides.get(path)
        if path in intact and not (override and override.mode & SPECIAL == st.mode & SPECIAL):
            judged.append((path, st))
    if not judged:
        return found
    names = {o.name for path, _ in judged for o in intact[path]}
    wanted = [p for p in db.installed() if p.name in names]
    where = locate(archive, image, read_sources(image), wanted)
    shipped: dict[str, dict[str, int]] = {}
    for name, loc in where.items():
        shipped[name] = _shipped_bits(archive.deb(loc.source, loc.entry), links)
    for path, st in judged:
        owner = intact[path][0]
        if owner.name not in shipped:
            found.append(
                f"{path}: {describe(st.mode)}, from {owner.package}, which none of the image's "
                "sources carries: the modes it ships cannot be read"
            )
            continue
        allowed = shipped[owner.name].get(path, 0)
        extra = st.mode & SPECIAL & ~allowed
        if extra:
            version = where[owner.name].entry.version
            found.append(
                f"{path}: mode {st.perms:04o} is {describe(extra)}, which {owner.name} {version} "
                "does not ship, its maintainer scripts do not set and no dpkg-statoverride grants"
            )
    return found


def rpm_findings(
    image: OfflineImage, files: list[tuple[str, Stat]], owned: PackageFiles
) -> list[str]:
    contents = dict(image.read_files(p for p, _ in files))
    found, intact = content_findings(files, contents, owned)
    for path, st in files:
        if path not in intact:
            continue
        allowed = 0
        for o in intact[path]:
            allowed |= (o.mode or 0) & SPECIAL
        extra = st.mode & SPECIAL & ~allowed
        if extra:
            found.append(
                f"{path}: mode {st.perms:04o} is {describe(extra)}, which "
                f"{intact[path][0].package} does not ship (rpm FILEMODES)"
            )
    return found
