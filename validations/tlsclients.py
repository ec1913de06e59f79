"""TLS verification as the clone's common clients will do it: switched off, or pointed at a CA
store other than the system's, through the environment every login gets or the clients' own
configuration files.

The system CA store (validations/cabundle.py) is only what clients trust when nothing tells
them otherwise. Each client here has its own documented switch: OpenSSL-based tools honour
SSL_CERT_FILE/SSL_CERT_DIR; requests REQUESTS_CA_BUNDLE; curl CURL_CA_BUNDLE, `insecure` and
`cacert` in .curlrc; git GIT_SSL_NO_VERIFY, GIT_SSL_CAINFO and http.sslVerify/sslCAInfo;
wget check_certificate and ca_certificate; pip PIP_CERT, PIP_TRUSTED_HOST, `cert` and
`trusted-host`; npm strict-ssl, cafile and ca; Node.js NODE_TLS_REJECT_UNAUTHORIZED and
NODE_EXTRA_CA_CERTS; Python PYTHONHTTPSVERIFY and an unverified default context installed by
sitecustomize. A value pointing at the system store itself is sound (EL's tools name it).

Pure: the caller passes a reader of the image's files (the offline image, in the check).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable

from validations.conftext import uncommented

SYSTEM_STORES = frozenset(
    {
        "/etc/ssl/certs", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem",
        "/usr/lib/ssl/cert.pem", "/usr/lib/ssl/certs", "/etc/pki/tls/certs",
        "/etc/pki/tls/cert.pem", "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/pki/ca-trust/extracted/openssl/ca-bundle.trust.crt",
    }
)  # fmt: skip
# variable -> what setting it does
CA_VARIABLES = {
    "SSL_CERT_FILE": "OpenSSL's CA file",
    "SSL_CERT_DIR": "OpenSSL's CA folder",
    "REQUESTS_CA_BUNDLE": "python-requests' CA bundle",
    "CURL_CA_BUNDLE": "curl's CA bundle",
    "GIT_SSL_CAINFO": "git's CA file",
    "GIT_SSL_CAPATH": "git's CA folder",
    "PIP_CERT": "pip's CA bundle",
    "NODE_EXTRA_CA_CERTS": "Node.js's extra CAs",
    "AWS_CA_BUNDLE": "the AWS SDKs' CA bundle",
}
# variable -> (the values that turn verification off, None for any value; whose). Node.js and
# Python (PEP 493) switch off on "0" only; git on any value, empty included (http.c tests
# getenv() for NULL).
OFF_VARIABLES: dict[str, tuple[frozenset[str] | None, str]] = {
    "NODE_TLS_REJECT_UNAUTHORIZED": (frozenset({"0"}), "Node.js"),
    "PYTHONHTTPSVERIFY": (frozenset({"0"}), "Python's urllib/http.client"),
    "GIT_SSL_NO_VERIFY": (None, "git"),
}
ENVIRONMENT_FILES = (
    "/etc/environment", "/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/zsh/zshenv",
    "/etc/security/pam_env.conf", "/etc/systemd/system.conf", "/etc/default/locale",
)  # fmt: skip
ENVIRONMENT_FOLDERS = ("/etc/profile.d", "/etc/systemd/system.conf.d", "/etc/environment.d")
HOME_ENV_FILES = (".bashrc", ".profile", ".bash_profile", ".zshenv", ".pam_environment")
# client configuration, system-wide and per home (relative to a home or /etc/skel)
SYSTEM_CONFIGS = {
    "/etc/gitconfig": "git",
    "/etc/wgetrc": "wget",
    "/etc/pip.conf": "pip",
    "/etc/xdg/pip/pip.conf": "pip",
    "/etc/npmrc": "npm",
    "/usr/etc/npmrc": "npm",
    "/etc/curlrc": "curl",
}
HOME_CONFIGS = {
    ".gitconfig": "git",
    ".config/git/config": "git",
    ".wgetrc": "wget",
    ".curlrc": "curl",
    ".config/curlrc": "curl",
    ".pip/pip.conf": "pip",
    ".config/pip/pip.conf": "pip",
    ".npmrc": "npm",
}
PYTHON_HOOKS = re.compile(r"/usr/(?:local/)?lib/python3[^/]*/(?:dist|site)-packages/[^/]+\.pth$")
_ASSIGN = re.compile(r"^\s*(?:export\s+|setenv\s+|DefaultEnvironment\s*=\s*)?(.*)$")
_PAIR = re.compile(r"([A-Z_][A-Z0-9_]*)(?:=|\s+DEFAULT=|\s+OVERRIDE=)\"?([^\"\s]*)\"?")
_UNVERIFIED = re.compile(r"_create_unverified_context|CERT_NONE|verify\s*=\s*False")

Read = Callable[[str], str | None]


def _uncommented(text: str) -> list[str]:
    """Each line without its `#` comment (conftext's rule); `;` starts a comment line too in
    the INI-style files read here (git, pip, npm)."""
    return [uncommented(x) for x in text.splitlines() if not x.lstrip().startswith(";")]


def environment_findings(where: str, text: str) -> list[str]:
    """Variables that switch verification off or replace the CA store, in a shell, pam_env,
    environment.d or systemd file (`NAME=value`, `export NAME=value`, `NAME DEFAULT=value`,
    `DefaultEnvironment=NAME=value ...`)."""
    found = []
    for line in _uncommented(text):
        body = _ASSIGN.match(line)
        for name, value in _PAIR.findall(body.group(1) if body else line):
            if name in OFF_VARIABLES:
                off, what = OFF_VARIABLES[name]
                if off is None or value in off:
                    found.append(f"{where}: {name}={value} turns off {what}'s TLS verification")
            elif name in CA_VARIABLES and value and value.rstrip("/") not in SYSTEM_STORES:
                found.append(f"{where}: {name}={value} replaces {CA_VARIABLES[name]}")
            elif name == "PIP_TRUSTED_HOST" and value:
                found.append(f"{where}: PIP_TRUSTED_HOST={value} lets pip skip TLS for it")
    return found


def _ini(text: str) -> list[tuple[str, str, str]]:
    """(section, key lowercased, value) of a git-config or pip.conf style file. By hand, since
    configparser reads git's tab-indented keys as continuation lines and stops at the first
    line it cannot parse; both tools read on."""
    out, section = [], ""
    for raw in _uncommented(text):
        line = raw.strip()
        if line.startswith("[") and "]" in line:
            section = line[1 : line.index("]")].strip()
        elif line:
            key, sep, value = line.partition("=")
            out.append((section, key.strip().lower(), value.strip() if sep else "true"))
    return out


def _store(value: str) -> bool:
    return value.strip().strip("\"'").rstrip("/") in SYSTEM_STORES


def config_findings(where: str, client: str, text: str) -> list[str]:
    """One client's configuration file, in its own syntax."""
    found = []
    lines = [x.strip() for x in _uncommented(text) if x.strip()]
    if client == "git":
        for section, key, value in _ini(text):
            if key == "sslverify" and value.strip("\"'").lower() in ("false", "no", "off", "0"):
                found.append(f"{where}: [{section}] sslVerify = {value}: git skips TLS checks")
            elif key in ("sslcainfo", "sslcapath") and value and not _store(value):
                found.append(f"{where}: [{section}] {key} = {value} replaces git's CA store")
    elif client == "wget":
        for line in lines:
            key, _, value = (w.strip().lower() for w in line.partition("="))
            if key.replace("_", "") == "checkcertificate" and value in ("off", "0", "no"):
                found.append(f"{where}: check_certificate = {value}: wget skips TLS checks")
            elif key.replace("_", "") in ("cacertificate", "cadirectory") and not _store(value):
                found.append(f"{where}: {key} = {value} replaces wget's CA store")
    elif client == "curl":
        for line in lines:
            word = line.split(None, 1)
            key = word[0].lstrip("-").split("=", 1)[0].lower()
            value = (word[1] if len(word) > 1 else line.partition("=")[2]).strip()
            if key in ("insecure", "k", "proxy-insecure"):
                found.append(f"{where}: {line}: curl skips TLS checks")
            elif key in ("cacert", "capath") and not _store(value.lstrip("=: ")):
                found.append(f"{where}: {line}: replaces curl's CA store")
    elif client == "pip":
        for _section, raw_key, value in _ini(text):
            key = raw_key.replace("_", "-")
            if key == "trusted-host":  # its hosts may follow on indented lines
                found.append(
                    f"{where}: trusted-host {value}: pip skips TLS for it".replace("  ", " ")
                )
            elif key == "cert" and value and not _store(value):
                found.append(f"{where}: cert = {value} replaces pip's CA bundle")
            elif key in ("index-url", "extra-index-url") and "http://" in value:
                found.append(f"{where}: {key} over plain http: packages unverified")
    elif client == "npm":
        for line in lines:
            key, _, value = (w.strip() for w in line.partition("="))
            if key.lower() == "strict-ssl" and value.lower() == "false":
                found.append(f"{where}: strict-ssl=false: npm skips TLS checks")
            elif key.lower() in ("cafile", "ca", "ca[]") and value and not _store(value):
                found.append(f"{where}: {key}={value[:40]} replaces npm's CA store")
    return found


def python_hook_findings(where: str, text: str) -> list[str]:
    """sitecustomize/usercustomize and .pth files run at every Python start: one that installs
    an unverified default HTTPS context turns verification off for every script."""
    if _UNVERIFIED.search("\n".join(_uncommented(text))):
        return [f"{where}: installs an unverified default TLS context for every Python program"]
    return []


def findings(
    read: Read, listdir: Callable[[str], list[str]], homes: Iterable[str], python_files: list[str]
) -> list[str]:
    """Everything that would make the clone's TLS clients trust more than the system store."""
    found: list[str] = []
    env_files = list(ENVIRONMENT_FILES)
    for folder in ENVIRONMENT_FOLDERS:
        env_files += [posixpath.join(folder, n) for n in listdir(folder)]
    for home in homes:
        env_files += [posixpath.join(home, n) for n in HOME_ENV_FILES]
    for path in env_files:
        if (text := read(path)) is not None:
            found += environment_findings(path, text)
    configs = dict(SYSTEM_CONFIGS)
    for home in homes:
        configs |= {posixpath.join(home, rel): client for rel, client in HOME_CONFIGS.items()}
    for path, client in configs.items():
        if (text := read(path)) is not None:
            found += config_findings(path, client, text)
    for path in python_files:
        if (text := read(path)) is not None:
            found += python_hook_findings(path, text)
    return list(dict.fromkeys(found))


def is_python_hook(path: str) -> bool:
    name = posixpath.basename(path)
    return (name in ("sitecustomize.py", "usercustomize.py") and "/python3" in path) or bool(
        PYTHON_HOOKS.match(path)
    )
