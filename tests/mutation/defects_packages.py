"""Defects and good variants of the checks that judge an image against its package database:
setuid/setgid files (system-setuid), credentials outside the package-owned files
(hygiene-credentials), pending security updates (system-security-updates).

Each mechanism has at least two independent broken images (other files, other spellings of the
same defect) and at least one good variant. All three checks read the image offline, so
test_package_defects.py proves every row on a copy of the good image without booting it; the
booted table (test_mutation.py) runs them too. Secrets here are made up in the providers'
formats; none is a real credential.
"""

from __future__ import annotations

import lzma
import re
import struct
from collections.abc import Callable

from defects import Defect, GoodVariant, _contains, _exists, _mode, ssh_key_pair
from diskedit import DiskEditor

from tests.support.archives import tar_of, zip_of

SETUID = ("system-setuid",)
INTEGRITY = ("system-package-integrity",)
CREDENTIALS = ("hygiene-credentials",)
UPDATES = ("system-security-updates",)


def _write(
    path: str, content: str | bytes, mode: int = 0o644, gid: int = 0
) -> Callable[[DiskEditor], None]:
    return lambda d: d.write(path, content, mode=mode, gid=gid)


def _append(path: str, text: str) -> Callable[[DiskEditor], None]:
    """Append to the file (created when the image has none)."""
    return lambda d: d.append(path, text) if d.exists(path) else d.write(path, text)


def _copy(src: str, dst: str, mode: int, gid: int = 0) -> Callable[[DiskEditor], None]:
    return lambda d: d.write(dst, d.reader().read_bytes(src), mode=mode, gid=gid)


def _chmod(path: str, mode: int) -> Callable[[DiskEditor], None]:
    return lambda d: d.chmod(path, mode)


def _ssh_key(kind: str, pem: bool = False) -> bytes:
    return ssh_key_pair(kind, pem)[0]


# -- setuid / setgid ---------------------------------------------------------------------------


def _replace_passwd(d: DiskEditor) -> None:
    """/usr/bin/passwd swapped for another binary, mode and owner kept (a trojaned setuid)."""
    d.write("/usr/bin/passwd", d.reader().read_bytes("/usr/bin/id"), mode=0o4755)


def _setgid_shadow_reader(d: DiskEditor) -> None:
    d.mkdir("/var/lib/misc")
    d.write("/var/lib/misc/.cache-helper", "#!/bin/sh\nexec cat /etc/shadow\n", 0o2755, gid=42)


def _caps(*numbers: int, effective: bool = True, revision: int = 2) -> bytes:
    """A security.capability value as setcap writes it (struct vfs_cap_data; revision 3 adds
    the namespace's root uid, 0 here)."""
    bits = sum(1 << n for n in numbers)
    magic = (revision << 24) | int(effective)
    words = [bits & 0xFFFFFFFF, 0, bits >> 32, 0] if revision > 1 else [bits, 0]
    return struct.pack(f"<{1 + len(words)}I", magic, *words) + (
        struct.pack("<I", 0) if revision == 3 else b""
    )


def _setcap(path: str, value: bytes) -> Callable[[DiskEditor], None]:
    return lambda d: d.set_capabilities(path, value)


def _has_caps(path: str) -> Callable[[DiskEditor], bool]:
    return lambda d: bool(d.reader().getxattrs([path], "security.capability"))


def _tar_reads_everything(d: DiskEditor) -> None:
    """A backup helper: a copy of tar that reads every file (cap_dac_read_search), owned by
    no package."""
    d.write("/usr/local/sbin/backup-tar", d.reader().read_bytes("/usr/bin/tar"), mode=0o750)
    d.set_capabilities("/usr/local/sbin/backup-tar", _caps(2))


PAM_DIR = "/usr/lib/x86_64-linux-gnu/security"


def _contains_text(path: str, needle: str) -> Callable[[DiskEditor], bool]:
    return lambda d: needle in d.read_text(path)


def _local_diversion(d: DiskEditor) -> None:
    """An administrator's own lsb_release, the package's copy moved aside the way
    `dpkg-divert --local --rename` does (dpkg records it in /var/lib/dpkg/diversions)."""
    original = d.reader().read_bytes("/usr/bin/lsb_release")
    d.write("/usr/bin/lsb_release.distrib", original, mode=0o755)
    d.write("/usr/bin/lsb_release", '#!/bin/sh\nexec /usr/bin/lsb_release.distrib "$@"\n', 0o755)
    d.append("/var/lib/dpkg/diversions", "/usr/bin/lsb_release\n/usr/bin/lsb_release.distrib\n:\n")


def _differs(path: str, other: str) -> Callable[[DiskEditor], bool]:
    return lambda d: d.reader().read_bytes(path) == d.reader().read_bytes(other)


def _statoverride_grant(d: DiskEditor) -> None:
    """An administrator lets wall write to every terminal: setgid tty, through
    dpkg-statoverride (dpkg keeps it across upgrades)."""
    d.append("/var/lib/dpkg/statoverride", "root tty 2755 /usr/bin/wall\n")
    d.write("/usr/bin/wall", d.reader().read_bytes("/usr/bin/wall"), mode=0o2755, gid=5)


def _statoverride_drop(d: DiskEditor) -> None:
    """CIS-style hardening: chfn and chsh lose their setuid bit, recorded as statoverrides."""
    d.append(
        "/var/lib/dpkg/statoverride",
        "root root 0755 /usr/bin/chfn\nroot root 0755 /usr/bin/chsh\n",
    )
    d.chmod("/usr/bin/chfn", 0o755)
    d.chmod("/usr/bin/chsh", 0o755)


# -- security updates ----------------------------------------------------------------------------


def _status_version(package: str, new: Callable[[str], str]) -> Callable[[DiskEditor], None]:
    def apply(d: DiskEditor) -> None:
        status = d.read_text("/var/lib/dpkg/status")
        pattern = rf"(^Package: {re.escape(package)}\n(?:[^\n]+\n)*?Version: )(\S+)$"
        patched, n = re.subn(
            pattern, lambda m: m.group(1) + new(m.group(2)), status, count=1, flags=re.M
        )
        assert n == 1, f"{package} is not in the image's dpkg status"
        d.write("/var/lib/dpkg/status", patched)

    return apply


def _status_selection(package: str, want: str) -> Callable[[DiskEditor], None]:
    """dpkg's selection of `package` set to `want`, as `apt-mark hold` / `dpkg --set-selections`."""

    def apply(d: DiskEditor) -> None:
        status = d.read_text("/var/lib/dpkg/status")
        pattern = rf"(^Package: {re.escape(package)}\n(?:[^\n]+\n)*?Status: )install "
        patched, n = re.subn(pattern, rf"\g<1>{want} ", status, count=1, flags=re.M)
        assert n == 1, f"{package} is not installed in the image's dpkg status"
        d.write("/var/lib/dpkg/status", patched)

    return apply


def _status_version_of(d: DiskEditor, package: str) -> str:
    pattern = rf"^Package: {re.escape(package)}\n(?:[^\n]+\n)*?Version: (\S+)$"
    m = re.search(pattern, d.read_text("/var/lib/dpkg/status"), re.M)
    return m.group(1) if m else ""


def _drop_security_line(d: DiskEditor) -> None:
    text = d.read_text("/etc/apt/sources.list")
    kept = [line for line in text.splitlines() if "-security" not in line]
    assert len(kept) < len(text.splitlines()), "the image's sources.list has no security line"
    d.write("/etc/apt/sources.list", "\n".join(kept) + "\n")


DEB822 = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
{extra}"""


def _deb822(
    security: str = "http://deb.debian.org/debian-security", extra: str = ""
) -> Callable[[DiskEditor], None]:
    def apply(d: DiskEditor) -> None:
        d.rm("/etc/apt/sources.list")
        d.write(
            "/etc/apt/sources.list.d/debian.sources", DEB822.format(security=security, extra=extra)
        )

    return apply


# Either format: with every good variant applied to one image, apt-sources-deb822 has already
# replaced sources.list with debian.sources.
_SOURCE_FILES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d/debian.sources")


def _security_mirror(d: DiskEditor) -> None:
    edited = 0
    for path in _SOURCE_FILES:
        if d.exists(path) and "deb.debian.org/debian-security" in (text := d.read_text(path)):
            new = text.replace(
                "deb.debian.org/debian-security", "security.debian.org/debian-security"
            )
            d.write(path, new)
            edited += 1
    assert edited, "the image's apt sources name no deb.debian.org/debian-security"


def _security_mirror_landed(d: DiskEditor) -> bool:
    return any(
        d.exists(p) and "security.debian.org/debian-security" in d.read_text(p)
        for p in _SOURCE_FILES
    )


# -- credentials ---------------------------------------------------------------------------------

GITHUB = "ghp_MutationTestTokenNotReal0000000000"
GITLAB_RUNNER = "glrt-MutationRunnerToken0000000000"
STRIPE = "sk_live_MutationStripeKeyNotReal000000"
AWS_ID, AWS_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AZURE = "DefaultEndpointsProtocol=https;AccountName=mutation;AccountKey=" + "M" * 86 + "==;"
VAULT = "hvs.CAESIMutationVaultTokenNotReal0000000000000000"
GOOGLE = "AIzaSyMutationGoogleApiKeyNotReal000000"
PUTTY = (
    "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy\nPublic-Lines: 2\n"
    "AAAAC3NzaC1lZDI1NTE5AAAAIBmutation\nAAAA\nPrivate-Lines: 1\nAAAAIMutationPrivate\n"
    "Private-MAC: 0000000000000000000000000000000000000000000000000000000000000000\n"
)
PGP_SECRET = (
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlFgEZQAAABYJKwYBBAHaRw8BAQdAmutationmutationmutationmutation\n"
    "=MuTa\n-----END PGP PRIVATE KEY BLOCK-----\n"
)
YESCRYPT = "$y$j9T$MutationSaltXX$" + "Q" * 43
BCRYPT = "$2y$10$" + "MutationBcryptHashNotReal" + "0" * 28
FOREIGN_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMutationKeyNobodyOnTheTeamOwnsXXXXXXXXXXXXXXX x\n"
)


def _backup_with_key(d: DiskEditor) -> None:
    d.write(
        "/var/backups/root-home.tar.gz",
        tar_of({"root/.ssh/id_ed25519": _ssh_key("ed25519"), "root/.profile": b"# root\n"}, "gz"),
        mode=0o600,
    )


def _bundle_with_aws(d: DiskEditor) -> None:
    env = f"AWS_ACCESS_KEY_ID={AWS_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n".encode()
    inner = lzma.compress(tar_of({"app/.env": env}))
    d.write("/opt/deploy/bundle.zip", zip_of({"config/app.tar.xz": inner, "README": b"deploy\n"}))


def _debconf_answer(path: str) -> Callable[[DiskEditor], None]:
    stanza = (
        "Name: mysql-server/root_password\nTemplate: mysql-server/root_password\n"
        "Value: MutationRootPw1\nOwners: mysql-server-8.0\nFlags: seen\n\n"
    )

    def apply(d: DiskEditor) -> None:
        old = d.read_text(path) if d.exists(path) else ""
        d.write(path, old + stanza, mode=0o600)

    return apply


PACKAGE_DEFECTS: tuple[Defect, ...] = (
    # setuid / setgid files (system-setuid)
    Defect(
        "setuid-shell-copy",
        "system",
        "a setuid root copy of bash in /usr/local/bin that no package owns",
        _copy("/usr/bin/bash", "/usr/local/bin/.rsh", 0o4755),
        SETUID,
        _mode("/usr/local/bin/.rsh", 0o4755),
    ),
    Defect(
        "setgid-shadow-reader",
        "system",
        "a setgid-shadow script under /var/lib that no package owns",
        _setgid_shadow_reader,
        SETUID,
        _mode("/var/lib/misc/.cache-helper", 0o2755),
    ),
    Defect(
        "setuid-bit-on-find",
        "system",
        "chmod u+s on findutils' /usr/bin/find (content untouched)",
        _chmod("/usr/bin/find", 0o4755),
        SETUID,
        _mode("/usr/bin/find", 0o4755),
    ),
    Defect(
        "setgid-bit-on-python",
        "system",
        "chmod g+s on /usr/bin/python3.11 (content untouched)",
        _chmod("/usr/bin/python3.11", 0o2755),
        SETUID,
        _mode("/usr/bin/python3.11", 0o2755),
    ),
    Defect(
        "setuid-passwd-replaced",
        "system",
        "/usr/bin/passwd replaced by another binary, setuid root kept",
        _replace_passwd,
        SETUID + INTEGRITY,
        _differs("/usr/bin/passwd", "/usr/bin/id"),
    ),
    # file capabilities: the same privilege, another mechanism (system-setuid)
    Defect(
        "capability-setuid-python",
        "system",
        "cap_setuid=ep on /usr/bin/python3.11 (content untouched): any user becomes root",
        _setcap("/usr/bin/python3.11", _caps(7)),
        SETUID,
        _has_caps("/usr/bin/python3.11"),
    ),
    Defect(
        "capability-dac-read-tar-copy",
        "system",
        "a copy of tar in /usr/local/sbin with cap_dac_read_search (reads /etc/shadow)",
        _tar_reads_everything,
        SETUID,
        _has_caps("/usr/local/sbin/backup-tar"),
    ),
    Defect(
        "capability-beyond-postinst-ip",
        "system",
        "/usr/bin/ip with cap_sys_module added to what iproute2's postinst may set (revision 3)",
        _setcap("/usr/bin/ip", _caps(1, 12, 16, 21, revision=3)),
        SETUID,
        _has_caps("/usr/bin/ip"),
    ),
    # package files changed after installation (system-package-integrity)
    Defect(
        "pam-unix-replaced-by-permit",
        "system",
        "pam_unix.so overwritten with pam_permit.so: every password is right",
        lambda d: d.write(
            f"{PAM_DIR}/pam_unix.so", d.reader().read_bytes(f"{PAM_DIR}/pam_permit.so")
        ),
        INTEGRITY,
        _differs(f"{PAM_DIR}/pam_unix.so", f"{PAM_DIR}/pam_permit.so"),
    ),
    Defect(
        "vendor-unit-edited",
        "system",
        "util-linux's /usr/lib/systemd/system/fstrim.service edited in place (an extra "
        "ExecStartPre)",
        lambda d: d.write(
            "/usr/lib/systemd/system/fstrim.service",
            d.read_text("/usr/lib/systemd/system/fstrim.service").replace(
                "[Service]\n", "[Service]\nExecStartPre=/bin/true\n", 1
            ),
        ),
        INTEGRITY,
        _contains_text("/usr/lib/systemd/system/fstrim.service", "ExecStartPre=/bin/true"),
    ),
    Defect(
        "stdlib-module-appended",
        "system",
        "a line appended to Python's stdlib calendar.py (every script that imports it runs it)",
        lambda d: d.append("/usr/lib/python3.11/calendar.py", "\n_audit = None\n"),
        INTEGRITY,
        _contains_text("/usr/lib/python3.11/calendar.py", "_audit = None"),
    ),
    # pending security updates (system-security-updates)
    Defect(
        "pending-update-epoch",
        "system",
        "dpkg believes zlib1g has no epoch (1.2.13... < 1:1.2.13... of the security suite)",
        _status_version("zlib1g", lambda v: v.split(":", 1)[-1]),
        UPDATES,
        lambda d: _status_version_of(d, "zlib1g").startswith("1.2"),
    ),
    Defect(
        "security-suite-missing",
        "system",
        "sources.list without bookworm-security: clones never get security updates",
        _drop_security_line,
        UPDATES,
        lambda d: "-security" not in d.read_text("/etc/apt/sources.list"),
    ),
    Defect(
        "security-suite-disabled-deb822",
        "system",
        "deb822 sources whose bookworm-security stanza is Enabled: no",
        _deb822(extra="Enabled: no\n"),
        UPDATES,
        _contains("/etc/apt/sources.list.d/debian.sources", "Enabled: no"),
    ),
    Defect(
        "security-pinned-below-installed",
        "system",
        "an apt preferences file giving the security suite (by its label) priority -1",
        _write(
            "/etc/apt/preferences.d/stability",
            "Package: *\nPin: release o=Debian,l=Debian-Security\nPin-Priority: -1\n",
        ),
        UPDATES,
        _exists("/etc/apt/preferences.d/stability"),
    ),
    Defect(
        "default-release-main-suite",
        "system",
        'APT::Default-Release "bookworm" in apt.conf.d: the main suite at 990 outranks the '
        "security suite's newer versions",
        _write("/etc/apt/apt.conf.d/10release", 'APT::Default-Release "bookworm";\n'),
        UPDATES,
        _exists("/etc/apt/apt.conf.d/10release"),
    ),
    Defect(
        "openssl-version-pinned",
        "system",
        "libssl3 and openssl pinned to their installed version at 1001 (a .pref file)",
        lambda d: d.write(
            "/etc/apt/preferences.d/openssl.pref",
            f"Package: libssl3 openssl\nPin: version {_status_version_of(d, 'libssl3')}\n"
            "Pin-Priority: 1001\n",
        ),
        UPDATES,
        _exists("/etc/apt/preferences.d/openssl.pref"),
    ),
    Defect(
        "openssh-server-held",
        "system",
        "openssh-server on hold in dpkg's status (apt-mark hold)",
        _status_selection("openssh-server", "hold"),
        UPDATES,
        _contains("/var/lib/dpkg/status", "Status: hold ok installed"),
    ),
    # credentials in /etc/skel, copied into every user's home (hygiene-credentials)
    Defect(
        "skel-authorized-keys",
        "hygiene",
        "a foreign key in /etc/skel/.ssh/authorized_keys (every new user's)",
        _write("/etc/skel/.ssh/authorized_keys", FOREIGN_KEY, 0o600),
        CREDENTIALS,
        _exists("/etc/skel/.ssh/authorized_keys"),
    ),
    Defect(
        "skel-bashrc-token",
        "hygiene",
        "a GitHub token exported by /etc/skel/.bashrc",
        _append("/etc/skel/.bashrc", f"export GITHUB_TOKEN={GITHUB}\n"),
        CREDENTIALS,
        _contains("/etc/skel/.bashrc", GITHUB),
    ),
    # inside archives
    Defect(
        "backup-tar-gz-with-key",
        "hygiene",
        "an OpenSSH private key inside /var/backups/root-home.tar.gz",
        _backup_with_key,
        CREDENTIALS,
        _exists("/var/backups/root-home.tar.gz"),
    ),
    Defect(
        "zip-nested-aws-keys",
        "hygiene",
        "AWS keys in a .env inside a .tar.xz inside /opt/deploy/bundle.zip",
        _bundle_with_aws,
        CREDENTIALS,
        _exists("/opt/deploy/bundle.zip"),
    ),
    # passwords in URLs (proxies)
    Defect(
        "proxy-password-in-profile",
        "hygiene",
        "https_proxy with user:password in /etc/profile.d/proxy.sh",
        _write(
            "/etc/profile.d/proxy.sh",
            "export https_proxy=http://build:S3cretPass@proxy.corp.example:3128\n",
        ),
        CREDENTIALS,
        _exists("/etc/profile.d/proxy.sh"),
    ),
    Defect(
        "apt-proxy-password",
        "hygiene",
        "apt's Acquire::http::Proxy with user:password",
        _write(
            "/etc/apt/apt.conf.d/90proxy",
            'Acquire::http::Proxy "http://ci:hunter22@10.0.0.5:3142/";\n',
        ),
        (*CREDENTIALS, "trust-apt"),  # apt itself would send that password: trust-apt too
        _exists("/etc/apt/apt.conf.d/90proxy"),
    ),
    Defect(
        "environment-proxy-password",
        "hygiene",
        "http_proxy with user:password in /etc/environment",
        _append("/etc/environment", 'http_proxy="http://svc:Pr0xyPa55@proxy.corp.example:8080/"\n'),
        CREDENTIALS,
        _contains("/etc/environment", "Pr0xyPa55"),
    ),
    # provider token formats
    Defect(
        "gitlab-runner-token",
        "hygiene",
        "a GitLab runner token in /etc/gitlab-runner/config.toml",
        _write(
            "/etc/gitlab-runner/config.toml",
            f'[[runners]]\n  url = "https://gitlab.example"\n  token = "{GITLAB_RUNNER}"\n',
            0o600,
        ),
        CREDENTIALS,
        _exists("/etc/gitlab-runner/config.toml"),
    ),
    # credentials whose shape is their format or their place (netrc, user:password files,
    # passwords on command lines, bearer tokens, Wi-Fi keys)
    Defect(
        "apt-auth-netrc",
        "hygiene",
        "apt's auth.conf.d holds a netrc login for a private mirror",
        _write(
            "/etc/apt/auth.conf.d/corp.conf",
            "machine apt.corp.example.com\nlogin deploy\npassword S3cretPass\n",
            0o600,
        ),
        CREDENTIALS,
        _exists("/etc/apt/auth.conf.d/corp.conf"),
    ),
    Defect(
        "postfix-sasl-passwd",
        "hygiene",
        "a mail relay login in /etc/postfix/sasl_passwd (host user:password)",
        _write("/etc/postfix/sasl_passwd", "[smtp.example.com]:587 relay@example.com:Tr0ub4dor\n"),
        CREDENTIALS,
        _exists("/etc/postfix/sasl_passwd"),
    ),
    Defect(
        "mysqldump-password-in-cron",
        "hygiene",
        "a cron job passes a database password with mysqldump -p",
        _write(
            "/etc/cron.d/db-backup",
            "15 2 * * * root mysqldump -uroot -pS3cretPass --all-databases > /var/backups/db.sql\n",
        ),
        CREDENTIALS,
        _exists("/etc/cron.d/db-backup"),
    ),
    Defect(
        "curl-basic-auth-in-script",
        "hygiene",
        "a deploy script fetches with curl -u user:password",
        _write(
            "/usr/local/bin/fetch-artifacts",
            "#!/bin/sh\ncurl -fsS -u ci:Tr0ub4dor https://artifacts.example.com/latest.tgz\n",
            0o755,
        ),
        CREDENTIALS,
        _exists("/usr/local/bin/fetch-artifacts"),
    ),
    Defect(
        "jwt-bearer-in-app-config",
        "hygiene",
        "a signed JWT as a bearer token in /srv/api/client.yaml",
        _write(
            "/srv/api/client.yaml",
            "headers:\n  Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJNdXRhdGlvbiJ9."
            "S3cretPassSignature0123456789\n",
        ),
        CREDENTIALS,
        _exists("/srv/api/client.yaml"),
    ),
    Defect(
        "wifi-psk-networkmanager",
        "hygiene",
        "a Wi-Fi pre-shared key in a NetworkManager connection",
        _write(
            "/etc/NetworkManager/system-connections/office.nmconnection",
            "[connection]\nid=office\ntype=wifi\n[wifi-security]\nkey-mgmt=wpa-psk\n"
            "psk=S3cretPass\n",
            0o600,
        ),
        CREDENTIALS,
        _exists("/etc/NetworkManager/system-connections/office.nmconnection"),
    ),
    Defect(
        "wireguard-private-key",
        "hygiene",
        "a WireGuard interface with its PrivateKey in /etc/wireguard/wg0.conf",
        _write(
            "/etc/wireguard/wg0.conf",
            "[Interface]\nAddress = 10.8.0.2/32\n"
            "PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n",
            0o600,
        ),
        CREDENTIALS,
        _exists("/etc/wireguard/wg0.conf"),
    ),
    Defect(
        "stripe-key-in-dotenv",
        "hygiene",
        "a Stripe live key in /opt/shop/.env",
        _write("/opt/shop/.env", f"STRIPE_KEY={STRIPE}\n"),
        CREDENTIALS,
        _exists("/opt/shop/.env"),
    ),
    Defect(
        "azure-connection-string",
        "hygiene",
        "an Azure storage connection string in /srv/app/appsettings.json",
        _write("/srv/app/appsettings.json", f'{{"Storage": "{AZURE}"}}\n'),
        CREDENTIALS,
        _exists("/srv/app/appsettings.json"),
    ),
    Defect(
        "vault-token-file",
        "hygiene",
        "a HashiCorp Vault token in /etc/vault-agent/token",
        _write("/etc/vault-agent/token", VAULT + "\n", 0o600),
        CREDENTIALS,
        _exists("/etc/vault-agent/token"),
    ),
    Defect(
        "google-api-key-in-web-root",
        "hygiene",
        "a Google API key in /var/www/html/maps.js",
        _write("/var/www/html/maps.js", f'const key = "{GOOGLE}";\n'),
        CREDENTIALS,
        _exists("/var/www/html/maps.js"),
    ),
    Defect(
        "docker-auths-outside-home",
        "hygiene",
        "a registry login in /etc/docker/config.json (auths)",
        _write(
            "/etc/docker/config.json",
            '{"auths": {"registry.example": {"auth": "Y2k6czNjcjN0"}}}\n',
            0o600,
        ),
        CREDENTIALS,
        _exists("/etc/docker/config.json"),
    ),
    # private keys of other kinds, outside homes
    Defect(
        "ec-pem-key-in-opt",
        "hygiene",
        "a PEM EC private key (ssh-keygen -m PEM) in /opt/app/tls/key.pem",
        lambda d: d.write("/opt/app/tls/key.pem", _ssh_key("ecdsa", pem=True), mode=0o600),
        CREDENTIALS,
        _exists("/opt/app/tls/key.pem"),
    ),
    Defect(
        "putty-key-in-srv",
        "hygiene",
        "a PuTTY private key in /srv/deploy/deploy.ppk",
        _write("/srv/deploy/deploy.ppk", PUTTY, 0o600),
        CREDENTIALS,
        _exists("/srv/deploy/deploy.ppk"),
    ),
    Defect(
        "pgp-secret-key",
        "hygiene",
        "an armored PGP private key block in /var/lib/signer/secret.asc",
        _write("/var/lib/signer/secret.asc", PGP_SECRET, 0o600),
        CREDENTIALS,
        _exists("/var/lib/signer/secret.asc"),
    ),
    # password hashes outside the account databases
    Defect(
        "yescrypt-hash-in-app-config",
        "hygiene",
        "a yescrypt hash in /usr/local/etc/app/users.conf",
        _write("/usr/local/etc/app/users.conf", f"admin:{YESCRYPT}\n", 0o600),
        CREDENTIALS,
        _exists("/usr/local/etc/app/users.conf"),
    ),
    Defect(
        "bcrypt-htpasswd",
        "hygiene",
        "a bcrypt htpasswd entry in /etc/nginx/.htpasswd",
        _write("/etc/nginx/.htpasswd", f"ops:{BCRYPT}\n", 0o640),
        CREDENTIALS,
        _exists("/etc/nginx/.htpasswd"),
    ),
    # debconf's password store
    Defect(
        "debconf-password-stored",
        "hygiene",
        "debconf's passwords.dat keeps a preseeded MySQL root password",
        _debconf_answer("/var/cache/debconf/passwords.dat"),
        CREDENTIALS,
        _contains("/var/cache/debconf/passwords.dat", "MutationRootPw1"),
    ),
    Defect(
        "debconf-password-in-old-store",
        "hygiene",
        "debconf's passwords.dat-old (its previous copy) keeps a password",
        _debconf_answer("/var/cache/debconf/passwords.dat-old"),
        CREDENTIALS,
        _contains("/var/cache/debconf/passwords.dat-old", "MutationRootPw1"),
    ),
    # a password assignment in a configuration file
    Defect(
        "db-password-in-config",
        "hygiene",
        "password = ... in /etc/app/db.ini",
        _write(
            "/etc/app/db.ini",
            "[db]\nhost = db.internal\nuser = app\npassword = Tr0ub4dor&3\n",
            0o640,
        ),
        CREDENTIALS,
        _exists("/etc/app/db.ini"),
    ),
)

WORDS_NOT_SECRETS = """\
# Database settings: put the password in /run/secrets/db, never here.
# password: <set by the deployment>
password =
password_file = /run/secrets/db
api_key = ${API_KEY}
proxy = http://proxy.corp.example:3128
repository = https://deploy@git.example/app.git
"""


def _words_not_secrets(d: DiskEditor) -> None:
    d.write("/etc/app/app.conf", WORDS_NOT_SECRETS)
    d.write(
        "/usr/local/bin/backup-db",
        '#!/bin/sh\nmysqldump --defaults-extra-file=/run/secrets/db.cnf -p"$DB_PASSWORD" app\n'
        'curl -fsS -u "$ARTIFACT_USER:$ARTIFACT_TOKEN" https://artifacts.example.com/x\n'
        "mkdir -p /var/backups/db\n",
        mode=0o755,
    )
    d.write("/etc/apt/auth.conf.d/README", "# machine <host> login <user> password <secret>\n")
    d.write("/etc/profile.d/proxy.sh", "export https_proxy=http://proxy.corp.example:3128\n")
    pub = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMutationPublicHalfOnly x\n"
    d.write(
        "/var/backups/skel.tar.gz",
        tar_of({"etc/skel/.profile": b"# ~/.profile\n", "etc/ssh/ca.pub": pub}, "gz"),
    )


PACKAGE_GOOD_VARIANTS: tuple[GoodVariant, ...] = (
    GoodVariant(
        "local-diversion-wrapper",
        "lsb_release replaced by a wrapper through a local dpkg diversion",
        "a file replaced through dpkg-divert is the package system's own record: the package's "
        "copy is verified where dpkg moved it",
        _local_diversion,
        lambda d: d.exists("/usr/bin/lsb_release.distrib"),
    ),
    GoodVariant(
        "setgid-granted-by-statoverride",
        "wall made setgid tty through dpkg-statoverride",
        "privilege an administrator grants through dpkg-statoverride is the package system's "
        "own record, not a stray setuid file",
        _statoverride_grant,
        _mode("/usr/bin/wall", 0o2755),
    ),
    GoodVariant(
        "capabilities-iproute2-setcaps",
        "/usr/bin/ip with the capabilities iproute2's postinst sets when debconf's "
        "iproute2/setcaps is true",
        "a capability a package's own maintainer script grants is the package's choice",
        _setcap("/usr/bin/ip", _caps(1, 12, 21)),
        _has_caps("/usr/bin/ip"),
    ),
    GoodVariant(
        "setuid-removed-by-statoverride",
        "chfn and chsh without their setuid bit (CIS-style), recorded as statoverrides",
        "removing privilege is never a finding",
        _statoverride_drop,
        _mode("/usr/bin/chfn", 0o755),
    ),
    GoodVariant(
        "config-words-without-secrets",
        "a config that names a password without giving one, a proxy without user-info, a "
        "backup archive holding only a public key",
        "the scanner reports values, never the words password, token or key alone",
        _words_not_secrets,
        _exists("/etc/app/app.conf"),
    ),
    GoodVariant(
        "apt-sources-deb822",
        "apt sources in deb822 format (debian.sources, Signed-By the archive keyring)",
        "both apt source formats are read; signed-by keyrings are the image's own",
        _deb822(),
        _exists("/etc/apt/sources.list.d/debian.sources"),
    ),
    GoodVariant(
        "security-from-security-debian-org",
        "the security suite from security.debian.org instead of deb.debian.org",
        "any mirror of the security suite the image's keys verify is the security suite",
        _security_mirror,
        _security_mirror_landed,
    ),
    GoodVariant(
        "apt-pins-that-keep-updates",
        "apt preferences pinning backports at 100 and preferring the security suite at 990",
        "pins are judged by the candidates apt computes: only a pin that keeps a security "
        "update out is a finding",
        _write(
            "/etc/apt/preferences.d/policy",
            "Package: *\nPin: release n=bookworm-backports\nPin-Priority: 100\n\n"
            "Package: *\nPin: release l=Debian-Security\nPin-Priority: 990\n",
        ),
        _exists("/etc/apt/preferences.d/policy"),
    ),
)
