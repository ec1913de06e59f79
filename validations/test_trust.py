"""Trust the clone inherits: what its package manager, its TLS libraries, its SSH client and
its PAM stacks accept, each read as the OS itself resolves it.

- `trust-apt` / `trust-dnf` (booted, one SSH exchange): apt's settings as `apt-config dump`
  resolves them, the source entries `apt-get indextargets` says it loads, the global keyrings
  against what dpkg installed; on EL the repositories dnf reads and rpm's keyring
  (validations/apt_trust.py).
- `trust-ca-bundle` (offline): every certificate the TLS libraries load against what the
  distribution's ca-certificates would generate (validations/cabundle.py).
- `trust-ssh-client` (booted, one SSH exchange): `ssh -G` as root, as the check user and as a
  new user, for a generic host and one per Host/Match block, against OpenSSH's defaults
  (validations/sshclient.py).
- `trust-pam` (offline): every PAM service's auth stack walked with libpam's rules
  (validations/pam.py).
"""

from __future__ import annotations

import base64
import hashlib
import io
import posixpath
import re
import secrets
import shlex
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from core.checks import check
from core.model import BootedVM
from core.ownership import scratch
from validations import apt_trust, cabundle, opensslconf, pam, sshclient, tlsclients
from validations.homes import homes
from validations.imagecopy import LocalCopies
from validations.offline import OfflineImage, file_text, folder_names
from validations.persistence import assignments
from validations.remote import ask

# -- the package manager (booted) -----------------------------------------------------------------


def _sections(out: str, boundary: str) -> dict[str, str]:
    """`<boundary> <name>` followed by one base64 line, as the scripts below print files."""
    found: dict[str, str] = {}
    lines = out.split("\n")
    for i, line in enumerate(lines[:-1]):
        if line.startswith(boundary + " "):
            name = line[len(boundary) + 1 :]
            found[name] = base64.b64decode(lines[i + 1]).decode("utf-8", "replace")
    return found


def _print_files(boundary: str, paths: str) -> str:
    """Shell: each regular file among `paths` (shell words) as a section."""
    return (
        f'for f in {paths}; do [ -f "$f" ] || continue; '
        f'printf \'%s %s\\n\' {shlex.quote(boundary)} "$f"; base64 -w0 < "$f"; echo; done'
    )


# One shell run reads every file apt loads for trust: the paths apt resolves (`apt-config
# shell`), then the source files and keyrings in one tar (links dereferenced, as apt reads
# them), then what dpkg installed there: conffiles (` /path md5`) and md5sums lines
# (`/var/lib/dpkg/info/<pkg>.md5sums:md5  path`). Few process starts: under TCG each costs.
APT_FILES = (
    'eval "$(apt-config shell SL Dir::Etc::sourcelist/f SP Dir::Etc::sourceparts/d '
    'TG Dir::Etc::trusted/f TP Dir::Etc::trustedparts/d)"; SP=${SP%/}; TP=${TP%/}\n'
    'printf \'dirs\\t%s\\t%s\\t%s\\t%s\\n\' "$SL" "$SP" "$TG" "$TP"\n'
    'tar -C / -chf - --ignore-failed-read "${SL#/}" "${SP#/}" "${TG#/}" "${TP#/}" 2>/dev/null '
    "| base64 -w0; echo\n"
    "dpkg-query -W -f='${Conffiles}\\n'\n"
    'grep -H -F -e "  ${TG#/}" -e "  ${TP#/}/" /var/lib/dpkg/info/*.md5sums\n'
    "true"
)


@dataclass(frozen=True)
class AptFiles:
    sourcelist: str
    sourceparts: str
    trusted: str
    trustedparts: str
    files: dict[str, bytes]  # every regular file of the four places, by absolute path
    shipped: set[tuple[str, str]]  # (path, md5) as dpkg installed them there


def read_apt_files(out: str) -> AptFiles:
    lines = out.split("\n")
    dirs = lines[0].split("\t")
    assert len(dirs) == 5 and dirs[0] == "dirs", f"apt-config shell answered {lines[0][:200]!r}"
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(lines[1])), mode="r:") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                files[posixpath.normpath("/" + member.name)] = handle.read()
    shipped: set[tuple[str, str]] = set()
    for line in lines[2:]:
        if line.startswith(" /"):  # a conffile: " /etc/apt/trusted.gpg.d/x.asc <md5> [obsolete]"
            words = line.split()
            if len(words) >= 2:
                shipped.add((posixpath.normpath(words[0]), words[1]))
        elif line.startswith("/var/lib/dpkg/info/") and ":" in line and "  " in line:
            md5, path = line.split(":", 1)[1].split("  ", 1)
            shipped.add((posixpath.normpath("/" + path.strip()), md5))
    sl, sp, tg, tp = (posixpath.normpath(d) for d in dirs[1:])
    return AptFiles(sl, sp, tg, tp, files, shipped)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def apt_problems(host: Any) -> list[str]:
    answers = ask(
        host,
        {
            "dump": "apt-config dump",
            "entries": "apt-get indextargets --no-release-info --format '$(SOURCESENTRY)'",
            "files": APT_FILES,
        },
    )
    dump = answers["dump"]
    assert dump.rc == 0 and "Dir::Etc" in dump.stdout, (
        f"apt-config dump failed (exit {dump.rc}): {dump.stderr.strip()[-300:]}"
    )
    found = apt_trust.setting_findings(apt_trust.parse_dump(dump.stdout))
    entries = answers["entries"]
    if entries.rc != 0:
        found.append(f"apt cannot read its sources: {entries.stderr.strip()[-300:]}")
    loaded = sorted({e.strip() for e in entries.stdout.splitlines() if e.strip()})
    assert loaded or entries.rc != 0, "apt loads no source entry at all"
    apt = read_apt_files(answers["files"].stdout)
    sources = {
        path: data.decode("utf-8", "replace")
        for path, data in apt.files.items()
        if path == apt.sourcelist or posixpath.dirname(path) == apt.sourceparts
    }
    found += apt_trust.source_findings(apt_trust.parse_sources(sources), loaded)
    keys = [
        (path, _md5(data))
        for path, data in sorted(apt.files.items())
        if apt_trust.global_key_file(path, apt.trusted, apt.trustedparts)
    ]
    found += apt_trust.key_findings(keys, apt.shipped)
    return found


DNF_MAIN = "/etc/dnf/dnf.conf /etc/yum.conf"
DNF_REPOS = (
    "m=''; for f in " + DNF_MAIN + '; do [ -f "$f" ] && { m=$f; break; }; done\n'
    'd=$( [ -n "$m" ] && sed -n \'s/^[[:space:]]*reposdir[[:space:]]*=//p\' "$m" | tail -1 '
    "| tr ',' ' ')\n"
    '[ -n "$d" ] || d=\'' + " ".join(apt_trust.DEFAULT_REPOSDIR) + "'\n"
)
RPM_SHIPPED_KEYS = (
    'export GNUPGHOME="$(mktemp -d)"\n'
    'for f in /etc/pki/rpm-gpg/*; do [ -f "$f" ] || continue\n'
    '  rpm -qf "$f" >/dev/null 2>&1 || continue\n'
    '  rpm -Vf "$f" 2>/dev/null | grep -q "^..5.* $f$" && continue\n'
    '  gpg --batch --show-keys --with-colons "$f" 2>/dev/null '
    "| awk -F: '$1 == \"pub\" {print $5}'\n"
    'done; rm -rf "$GNUPGHOME"'
)


def dnf_problems(host: Any) -> list[str]:
    boundary = "@@" + secrets.token_hex(8)
    answers = ask(
        host,
        {
            "main": _print_files(boundary, DNF_MAIN),
            "repos": DNF_REPOS
            + _print_files(boundary, '$(for x in $d; do echo "$x"/*.repo; done)'),
            "imported": "rpm -q gpg-pubkey --qf '%{VERSION}-%{RELEASE} %{SUMMARY}\\n' || true",
            "shipped": RPM_SHIPPED_KEYS,
        },
    )
    mains = _sections(answers["main"].stdout, boundary)
    assert mains, f"neither of {DNF_MAIN} exists on the clone"
    main_path, main_text = next(iter(mains.items()))
    found = apt_trust.dnf_findings(
        main_path, main_text, _sections(answers["repos"].stdout, boundary)
    )
    imported = [
        line for line in answers["imported"].stdout.splitlines() if re.match(r"^[0-9a-f]{8}-", line)
    ]
    shipped = {line.strip() for line in answers["shipped"].stdout.splitlines() if line.strip()}
    found += apt_trust.rpm_key_findings(imported, shipped)
    return found


@check(
    "trust-apt",
    "apt authenticates every source: no insecure, weak, unauthenticated or expired repositories "
    "accepted, TLS checked, no proxy password, no global key a package did not ship",
)
def test_apt(host: Any) -> None:
    found = apt_problems(host)
    assert not found, "apt trusts more than signed sources:\n" + "\n".join(found)


@check(
    "trust-dnf",
    "dnf checks every enabled repository's signatures and TLS, rpm trusts only the keys its "
    "packages ship",
)
def test_dnf(host: Any) -> None:
    found = dnf_problems(host)
    assert not found, "dnf/rpm trust more than signed repositories:\n" + "\n".join(found)


# -- the CA store (offline) -----------------------------------------------------------------------


def _md5sums(text: str, under: str) -> dict[str, str]:
    """dpkg md5sums lines for files under `under` (an image path), by path relative to it."""
    prefix = under.lstrip("/") + "/"
    out = {}
    for line in text.splitlines():
        md5, _, path = line.partition("  ")
        if path.startswith(prefix):
            out[path[len(prefix) :]] = md5
    return out


def _owned_ca_files(
    image: OfflineImage, copies: LocalCopies, shipped: dict[str, bytes]
) -> dict[str, str]:
    """md5 of the files dpkg installed under /usr/share/ca-certificates: ca-certificates' own
    md5sums, and every package's only when some file is not in it (a rarer, slower read)."""
    own = "/var/lib/dpkg/info/ca-certificates.md5sums"
    owned = _md5sums(image.read_text(own), cabundle.SHARE) if image.exists(own) else {}
    if set(shipped) <= set(owned):
        return owned
    info = "/var/lib/dpkg/info"
    for path in image.listdir(info) if image.exists(info) else []:
        if path.endswith(".md5sums") and path != "ca-certificates.md5sums":
            owned.update(_md5sums(image.read_text(f"{info}/{path}"), cabundle.SHARE))
    return owned


def _trusted(
    copies: LocalCopies, files: tuple[str, ...], dirs: tuple[str, ...]
) -> dict[str, list[bytes]]:
    """Each file the TLS libraries load (the CAfiles, every file of the CApath folders) ->
    its certificates; a folder reached twice through links is read once."""
    out: dict[str, list[bytes]] = {}
    for path in files:
        data = copies.read(path)
        if data is not None:
            out[path] = cabundle.pem_certificates(data)
    seen: set[str] = set()
    for folder in dirs:
        real = copies.realpath(folder)
        if real is None or real in seen:
            continue
        seen.add(real)
        for path, data in copies.files(folder, recursive=False).items():
            out.setdefault(path, cabundle.pem_certificates(data))
    return out


def ca_problems(image: OfflineImage, workdir: Path) -> tuple[list[str], int]:
    """(findings, number of certificates the store holds)"""
    if image.exists(cabundle.CONF):
        copies = LocalCopies(image, ("/etc/ssl/certs", cabundle.SHARE, cabundle.LOCAL), workdir)
        shipped = {
            path[len(cabundle.SHARE) + 1 :]: data
            for path, data in copies.files(cabundle.SHARE).items()
        }
        store = cabundle.DebianStore(
            conf=image.read_text(cabundle.CONF),
            shipped=shipped,
            owned=_owned_ca_files(image, copies, shipped),
            local={p: d for p, d in copies.files(cabundle.LOCAL).items() if p.endswith(".crt")},
            trusted=_trusted(copies, cabundle.DEBIAN_FILES, cabundle.DEBIAN_DIRS),
        )
        bundle = store.trusted.get("/etc/ssl/certs/ca-certificates.crt", [])
        assert bundle, "/etc/ssl/certs/ca-certificates.crt is missing or holds no certificate"
        assert cabundle.debian_expected(store), (
            f"{cabundle.CONF} enables no certificate the package shipped: nothing to compare with"
        )
        return cabundle.debian_findings(store), len(bundle)
    if image.exists("/etc/pki/ca-trust"):
        copies = LocalCopies(
            image, ("/etc/pki/ca-trust", "/usr/share/pki/ca-trust-source", "/etc/pki/tls"), workdir
        )
        sources: dict[str, bytes] = {}
        for folder in cabundle.EL_SOURCE_DIRS:
            for path, data in copies.files(folder, recursive=False).items():
                if cabundle.is_source_file(path, data):
                    sources[path] = data
        el = cabundle.ElStore(
            p11kit=copies.read(cabundle.EL_P11KIT),
            sources=sources,
            trusted=_trusted(copies, cabundle.EL_FILES, cabundle.EL_DIRS),
        )
        bundle = el.trusted.get(cabundle.EL_FILES[0], [])
        assert bundle, f"{cabundle.EL_FILES[0]} is missing or holds no certificate"
        return cabundle.el_findings(el), len(bundle)
    raise AssertionError(
        f"neither {cabundle.CONF} nor /etc/pki/ca-trust: no CA store this check knows"
    )


def tls_client_problems(image: OfflineImage) -> list[str]:
    """validations/tlsclients.py over the image's files, every home and /etc/skel included."""

    read, listdir = partial(file_text, image), partial(folder_names, image)

    hooks = [p for p, st in image.walk("/") if st.is_file and tlsclients.is_python_hook(p)]
    return tlsclients.findings(read, listdir, homes(image), hooks)


def openssl_problems(image: OfflineImage) -> list[str]:
    """validations/opensslconf.py over the configuration OpenSSL reads: the distribution's
    file, or the one OPENSSL_CONF names in /etc/environment (every login's)."""

    read, listdir = partial(file_text, image), partial(folder_names, image)

    confs = [c for c in opensslconf.CONF_FILES.values() if read(c) is not None]
    env = assignments(read("/etc/environment") or "")
    confs += [value for name, value in env if name == "OPENSSL_CONF"][-1:]
    return [f for conf in dict.fromkeys(confs) for f in opensslconf.findings(conf, read, listdir)]


@check(
    "trust-ca-bundle",
    "the TLS libraries trust exactly the CA certificates the distribution's ca-certificates "
    "generates: no local, appended or planted CA, no client told to trust another store or to "
    "skip verification (environment, git, curl, wget, pip, npm, Python), and OpenSSL's system "
    "policy not below TLS 1.2 and security level 2 (read offline)",
)
def test_ca_bundle(image: OfflineImage) -> None:
    with scratch("xcpng-ca-store") as tmp:
        found, _count = ca_problems(image, tmp)
    found += tls_client_problems(image)
    found += openssl_problems(image)
    assert not found, (
        "the clone's TLS trusts more than the distribution's CA store and policy:\n"
        + "\n".join(found)
    )


# -- the SSH client (booted) ----------------------------------------------------------------------


def _some(items: list[str], limit: int = 3) -> str:
    more = f"; +{len(items) - limit} more" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more


def ssh_client_problems(host: Any, user: str) -> list[str]:
    boundary = "@@" + secrets.token_hex(8)
    answers = ask(
        host,
        {
            "defaults": f"ssh -F /dev/null -G {sshclient.PROBE}",
            "report": sshclient.script(boundary, user),
        },
    )
    default = sshclient.parse_g(answers["defaults"].stdout)
    assert "ciphers" in default, (
        f"ssh -F /dev/null -G printed no defaults (exit {answers['defaults'].rc}): "
        f"{answers['defaults'].stderr.strip()[-300:]}"
    )
    report = sshclient.parse_report(answers["report"].stdout, boundary)
    assert report.runs, f"no ssh -G answered: {answers['report'].stderr.strip()[-300:]}"
    by_problem: dict[str, list[str]] = {}
    for run in report.runs:
        context = f"{sshclient.WHO.get(run.who, run.who)}, host {run.host}" + (
            f" user {run.user}" if run.user != "-" else ""
        )
        if run.rc != 0:
            by_problem.setdefault(
                f"ssh -G fails (exit {run.rc}): {run.output.strip()[-200:]}", []
            ).append(context)
            continue
        for problem in sshclient.weakenings(sshclient.parse_g(run.output), default, run.host):
            by_problem.setdefault(problem, []).append(context)
    found = [f"{problem} [{_some(contexts)}]" for problem, contexts in sorted(by_problem.items())]
    found += [f"not evaluated: {m}" for m in sshclient.unasked(report)]
    return found


@check(
    "trust-ssh-client",
    "the SSH client's effective settings (ssh -G, every Host/Match block, root, users, /etc/skel) "
    "are no looser than OpenSSH's defaults",
)
def test_ssh_client(host: Any, vm: BootedVM) -> None:
    found = ssh_client_problems(host, vm.user)
    assert not found, "the SSH client is looser than OpenSSH's defaults:\n" + "\n".join(found)


# -- PAM (offline) --------------------------------------------------------------------------------


def pam_reader(image: OfflineImage) -> tuple[list[str], Callable[[str], str | None]]:
    """The service names the image's PAM folders hold, and a reader resolving a service or
    include name as libpam does (absolute, else /etc/pam.d, else /usr/lib/pam.d)."""
    dirs = [d for d in pam.SERVICE_DIRS if image.exists(d) and image.stat(d).is_dir]
    assert dirs, (
        "no /etc/pam.d nor /usr/lib/pam.d"
        + (
            " (only /etc/pam.conf, which this check does not read)"
            if image.exists("/etc/pam.conf")
            else ""
        )
        + ": is this the root filesystem?"
    )
    cache: dict[str, str | None] = {}

    def read(name: str) -> str | None:
        if name not in cache:
            cache[name] = None
            paths = [name] if name.startswith("/") else [f"{d}/{name}" for d in dirs]
            for path in paths:
                if image.exists(path) and image.stat(path).is_file:
                    cache[name] = image.read_text(path)
                    break
        return cache[name]

    services = sorted({n for d in dirs for n in image.listdir(d) if read(n) is not None})
    return services, read


@check(
    "trust-pam",
    "no PAM auth stack succeeds without a credential (pam_permit, conditional modules, jumps "
    "past pam_deny) and no nullok, walked with libpam's rules, and no password stack stores "
    "a crackable hash (DES, bigcrypt, md5; pam_unix's options over login.defs) (read offline)",
)
def test_pam(image: OfflineImage) -> None:
    services, read = pam_reader(image)
    assert services, "the PAM folders hold no service file"
    login_defs = image.read_text("/etc/login.defs") if image.exists("/etc/login.defs") else ""
    by_problem: dict[str, list[str]] = {}
    findings = pam.audit(services, read) + pam.weak_hashing(services, read, login_defs)
    for finding in findings:
        by_problem.setdefault(finding.problem, []).append(finding.service)
    found = [
        f"{problem} (services: {', '.join(sorted(names))})"
        for problem, names in sorted(by_problem.items())
    ]
    assert not found, (
        "PAM lets someone in without a credential, or stores passwords weakly:\n" + "\n".join(found)
    )
