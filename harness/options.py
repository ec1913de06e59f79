"""Every setting of the harness: one pytest option and one environment variable each.

One table, so that `pytest --help`, the README's configuration table and the
"missing settings" message of preflight cannot drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

GROUP = "xcp-ng templates"


@dataclass(frozen=True)
class Opt:
    flag: str  # "--os"
    env: str  # "TEMPLATE_OS"
    help: str
    default: str | None = None
    secret: bool = False
    kind: str = "str"  # "str", "flag" (store_true), "choice"
    choices: tuple[str, ...] = ()
    needed_by: tuple[str, ...] = ()  # phases that cannot run without it: "xcpng", "s3"

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[Opt, ...] = (
    Opt("--os", "TEMPLATE_OS", "OSes to build and check: 'all' or a comma list (see --list-os)"),
    Opt("--list-os", "TEMPLATE_LIST_OS", "list the OSes of the catalog and exit", kind="flag"),
    Opt(
        "--list-os-format",
        "TEMPLATE_LIST_OS_FORMAT",
        "format of --list-os",
        default="table",
        kind="choice",
        choices=("table", "json"),
    ),
    Opt("--packer-dir", "TEMPLATE_PACKER_DIR", "the Packer templates folder", default="packer"),
    Opt(
        "--platform",
        "TEMPLATE_PLATFORM",
        "where images boot for the checks",
        default="xcpng",
        kind="choice",
        choices=("xcpng", "local"),
    ),
    Opt("--xva", "TEMPLATE_XVA", "check this existing artifact instead of building (one OS only)"),
    Opt("--rebuild", "TEMPLATE_REBUILD", "rebuild even when a cached image matches", kind="flag"),
    Opt(
        "--max-image-age",
        "TEMPLATE_MAX_IMAGE_AGE",
        "a cached image older than this is rebuilt (e.g. 7d, 12h, 0 = never reuse)",
        default="7d",
    ),
    Opt(
        "--keep-vm",
        "TEMPLATE_KEEP_VM",
        "keep the booted VM after the checks",
        default="never",
        kind="choice",
        choices=("never", "on-failure", "always"),
    ),
    Opt("--keep-vm-ttl", "TEMPLATE_KEEP_VM_TTL", "time-to-live tag of a kept VM", default="24h"),
    Opt("--artifacts-dir", "TEMPLATE_ARTIFACTS_DIR", "logs and build records", default="artifacts"),
    Opt("--reports-dir", "TEMPLATE_REPORTS_DIR", "results.json and JUnit files", default="reports"),
    Opt(
        "--cache-dir",
        "TEMPLATE_CACHE_DIR",
        "built images, reused by inputs digest",
        default="~/.cache/xcpng-templates",
    ),
    Opt("--packer-bin", "PACKER_BIN", "the packer executable", default="packer"),
    Opt("--build-timeout", "TEMPLATE_BUILD_TIMEOUT", "per-OS build time limit", default="90m"),
    Opt("--boot-timeout", "TEMPLATE_BOOT_TIMEOUT", "time limit to reach SSH", default="15m"),
    Opt("--min-free-disk", "TEMPLATE_MIN_FREE_DISK", "free disk needed per OS", default="8G"),
    Opt("--publish", "TEMPLATE_PUBLISH", "publish passed OSes at session end", kind="flag"),
    Opt(
        "--publish-to",
        "TEMPLATE_PUBLISH_TO",
        "destination: s3://bucket/prefix or a folder",
        default="published",
    ),
    Opt(
        "--publish-require-platform",
        "TEMPLATE_PUBLISH_REQUIRE_PLATFORM",
        "platform a pass must come from to be published "
        "(default: xcpng for s3://, any for a folder)",
    ),
    Opt("--run-id", "TEMPLATE_RUN_ID", "run id carried by VM names and tags (default: generated)"),
    # XCP-ng pool
    Opt("--xcpng-url", "XCPNG_URL", "pool master URL, https://host", needed_by=("xcpng",)),
    Opt("--xcpng-username", "XCPNG_USERNAME", "pool user", needed_by=("xcpng",)),
    Opt("--xcpng-password", "XCPNG_PASSWORD", "pool password", secret=True, needed_by=("xcpng",)),
    Opt("--xcpng-sr", "XCPNG_SR", "storage repository name (default: pool default SR)"),
    Opt("--xcpng-network", "XCPNG_NETWORK", "network name for the VM", needed_by=("xcpng",)),
    Opt(
        "--xcpng-ssh-port",
        "XCPNG_SSH_PORT",
        "SSH port of booted VMs (22 on a pool; tests point it at a stand-in)",
        default="22",
    ),
    Opt("--xcpng-tls-verify", "XCPNG_TLS_VERIFY", "verify the pool's TLS certificate", default="1"),
    Opt("--xcpng-ca-bundle", "XCPNG_CA_BUNDLE", "CA bundle for the pool's certificate"),
    # S3-compatible store
    Opt("--s3-endpoint-url", "S3_ENDPOINT_URL", "S3 endpoint (empty: AWS)"),
    Opt("--s3-region", "S3_REGION", "S3 region", default="us-east-1"),
    Opt(
        "--s3-addressing-style",
        "S3_ADDRESSING_STYLE",
        "bucket addressing",
        default="auto",
        kind="choice",
        choices=("auto", "path", "virtual"),
    ),
    Opt("--s3-signature-version", "S3_SIGNATURE_VERSION", "request signing", default="s3v4"),
    Opt(
        "--s3-checksum-mode",
        "S3_CHECKSUM_MODE",
        "request checksums (when_required for most non-AWS stores)",
        default="when_required",
        kind="choice",
        choices=("when_supported", "when_required"),
    ),
    Opt("--s3-tls-verify", "S3_TLS_VERIFY", "verify the store's TLS certificate", default="1"),
    Opt("--s3-ca-bundle", "S3_CA_BUNDLE", "CA bundle for the store's certificate"),
    Opt(
        "--s3-multipart-chunksize",
        "S3_MULTIPART_CHUNKSIZE",
        "S3 multipart part size and threshold (min 5M)",
        default="8M",
    ),
    Opt(
        "--s3-max-concurrency", "S3_MAX_CONCURRENCY", "parallel part uploads per file", default="10"
    ),
    Opt("--s3-acl", "S3_ACL", "canned ACL of published objects", default="private"),
    Opt("--aws-access-key-id", "AWS_ACCESS_KEY_ID", "S3 access key", needed_by=("s3",)),
    Opt(
        "--aws-secret-access-key",
        "AWS_SECRET_ACCESS_KEY",
        "S3 secret key",
        secret=True,
        needed_by=("s3",),
    ),
)

BY_DEST = {o.dest: o for o in OPTIONS}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "build, boot, check and publish XCP-ng templates")
    for o in OPTIONS:
        env_note = f" [env {o.env}" + (f", default {o.default}]" if o.default else "]")
        if o.secret:
            env_note = f" [env {o.env} only: secrets are refused on the command line]"
        if o.kind == "flag":
            group.addoption(o.flag, action="store_true", default=None, help=o.help + env_note)
        elif o.kind == "choice":
            group.addoption(o.flag, choices=list(o.choices), default=None, help=o.help + env_note)
        else:
            group.addoption(o.flag, default=None, help=o.help + env_note)


class Settings:
    """Resolved settings: command line first, then environment, then default."""

    def __init__(self, values: dict[str, Any]):
        self._values = values

    @classmethod
    def from_config(cls, config: pytest.Config, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for o in OPTIONS:
            cli = config.getoption(o.dest, default=None)
            values[o.dest] = _resolve(o, cli, env)
        return cls(values)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ) if env is None else env
        values = {o.dest: _resolve(o, overrides.get(o.dest), env) for o in OPTIONS}
        return cls(values)

    def get(self, name: str) -> Any:
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def path(self, name: str) -> Path:
        return Path(os.path.expanduser(str(self._values[name]))).absolute()

    def flag(self, name: str) -> bool:
        return bool(self._values[name])

    def truthy(self, name: str) -> bool:
        return str(self._values[name] or "").strip().lower() in ("1", "true", "yes", "on")

    def secrets(self) -> list[str]:
        """Every secret value in force, for redaction."""
        return [str(self._values[o.dest]) for o in OPTIONS if o.secret and self._values[o.dest]]

    def missing(self, phases: set[str]) -> list[Opt]:
        return [o for o in OPTIONS if set(o.needed_by) & phases and not self._values[o.dest]]

    def as_dict(self, redact: bool = True) -> dict[str, Any]:
        return {
            k: ("***" if redact and BY_DEST[k].secret and v else v) for k, v in self._values.items()
        }


def _resolve(o: Opt, cli: Any, env: dict[str, str]) -> Any:
    if o.kind == "flag":
        if cli:
            return True
        return env.get(o.env, "").strip().lower() in ("1", "true", "yes", "on")
    if cli not in (None, "") and o.secret:
        from harness.model import UsageError

        raise UsageError(
            f"{o.flag} is a secret: set {o.env} in the environment instead (a command line is "
            "visible to every user of the machine and lands in shell history)"
        )
    if cli not in (None, ""):
        return cli
    if env.get(o.env, "") != "":
        value = env[o.env]
        if o.kind == "choice" and value not in o.choices:
            from harness.model import UsageError

            raise UsageError(
                f"{o.env}={value!r} is not valid; choose one of {', '.join(o.choices)}"
            )
        return value
    return o.default


def parse_duration(text: str, what: str) -> float:
    """'90m', '7d', '12h', '30s' or plain seconds, as seconds."""
    from harness.model import UsageError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    t = str(text).strip().lower()
    try:
        if t and t[-1] in units:
            return float(t[:-1]) * units[t[-1]]
        return float(t)
    except ValueError:
        raise UsageError(
            f"{what}: {text!r} is not a duration; write e.g. 30s, 90m, 12h or 7d"
        ) from None


def parse_size(text: str, what: str) -> int:
    """'8G', '512M' or plain bytes, as bytes."""
    from harness.model import UsageError

    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = str(text).strip().lower().removesuffix("b").removesuffix("i")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not a size; write e.g. 8G or 512M") from None


def markdown_table() -> str:
    """The README's configuration table (tests/unit/test_readme.py keeps them in step)."""
    rows = ["| option | environment | default | what |", "|---|---|---|---|"]
    for o in OPTIONS:
        default = "" if o.default is None else f"`{o.default}`"
        what = o.help + (" (secret: environment only)" if o.secret else "")
        rows.append(f"| `{o.flag}` | `{o.env}` | {default} | {what} |")
    return "\n".join(rows)
