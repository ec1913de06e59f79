"""The TLS policy OpenSSL applies to every connection it makes, read from its configuration as
libssl does.

OpenSSL reads `openssl.cnf` (or the file OPENSSL_CONF names) at start-up; the default section's
`openssl_conf` names an initialisation section, its `ssl_conf` a module section, and that
section's `system_default` the settings every SSL_CTX gets (MinProtocol, CipherString with its
@SECLEVEL, Options). Debian builds OpenSSL with security level 2 and no system section; EL
includes its crypto-policies back end there. A file that lowers them weakens every client and
server on the clone that uses OpenSSL: apt, curl, Python, the agents operators add.

Parsed with the rules of crypto/conf/conf_def.c: `[section]` headers, `name = value`, `#`
comments outside quotes, `.include` of a file or of a folder's `*.cnf`/`*.conf` files (spliced
where it stands, into the current section), a later value replacing an earlier one, `$name`
and `${section::name}` expansion. Pure: the caller passes a reader of the image's files.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

CONF_FILES = {"debian": "/etc/ssl/openssl.cnf", "el": "/etc/pki/tls/openssl.cnf"}
MAX_INCLUDE_DEPTH = 8
# What a sound policy never goes below: TLS 1.2 (RFC 8996 deprecates 1.0 and 1.1) and security
# level 2 (Debian's and EL's own: 112-bit keys, no SHA-1 signatures).
WEAK_PROTOCOLS = frozenset({"none", "sslv3", "tlsv1", "tlsv1.1", "dtlsv1"})
MIN_SECLEVEL = 2
WEAK_CIPHER_WORDS = frozenset({"NULL", "eNULL", "aNULL", "EXPORT", "RC4", "DES", "3DES", "MD5"})
UNSAFE_OPTIONS = frozenset({"UnsafeLegacyRenegotiation", "UnsafeLegacyServerConnect"})

Read = Callable[[str], str | None]
ListDir = Callable[[str], list[str]]

_SECTION = re.compile(r"^\[\s*([^\]\s]+)\s*\]")
_INCLUDE = re.compile(r"^\.include\s*=?\s*(.+)$")
_VAR = re.compile(r"\$(?:\{([^}]+)\}|\(([^)]+)\)|([A-Za-z0-9_:]+))")
_SECLEVEL = re.compile(r"@SECLEVEL=(\d+)")


def _strip_comment(line: str) -> str:
    out, quote = [], ""
    for ch in line:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        out.append(ch)
    return "".join(out).strip()


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse(path: str, read: Read, listdir: ListDir) -> dict[str, dict[str, str]]:
    """{section: {name: value}} of a configuration file and everything it includes."""
    sections: dict[str, dict[str, str]] = {"default": {}}
    state = {"section": "default"}

    def expand(value: str) -> str:
        def one(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2) or m.group(3)
            section, sep, key = name.partition("::")
            if not sep:
                section, key = state["section"], name
            return sections.get(section, {}).get(key, sections["default"].get(key, ""))

        return _VAR.sub(one, value)

    def load(file: str, depth: int) -> None:
        text = read(file)
        if text is None or depth > MAX_INCLUDE_DEPTH:
            return
        for raw in text.splitlines():
            line = _strip_comment(raw)
            if not line:
                continue
            if m := _SECTION.match(line):
                state["section"] = m.group(1)
                sections.setdefault(m.group(1), {})
                continue
            if m := _INCLUDE.match(line):
                target = _unquote(m.group(1))
                if not target.startswith("/"):
                    target = posixpath.join(posixpath.dirname(file), target)
                names = listdir(target)
                if names:  # a folder: its .cnf and .conf files, in name order
                    for name in sorted(n for n in names if n.endswith((".cnf", ".conf"))):
                        load(posixpath.join(target, name), depth + 1)
                else:
                    load(target, depth + 1)
                continue
            name, sep, value = line.partition("=")
            if sep:
                sections.setdefault(state["section"], {})[name.strip()] = expand(_unquote(value))

    load(path, 0)
    return sections


def system_default(sections: dict[str, dict[str, str]]) -> tuple[str, dict[str, str]]:
    """The name and settings of the section every SSL_CTX gets ("" and {} when none)."""
    init = sections["default"].get("openssl_conf", "")
    module = sections.get(init, {}).get("ssl_conf", "")
    name = sections.get(module, {}).get("system_default", "")
    return name, sections.get(name, {})


def weakenings(settings: dict[str, str], where: str) -> list[str]:
    """What in a system_default section lets OpenSSL speak weaker TLS than a sound policy."""
    found = []
    for key, value in settings.items():
        # EL's crypto-policies write TLS.MinProtocol and DTLS.MinProtocol: the same settings,
        # each for its protocol family
        low = key.lower().removeprefix("tls.").removeprefix("dtls.")
        if low == "minprotocol" and value.strip().lower() in WEAK_PROTOCOLS:
            found.append(f"{where}: {key} = {value} (TLS below 1.2 allowed)")
        elif low == "protocol":
            words = [w.strip() for w in value.split(",")]
            on = [w for w in words if w.lower() in WEAK_PROTOCOLS and not w.startswith("-")]
            if on:
                found.append(f"{where}: Protocol = {value} (enables {', '.join(on)})")
        elif low == "cipherstring":
            levels = [int(n) for n in _SECLEVEL.findall(value)]
            if levels and levels[-1] < MIN_SECLEVEL:
                found.append(
                    f"{where}: CipherString = {value} (security level {levels[-1]}, below "
                    f"{MIN_SECLEVEL}: short keys, SHA-1 signatures, TLS 1.0/1.1)"
                )
            words = [w for w in re.split(r"[:, ]+", value) if w]
            weak = [w for w in words if w.lstrip("+") in WEAK_CIPHER_WORDS]
            if weak:
                found.append(f"{where}: CipherString = {value} (enables {', '.join(weak)})")
        elif low == "options":
            unsafe = [w.strip() for w in value.split(",") if w.strip() in UNSAFE_OPTIONS]
            if unsafe:
                found.append(f"{where}: Options = {value} ({', '.join(unsafe)})")
    return found


def findings(conf: str, read: Read, listdir: ListDir) -> list[str]:
    """The weakenings of the system policy a configuration file makes (nothing when the file
    is missing: the library's built-in defaults apply)."""
    if read(conf) is None:
        return []
    name, settings = system_default(parse(conf, read, listdir))
    if not name:
        return []
    return weakenings(settings, f"OpenSSL's system policy ({conf}, section [{name}])")
