"""setuid/setgid files and file capabilities judged against the package database: privilege
on disk that no package granted.

Every setuid/setgid regular file of the root filesystem, and every file carrying capabilities
(validations/filecaps.py), must be owned by an installed package, hold the content that
package installed (dpkg's md5sums, rpm's file digests), and carry only the privilege the
package gives it. On Debian the special bits are the mode of the file in the package's .deb
(its data archive), a `chmod` in the .deb's own postinst or preinst (openssh-client makes
ssh-agent setgid there), or a dpkg-statoverride entry; capabilities are a `setcap` in those
scripts (a .deb cannot carry attributes). On EL both are in the header (FILEMODES, FILECAPS).
The .debs come from the image's own sources (pkgdb.locate), cached on the host by sha256; the
scripts are read from the .deb, not from the image's copy in /var/lib/dpkg/info.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pkgdb.archive import Archive
from pkgdb.debfile import SPECIAL, maintainer_scripts, member_modes, script_grants, script_setcaps
from pkgdb.dpkg import DpkgDatabase
from pkgdb.locate import locate
from pkgdb.owners import OwnedFile, PackageFiles
from pkgdb.paths import canonical, directory_links
from pkgdb.sources import read_sources
from validations import filecaps
from validations.filecaps import FileCaps
from validations.inode import Stat
from validations.offline import OfflineImage


def special_files(image: OfflineImage) -> list[tuple[str, Stat]]:
    """Every setuid or setgid regular file of the image's root filesystem."""
    return [(p, st) for p, st in image.walk("/") if st.is_file and st.mode & SPECIAL]


def capability_files(image: OfflineImage) -> tuple[list[tuple[str, Stat, FileCaps]], list[str]]:
    """Every regular file with a capability attribute (decoded), and findings for attributes
    the kernel would not decode as one."""
    files = {p: st for p, st in image.walk("/") if st.is_file}
    capped, broken = [], []
    for path, value in sorted(image.getxattrs(files, filecaps.XATTR).items()):
        try:
            capped.append((path, files[path], filecaps.decode(value)))
        except filecaps.BadCapability as exc:
            broken.append(f"{path}: {filecaps.XATTR} that is no capability set ({exc})")
    return capped, broken


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


def _mode_head(path: str, st: Stat) -> str:
    return f"{path}: mode {st.perms:04o} ({describe(st.mode)}, owner {st.uid}:{st.gid})"


def content_findings(
    files: Iterable[tuple[str, Stat]],
    contents: dict[str, bytes],
    owned: PackageFiles,
    heads: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, list[OwnedFile]]]:
    """(findings for unowned or changed files, the owners of the files that are unchanged);
    `heads` names what each file holds (its mode by default)."""
    found, intact = [], {}
    for path, st in files:
        head = (heads or {}).get(path) or _mode_head(path, st)
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


def _debs(
    image: OfflineImage, db: DpkgDatabase, archive: Archive, names: set[str]
) -> dict[str, tuple[str, Path]]:
    """name -> (version, the .deb it was installed from), for the packages the image's own
    sources still carry."""
    wanted = [p for p in db.installed() if p.name in names]
    where = locate(archive, image, read_sources(image), wanted)
    return {n: (loc.entry.version, archive.deb(loc.source, loc.entry)) for n, loc in where.items()}


def _unreadable(path: str, what: str, package: str) -> str:
    return (
        f"{path}: {what}, from {package}, which none of the image's sources carries: what it "
        "ships cannot be read"
    )


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
    debs = _debs(image, db, archive, {o.name for path, _ in judged for o in intact[path]})
    shipped = {name: _shipped_bits(deb, links) for name, (_, deb) in debs.items()}
    for path, st in judged:
        owner = intact[path][0]
        if owner.name not in shipped:
            found.append(_unreadable(path, describe(st.mode), owner.package))
            continue
        allowed = shipped[owner.name].get(path, 0)
        extra = st.mode & SPECIAL & ~allowed
        if extra:
            found.append(
                f"{path}: mode {st.perms:04o} is {describe(extra)}, which {owner.name} "
                f"{debs[owner.name][0]} does not ship, its maintainer scripts do not set and no "
                "dpkg-statoverride grants"
            )
    return found


def _caps_heads(capped: list[tuple[str, Stat, FileCaps]]) -> dict[str, str]:
    return {p: f"{p}: capabilities {caps} (owner {st.uid}:{st.gid})" for p, st, caps in capped}


def dpkg_cap_findings(
    image: OfflineImage,
    capped: list[tuple[str, Stat, FileCaps]],
    db: DpkgDatabase,
    owned: PackageFiles,
    archive: Archive,
) -> list[str]:
    """Capabilities no package's maintainer scripts `setcap` on that file."""
    files = [(p, st) for p, st, _ in capped]
    contents = dict(image.read_files(p for p, _ in files))
    found, intact = content_findings(files, contents, owned, _caps_heads(capped))
    if not intact:
        return found
    links = directory_links(image)
    debs = _debs(image, db, archive, {o.name for owners in intact.values() for o in owners})
    granted: dict[str, dict[str, frozenset[str]]] = {}
    for name, (_, deb) in debs.items():
        grants: dict[str, frozenset[str]] = {}
        for script in maintainer_scripts(deb).values():
            for path, spec in script_setcaps(script).items():
                key = canonical(path, links)
                grants[key] = grants.get(key, frozenset()) | filecaps.text_names(spec)
        granted[name] = grants
    for path, _st, caps in capped:
        if path not in intact:
            continue
        owner = intact[path][0]
        if owner.name not in granted:
            found.append(_unreadable(path, f"capabilities {caps}", owner.package))
            continue
        extra = caps.names() - granted[owner.name].get(path, frozenset())
        if extra:
            found.append(
                f"{path}: capabilities {caps}: {', '.join(f'cap_{n}' for n in sorted(extra))} "
                f"not set by {owner.name} {debs[owner.name][0]}'s maintainer scripts"
            )
    return found


def rpm_cap_findings(
    image: OfflineImage, capped: list[tuple[str, Stat, FileCaps]], owned: PackageFiles
) -> list[str]:
    """Capabilities beyond the header's FILECAPS for that file."""
    files = [(p, st) for p, st, _ in capped]
    contents = dict(image.read_files(p for p, _ in files))
    found, intact = content_findings(files, contents, owned, _caps_heads(capped))
    for path, _st, caps in capped:
        if path in intact:
            allowed = frozenset().union(*(filecaps.text_names(o.caps) for o in intact[path]))
            if extra := caps.names() - allowed:
                found.append(
                    f"{path}: capabilities {caps}: "
                    f"{', '.join(f'cap_{n}' for n in sorted(extra))} not in "
                    f"{intact[path][0].package}'s FILECAPS"
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
