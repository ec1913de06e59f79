"""What a credential looks like, and where a golden image must hold none.

A key or password baked into a template is a back door into every clone made from it. The
detectors here judge bytes; validations/credscan.py decides which files of an image they read.
Each detector names a kind ("a GitHub token"), never the secret. A detector runs its pattern
only where one of its literal needles occurs, so a binary of megabytes costs a few substring
searches. Pure, so each kind is unit-tested on small byte strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_SCAN_BYTES = 16 * 1024 * 1024  # larger files are not read (a kernel initramfs, a database)
TEXT_PROBE = 8192  # a file with a NUL byte in its first 8 KiB is binary

AUTHORIZED_KEYS = (".ssh/authorized_keys", ".ssh/authorized_keys2")
# Files that hold credentials by their very name, relative to a home folder (or /etc/skel).
CREDENTIAL_FILES = (
    ".netrc",
    ".aws/credentials",
    ".docker/config.json",
    ".git-credentials",
    ".pgpass",
    ".my.cnf",
    ".s3cfg",
    ".boto",
    ".vault-token",
    ".kube/config",
    ".npmrc",
    ".pypirc",
    ".config/gcloud/credentials.db",
    ".config/gcloud/application_default_credentials.json",
    ".azure/accessTokens.json",
    ".azure/msal_token_cache.json",
    ".terraform.d/credentials.tfrc.json",
    ".config/gh/hosts.yml",
    ".config/hub",
    ".gnupg/private-keys-v1.d",
    ".gnupg/secring.gpg",
)
# Files outside homes that hold credentials by their format (netrc, user:password lines,
# PPP/IPsec secrets): any line that is not a comment is a secret. Package copies that hold
# only comments are untouched package files, which the scan skips.
SYSTEM_CREDENTIAL_FILES = (
    "/etc/apt/auth.conf",
    "/etc/apt/auth.conf.d/*",
    "/etc/postfix/sasl_passwd",
    "/etc/exim4/passwd.client",
    "/etc/rsyncd.secrets",
    "/etc/rsyncd/*.secrets",
    "/etc/ppp/chap-secrets",
    "/etc/ppp/pap-secrets",
    "/etc/ipsec.secrets",
    "/etc/davfs2/secrets",
    "/etc/openvpn/*.pass",
    "/etc/openvpn/*/*.pass",
    "/etc/cifs-credentials",
    "/etc/smbcredentials",
    "/root/.smbcredentials",
)

# A value that only names another (a shell or template variable, a placeholder), not a secret.
_REFERENCE = re.compile(rb"^[\"']?(?:\$|%\(|%[sd]|\{\{|<[A-Za-z_]|`|\*{3,}|x{3,}$|X{3,}$)")


def _not_a_reference(m: re.Match[bytes]) -> bool:
    return not _REFERENCE.match(m.group("value"))


@dataclass(frozen=True)
class Detector:
    label: str
    needles: tuple[bytes, ...]  # the pattern runs only when one of these occurs (or always: ())
    pattern: re.Pattern[bytes]
    text_only: bool = False  # a heuristic that binaries would trip
    accept: Callable[[re.Match[bytes]], bool] = lambda _m: True
    lowercase: bool = False  # needles and pattern apply to the lowercased data

    def found(self, data: bytes, text: bool) -> bool:
        if self.text_only and not text:
            return False
        if self.lowercase:
            data = data.lower()
        if self.needles and not any(n in data for n in self.needles):
            return False
        return any(self.accept(m) for m in self.pattern.finditer(data))


def _d(label: str, needles: tuple[bytes, ...], pattern: bytes) -> Detector:
    return Detector(label, needles, re.compile(pattern))


# A private key is its whole block (marker, a base64 body, end marker): the marker alone is a
# constant in every TLS library and its compiled Python. The body may be JSON-escaped (\n).
PEM_KEY = (
    rb"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----"
    rb"[A-Za-z0-9+/=:,.()\s\\-]{4,65536}?"
    rb"-----END \1PRIVATE KEY\2-----"
)

PRIVATE_KEYS = (
    _d("a private key", (b"PRIVATE KEY",), PEM_KEY),
    _d("a private key (PuTTY)", (b"PuTTY-User-Key-File-",), rb"PuTTY-User-Key-File-\d+: *\S+"),
    _d(
        "a private key (SSH2)",
        (b"SSH2 ENCRYPTED PRIVATE KEY",),
        rb"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----",
    ),
)
# crypt(3) hashes: MD5, bcrypt, SHA-256/512, scrypt, yescrypt, gost-yescrypt
PASSWORD_HASH = _d(
    "a password hash", (b"$",), rb"\$(?:1|2[abxy]|5|6|7|y|gy)\$[./A-Za-z0-9$,=]{20,}"
)
TOKENS = (
    Detector(
        "an AWS access key id",
        (b"AKIA", b"ASIA", b"ABIA", b"ACCA"),
        re.compile(rb"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
        accept=lambda m: not m.string[m.start() - 1 : m.start()].isalnum(),
    ),
    _d(
        "an AWS secret key",
        (b"ecret_access_key", b"ECRET_ACCESS_KEY", b"SecretAccessKey"),
        rb"(?i)(?:secret_?access_?key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])",
    ),
    _d(
        "a GitHub token",
        (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_"),
        rb"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
    ),
    _d(
        "a GitLab token",
        (b"glpat-", b"gldt-", b"glrt-", b"glptt-", b"glft-", b"glimt-", b"glcbt-", b"GR1348941"),
        rb"\b(?:gl(?:pat|dt|rt|ptt|ft|imt|cbt|soat|oas|agent)-[A-Za-z0-9_.-]{20,}"
        rb"|GR1348941[A-Za-z0-9_-]{20,})",
    ),
    _d(
        "a Slack token",
        (b"xox", b"hooks.slack.com/"),
        rb"\bxox[abposr]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,}",
    ),
    _d("a Google API key", (b"AIza",), rb"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    _d("a Google OAuth client secret", (b"GOCSPX-",), rb"GOCSPX-[A-Za-z0-9_-]{28}"),
    _d(
        "a Stripe key",
        (b"k_live_", b"k_test_", b"whsec_"),
        rb"\b(?:[sr]k_(?:live|test)_[0-9A-Za-z]{20,}|whsec_[0-9A-Za-z]{24,})",
    ),
    _d("an npm token", (b"npm_",), rb"\bnpm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    Detector(
        "an npm registry credential",
        (b"_authToken", b"_auth", b"_password"),
        re.compile(rb"(?m)(?:^|:)_(?:authToken|auth|password)[ \t]*=[ \t]*(?P<value>\S{6,})"),
        accept=_not_a_reference,
    ),
    _d("a PyPI token", (b"pypi-AgE",), rb"pypi-AgE[A-Za-z0-9_-]{50,}"),
    _d(
        "a Docker registry credential",
        (b'"auths"',),
        rb'"(?:auth|identitytoken|registrytoken)"\s*:\s*"[A-Za-z0-9+/=_.:-]{4,}"',
    ),
    _d(
        "an Azure storage key",
        (b"AccountKey=", b"SharedAccessKey=", b"SharedAccessSignature="),
        rb"(?:AccountKey|SharedAccessKey)=[A-Za-z0-9+/]{20,}={0,2}|SharedAccessSignature=[^;\s\"']{20,}",
    ),
    _d("a HashiCorp Vault token", (b"hvs.", b"hvb.", b"hvr."), rb"\bhv[sbr]\.[A-Za-z0-9_-]{24,}"),
    _d(
        "a Terraform Cloud token",
        (b".atlasv1.",),
        rb"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_-]{60,}",
    ),
    _d("a DigitalOcean token", (b"_v1_",), rb"\bdo[por]_v1_[a-f0-9]{64}"),
    _d(
        "an OpenAI key",
        (b"sk-proj-", b"sk-svcacct-", b"sk-admin-", b"T3BlbkFJ"),
        rb"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",
    ),
    _d("an Anthropic key", (b"sk-ant-",), rb"\bsk-ant-[a-z]{3,7}\d{2}-[A-Za-z0-9_-]{80,}"),
    _d(
        "a SendGrid key", (b"SG.",), rb"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"
    ),
    Detector(
        "a netrc password",
        (b"machine",),
        re.compile(
            rb"\bmachine\s+\S+(?:\s+(?:login|port|account)\s+\S+)*\s+password\s+(?P<value>\S+)"
        ),
        accept=_not_a_reference,
    ),
    Detector(
        "a password on a command line",
        (b"-p", b"--pass", b"--user", b"-u", b"-U"),
        re.compile(
            rb"\bmysql(?:dump|admin)?\b[^\n]*?\s-p(?P<v1>[^\s'\"]{4,})"
            rb"|\bsshpass\b[^\n]*?\s-p\s*['\"]?(?P<v2>[^\s'\"]{4,})"
            rb"|\b(?:curl|wget)\b[^\n]*?\s(?:-u|--user)[ =]?['\"]?[^\s:'\"]+:(?P<v3>[^\s'\"]{4,})"
            rb"|--(?:http-|ftp-|proxy-)?password[ \t]+['\"]?(?P<v4>[^\s'\"-][^\s'\"]{3,})"
            rb"|\bsmbclient\b[^\n]*?\s-U\s*['\"]?[^\s%'\"]+%(?P<v5>[^\s'\"]{4,})"
        ),
        text_only=True,
        accept=lambda m: not any(_REFERENCE.match(v) for v in m.groups() if v),
    ),
    _d(
        "a WireGuard private or pre-shared key",
        (b"PrivateKey", b"PresharedKey"),
        rb"(?m)^\s*(?:PrivateKey|PresharedKey)\s*=\s*[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=",
    ),
    _d(
        "a JSON Web Token",
        (b"eyJ",),
        rb"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
    ),
    _d(
        "an HTTP Authorization header",
        (b"uthorization", b"UTHORIZATION"),
        rb"(?i)authorization[\"']?\s*[:=]\s*[\"']?(?:basic|bearer|token)\s+[A-Za-z0-9+/=._~-]{16,}",
    ),
    Detector(
        "a password in a URL",
        (b"://",),
        re.compile(
            rb"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s:/@'\"<>\[\]{}]{1,64}:"
            rb"(?P<value>[^\s/@'\"<>]{1,256})@[A-Za-z0-9\[]"
        ),
        accept=_not_a_reference,
    ),
)
# Lines of the distributions' own configuration files that look like secrets and are their
# documented examples, which any local edit of those files (so that their checksum no longer
# vouches for them) would otherwise expose to the heuristic below: OpenSSL's openssl.cnf
# configures `openssl cmp` against Insta's public demo CA with the password `pass:insta`, and
# shows `input_password = secret` commented out (Debian, Ubuntu and EL ship it). Whole lines,
# lowercased and stripped, so the same value anywhere else is still a finding.
STOCK_EXAMPLE_LINES = frozenset(
    {
        b"secret = pass:insta # can be used for both client and server side",
        b"# input_password = secret",
        b"# output_password = secret",
    }
)


def _assigned_secret(m: re.Match[bytes]) -> bool:
    text = m.string
    line = text[text.rfind(b"\n", 0, m.start()) + 1 : text.find(b"\n", m.end()) % (len(text) + 1)]
    return _not_a_reference(m) and b" ".join(line.split()) not in STOCK_EXAMPLE_LINES


# `password = hunter2` in a text file: the one heuristic, for text only, and never a value that
# is a variable, a template, a mask or a distribution's own example. Matched on the lowercased
# text (a case-blind pattern is several times slower).
ASSIGNMENT = Detector(
    "a password assignment",
    (b"pass", b"secret", b"api", b"token", b"psk"),
    re.compile(
        rb"(?<![a-z])(?:password|passwd|passphrase|secret|api[_-]?key|token|psk)[\"']?[ \t]*"
        rb"[:=][ \t]*(?P<value>[\"']?[^\s\"'*]{6,})"
    ),
    text_only=True,
    accept=_assigned_secret,
    lowercase=True,
)


def is_text(data: bytes) -> bool:
    return b"\0" not in data[:TEXT_PROBE]


def private_keys(data: bytes) -> bool:
    return any(d.found(data, True) for d in PRIVATE_KEYS)


def secrets_in(data: bytes, hashes: bool = True) -> list[str]:
    """What kinds of secret `data` holds (keys, tokens, password hashes and assignments)."""
    text = is_text(data)
    detectors = [*PRIVATE_KEYS, *([PASSWORD_HASH] if hashes else []), *TOKENS, ASSIGNMENT]
    labels = [d.label for d in detectors if d.found(data, text)]
    return list(dict.fromkeys(labels))


def debconf_passwords(text: str) -> list[str]:
    """Names of the questions whose answer debconf's password store still holds (its
    passwords.dat keeps the answers to password questions, e.g. from a preseed)."""
    names, name = [], ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "Name":
            name = value.strip()
        elif key == "Value" and value.strip():
            names.append(name)
    return names


def account_rows(text: str) -> dict[str, list[str]]:
    """passwd/shadow/group/gshadow rows by name (the first field)."""
    rows = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#") and ":" in line:
            fields = line.split(":")
            rows[fields[0]] = fields
    return rows


def password_problem(field: str, kind: str) -> str | None:
    """What is wrong with a password field of an account file, None when it lets nobody in:
    locked (`!`, `*`), `x` (shadowed) in passwd and group, empty only in gshadow."""
    if field.startswith(("!", "*")):
        return None
    if field == "x" and kind in ("passwd", "group"):
        return None
    if field == "":
        return None if kind == "gshadow" else "an empty password (no password needed)"
    return "a usable password hash"
