"""What the package manager trusts, judged with its own semantics: apt on Debian and Ubuntu,
dnf and rpm on EL.

apt (read on the clone, validations/test_trust.py): its configuration as `apt-config dump`
resolves it (apt.conf, apt.conf.d, `Binary::apt::` scopes), the source entries `apt-get
indextargets` says it loads (file:line for one-line entries, file:stanza for deb822; files apt
ignores by name and `Enabled: no` stanzas are not read by apt, so not judged), parsed here for
their options, and the global keyrings (Dir::Etc::trusted, Dir::Etc::trustedparts: the `.gpg`
and `.asc` files apt loads) against the files dpkg installed there (md5sums, conffiles).

Findings: settings that accept unsigned, weakly signed, downgraded or expired repositories
(AllowInsecureRepositories, AllowDowngradeToInsecureRepositories, AllowWeakRepositories,
APT::Get::AllowUnauthenticated, Check-Valid-Until and Check-Date false, TrustCDROM), TLS
verification off for https sources (Verify-Peer/Verify-Host, for all or one host), another CA
store for them (CaInfo/CaPath naming anything but the system's, for all or one host), a proxy
whose URL carries a password (reported as present, never shown), sources with `trusted=yes`,
`allow-insecure`, `allow-weak`, `allow-downgrade-to-insecure`, `check-valid-until=no` or
`check-date=no` (plain-http sources are signed like any other; one without a signature check is
one of these), and any key in a global keyring that no package shipped as it is there: a
global key signs for every source without `signed-by`. Debian 12's archive keys in
/etc/apt/trusted.gpg.d are shipped by debian-archive-keyring and are not findings; a third-party
source with its own key named by `signed-by` is allowed.

dnf (EL): every enabled repository of dnf.conf and the `reposdir` folders with gpgcheck off
(the repository's value, else [main]'s, else libdnf's default: off), sslverify off, or a
gpgkey fetched over plain http; rpm's keyring (`gpg-pubkey` packages) against the keys of
package-owned, unchanged files in /etc/pki/rpm-gpg. `repo_gpgcheck` (signed repository
metadata) is not required: the EL distributions' own repositories do not sign theirs.

Pure: the check passes the clone's answers in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from validations.tlsclients import SYSTEM_STORES

# -- apt's configuration --------------------------------------------------------------------------

_TRUE = {"yes", "true", "with", "on", "enable"}
_FALSE = {"no", "false", "without", "off", "disable"}

ACCEPTS_UNSAFE = {
    "acquire::allowinsecurerepositories": "apt accepts repositories with no or a bad signature",
    "acquire::allowdowngradetoinsecurerepositories": (
        "apt accepts a signed repository that turns unsigned"
    ),
    "acquire::allowweakrepositories": "apt accepts repositories signed with weak algorithms",
    "apt::get::allowunauthenticated": "apt installs packages it could not authenticate",
    "apt::authentication::trustcdrom": "apt trusts any CD-ROM source without a signature",
}
CHECKS_OFF = {
    "acquire::check-valid-until": "expired Release files are accepted (a replayed, frozen "
    "archive keeps its clones from security updates)",
    "acquire::check-date": "Release files dated in the future are accepted",
}
_CA = re.compile(r"^Acquire::https::(?:(\S+?)::)?Ca(?:Info|Path)$", re.IGNORECASE)
_VERIFY = re.compile(r"^acquire::https::(?:(.+)::)?verify-(peer|host)$")
_PROXY = re.compile(r"^acquire::(https?|ftp|socks5h?)::proxy(?:::(.+))?$")
_BINARY = re.compile(r"^binary::[^:]+::")
_DUMP = re.compile(r'^(\S+) "(.*)";$')


def string_to_bool(value: str) -> bool | None:
    """apt's StringToBool: yes/true/with/on/enable, their opposites, or a number."""
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    if re.fullmatch(r"-?\d+", v):
        return int(v) != 0
    return None


def parse_dump(text: str) -> list[tuple[str, str]]:
    """`apt-config dump` -> (lower-case key, value) in order; list items keep their key
    without the trailing `::`; `Binary::<program>::` scopes are folded into the key they set
    (apt applies them to that program, and apt-get, apt and unattended-upgrades are all it)."""
    out = []
    for line in text.splitlines():
        m = _DUMP.match(line.strip())
        if not m:
            continue
        key = _BINARY.sub("", m.group(1).lower()).removesuffix("::")
        out.append((key, m.group(2)))
    return out


def proxy_has_password(value: str) -> bool:
    try:
        return bool(urlsplit(value.strip()).password)
    except ValueError:
        return "@" in value and ":" in value.split("@", 1)[0]


def setting_findings(pairs: list[tuple[str, str]]) -> list[str]:
    found = []
    for key, value in pairs:
        flag = string_to_bool(value)
        if key in ACCEPTS_UNSAFE and flag:
            found.append(f"{key} {value!r}: {ACCEPTS_UNSAFE[key]}")
        elif key in CHECKS_OFF and flag is False:
            found.append(f"{key} {value!r}: {CHECKS_OFF[key]}")
        elif (m := _VERIFY.match(key)) and flag is False:
            scope = f"for {m.group(1)}" if m.group(1) else "for every https source"
            found.append(f"{key} {value!r}: TLS {m.group(2)} verification off {scope}")
        elif (m := _CA.match(key)) and value and value.rstrip("/") not in SYSTEM_STORES:
            scope = f"for {m.group(1)}" if m.group(1) else "for every https source"
            found.append(f"{key} {value!r}: another CA store {scope} (the system's is the trust)")
        elif (m := _PROXY.match(key)) and proxy_has_password(value):
            scope = f"for {m.group(2)}" if m.group(2) else f"for every {m.group(1)} source"
            found.append(f"{key}: the proxy {scope} carries a password in its URL (not shown)")
    return found


# -- apt's sources --------------------------------------------------------------------------------

# deb822 fields that are not options; every other field is the option of the same name
# (Signed-By <-> signed-by), but for these three spelled differently in one-line entries.
_DEB822_ONLY = {"types", "uris", "suites", "components", "enabled"}
_DEB822_RENAMED = {"architectures": "arch", "languages": "lang", "targets": "target"}


@dataclass(frozen=True)
class Source:
    file: str
    index: int  # apt's Sourcesentry: the line (one-line) or the stanza (deb822), from 1
    types: tuple[str, ...]
    uris: tuple[str, ...]
    options: dict[str, str]  # one-line option names, lower case

    @property
    def entry(self) -> str:
        return f"{self.file}:{self.index}"


def parse_one_line(path: str, text: str) -> list[Source]:
    """A .list file as apt's old-style parser reads it: `#` starts a comment anywhere."""
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        rest = rest.strip()
        options: dict[str, str] = {}
        if rest.startswith("["):
            inside, _, rest = rest[1:].partition("]")
            for word in inside.split():
                key, sep, value = word.partition("=")
                if sep:
                    options[key.rstrip("+-").lower()] = value
        uri = rest.split()[0] if rest.split() else ""
        out.append(Source(path, number, (kind,), (uri,), options))
    return out


def parse_deb822(path: str, text: str) -> list[Source]:
    """A .sources file: stanzas separated by blank lines, `#` lines ignored, field names
    case-insensitive, continuation lines folded (an embedded Signed-By key)."""
    out: list[Source] = []
    fields: dict[str, str] = {}
    last = ""

    def close() -> None:
        if fields:
            options = {
                _DEB822_RENAMED.get(k, k): v for k, v in fields.items() if k not in _DEB822_ONLY
            }
            if "enabled" in fields:
                options["enabled"] = fields["enabled"]
            out.append(
                Source(
                    path,
                    len(out) + 1,
                    tuple(fields.get("types", "").split()),
                    tuple(fields.get("uris", "").split()),
                    options,
                )
            )
            fields.clear()

    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            close()
            continue
        if raw[0] in " \t" and last:
            fields[last] += "\n" + raw.strip()
            continue
        key, _, value = raw.partition(":")
        last = key.strip().lower()
        fields[last] = value.strip()
    close()
    return out


def parse_sources(files: dict[str, str]) -> dict[str, Source]:
    """Every entry of every source file, by apt's Sourcesentry (`file:index`)."""
    out: dict[str, Source] = {}
    for path, text in files.items():
        parse = parse_deb822 if path.endswith(".sources") else parse_one_line
        for src in parse(path, text):
            out[src.entry] = src
    return out


SOURCE_OPTIONS = {
    "trusted": (True, "apt installs from it without checking any signature"),
    "allow-insecure": (True, "apt accepts it unsigned"),
    "allow-weak": (True, "apt accepts it signed with weak algorithms"),
    "allow-downgrade-to-insecure": (True, "apt accepts it turning unsigned"),
    "check-valid-until": (False, "its expired Release files are accepted"),
    "check-date": (False, "its Release files dated in the future are accepted"),
}


def source_findings(sources: dict[str, Source], loaded: list[str]) -> list[str]:
    """Findings for the entries apt loads (`loaded`: its Sourcesentry list)."""
    found = []
    for entry in loaded:
        src = sources.get(entry)
        if src is None:
            found.append(f"{entry}: apt reads a source entry this check could not parse")
            continue
        where = f"{entry} ({' '.join(src.types)} {' '.join(src.uris)})"
        plain = any(u.startswith("http://") for u in src.uris)
        for option, (bad, why) in SOURCE_OPTIONS.items():
            if option in src.options and string_to_bool(src.options[option]) is bad:
                extra = (
                    " over plain http: anyone on the path can feed it packages"
                    if plain and bad
                    else ""
                )
                found.append(f"{where}: {option}={src.options[option]}: {why}{extra}")
    return found


# -- apt's global keyrings -----------------------------------------------------------------------


def key_findings(keys: list[tuple[str, str]], shipped: set[tuple[str, str]]) -> list[str]:
    """Each key file apt loads globally ((path, md5)) that dpkg did not install as it is."""
    found = []
    for path, md5 in keys:
        if (path, md5) in shipped:
            continue
        found.append(
            f"{path}: a key in apt's global keyring that no package shipped as it is; it signs "
            "for every source without signed-by (keep a third party's key in /etc/apt/keyrings "
            "and name it with signed-by)"
        )
    return found


def global_key_file(path: str, trusted: str, trustedparts: str) -> bool:
    """apt loads Dir::Etc::trusted and the .gpg/.asc files of Dir::Etc::trustedparts."""
    if path == trusted:
        return True
    return path.startswith(trustedparts.rstrip("/") + "/") and path.endswith((".gpg", ".asc"))


# -- dnf and rpm (EL) -----------------------------------------------------------------------------


def parse_ini(text: str) -> dict[str, dict[str, str]]:
    """libdnf's INI: [section], key=value, `#`/`;` comments, indented continuation lines."""
    out: dict[str, dict[str, str]] = {}
    section: dict[str, str] | None = None
    last = ""
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith(("#", ";")):
            continue
        if raw[0] in " \t" and section is not None and last:
            section[last] += " " + raw.strip()
            continue
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1].strip(), {})
            last = ""
            continue
        key, sep, value = line.partition("=")
        if sep and section is not None:
            last = key.strip().lower()
            section[last] = value.strip()
    return out


def _dnf_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    v = value.strip().lower()
    if v in ("1", "yes", "true", "on"):
        return True
    if v in ("0", "no", "false", "off"):
        return False
    return default


DEFAULT_REPOSDIR = ("/etc/yum.repos.d", "/etc/yum/repos.d", "/etc/distro.repos.d")


def reposdirs(main: dict[str, str]) -> list[str]:
    value = main.get("reposdir")
    if value is None:
        return list(DEFAULT_REPOSDIR)
    return [d for d in re.split(r"[\s,]+", value) if d]


def dnf_findings(main_path: str, main_text: str, repo_files: dict[str, str]) -> list[str]:
    conf = parse_ini(main_text)
    main = conf.get("main", {})
    found = []
    gpg_default = _dnf_bool(main.get("gpgcheck", main.get("pkg_gpgcheck")), False)
    ssl_default = _dnf_bool(main.get("sslverify"), True)
    sections = [(main_path, name, s) for name, s in conf.items() if name != "main"]
    for path, text in sorted(repo_files.items()):
        sections += [(path, name, s) for name, s in parse_ini(text).items()]
    for path, name, s in sections:
        if not _dnf_bool(s.get("enabled"), True):
            continue
        where = f"{path} [{name}]"
        if not _dnf_bool(s.get("gpgcheck", s.get("pkg_gpgcheck")), gpg_default):
            found.append(f"{where}: gpgcheck off: packages are installed unsigned")
        if not _dnf_bool(s.get("sslverify"), ssl_default):
            found.append(f"{where}: sslverify off: TLS certificates are not checked")
        for key in re.split(r"[\s,]+", s.get("gpgkey", "")):
            if key.startswith(("http://", "ftp://")):
                found.append(f"{where}: gpgkey {key} is fetched without TLS")
    return found


def rpm_key_findings(imported: list[str], shipped_ids: set[str]) -> list[str]:
    """Keys in rpm's keyring (`VERSION-RELEASE SUMMARY` of gpg-pubkey, VERSION being the last
    8 hex digits of the key id) that no package-owned, unchanged /etc/pki/rpm-gpg file holds."""
    short = {k.lower()[-8:] for k in shipped_ids}
    found = []
    for line in imported:
        if not line.strip():
            continue
        version = line.split("-", 1)[0].lower()
        if version not in short:
            found.append(
                f"rpm trusts gpg-pubkey-{line.split()[0]} ({' '.join(line.split()[1:])}): no "
                "package-owned, unchanged key in /etc/pki/rpm-gpg holds it"
            )
    return found
