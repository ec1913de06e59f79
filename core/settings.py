"""Every setting of the harness: one table, one frozen object, parsed once at start-up.

Each option is a pytest option and an environment variable (the command line wins). The table
feeds `pytest --help`, the configuration reference (docs/configuration.md) and the "missing
settings" message, so they cannot drift apart. Durations, sizes, ports and flags are parsed
here, once: a bad value is one usage error naming the option and its variable, before anything
runs. The phases get typed objects (`Settings`, `XcpngConfig`, `S3Config`), never raw strings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.destination import Destination
from core.errors import UsageError
from core.redact import MIN_LENGTH

GROUP = "xcp-ng templates"
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")
KEEP_VM = ("never", "on-failure", "always")
# Packer variables that carry secrets from the environment (PKR_VAR_build_password, ...).
SECRET_WORDS = ("password", "secret", "token")


@dataclass(frozen=True)
class Opt:
    flag: str  # "--os"
    env: str  # "TEMPLATE_OS"
    help: str
    default: str | None = None
    secret: bool = False
    # str, path, flag (store_true), bool (1/0), choice, duration, size, int, destination,
    # fingerprints
    kind: str = "str"
    choices: tuple[str, ...] = ()
    needed_by: tuple[str, ...] = ()  # phases that cannot run without it: xcpng, s3, cloudstack

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
    Opt(
        "--packer-dir",
        "TEMPLATE_PACKER_DIR",
        "the Packer templates folder (default: the one of this checkout)",
        kind="path",
    ),
    Opt(
        "--platform",
        "TEMPLATE_PLATFORM",
        "where images boot for the checks",
        default="xcpng",
        kind="choice",
        choices=("xcpng", "local"),
    ),
    Opt(
        "--xva",
        "TEMPLATE_XVA",
        "check this existing artifact instead of building (one OS only)",
        kind="path",
    ),
    Opt("--rebuild", "TEMPLATE_REBUILD", "rebuild even when a cached image matches", kind="flag"),
    Opt(
        "--reuse-with-pending-updates",
        "TEMPLATE_REUSE_WITH_PENDING_UPDATES",
        "reuse a cached image although security updates came out since its build (re-check it "
        "as it is; by default it is rebuilt)",
        kind="flag",
    ),
    Opt(
        "--max-image-age",
        "TEMPLATE_MAX_IMAGE_AGE",
        "a cached image older than this is rebuilt (e.g. 7d, 12h, 0 = never reuse)",
        default="7d",
        kind="duration",
    ),
    Opt(
        "--keep-vm",
        "TEMPLATE_KEEP_VM",
        "keep the booted VM after the checks",
        default="never",
        kind="choice",
        choices=KEEP_VM,
    ),
    Opt(
        "--keep-vm-ttl",
        "TEMPLATE_KEEP_VM_TTL",
        "time-to-live of a kept VM (the janitor stops it afterwards)",
        default="24h",
        kind="duration",
    ),
    Opt(
        "--artifacts-dir",
        "TEMPLATE_ARTIFACTS_DIR",
        "logs, build records and kept VMs' keys",
        default="artifacts",
        kind="path",
    ),
    Opt(
        "--reports-dir",
        "TEMPLATE_REPORTS_DIR",
        "results.json and JUnit files",
        default="reports",
        kind="path",
    ),
    Opt(
        "--cache-dir",
        "TEMPLATE_CACHE_DIR",
        "built images, reused by inputs digest",
        default="~/.cache/xcpng-templates",
        kind="path",
    ),
    Opt(
        "--archive-max-age",
        "TEMPLATE_ARCHIVE_MAX_AGE",
        "package archive indexes (apt InRelease) cached longer than this are fetched again",
        default="6h",
        kind="duration",
    ),
    Opt("--packer-bin", "PACKER_BIN", "the packer executable", default="packer"),
    Opt(
        "--build-timeout",
        "TEMPLATE_BUILD_TIMEOUT",
        "per-OS build time limit",
        default="90m",
        kind="duration",
    ),
    Opt(
        "--boot-timeout",
        "TEMPLATE_BOOT_TIMEOUT",
        "time limit to reach SSH",
        default="15m",
        kind="duration",
    ),
    Opt(
        "--min-free-disk",
        "TEMPLATE_MIN_FREE_DISK",
        "free disk needed per OS",
        default="8G",
        kind="size",
    ),
    Opt("--publish", "TEMPLATE_PUBLISH", "publish passed OSes at session end", kind="flag"),
    Opt(
        "--publish-to",
        "TEMPLATE_PUBLISH_TO",
        "destination: s3://bucket/prefix or a folder",
        default="published",
        kind="destination",
    ),
    Opt(
        "--publish-require-platform",
        "TEMPLATE_PUBLISH_REQUIRE_PLATFORM",
        "platform a pass must come from to be published "
        "(default: xcpng for s3://, any for a folder)",
        kind="choice",
        choices=("xcpng", "local", "any"),
    ),
    Opt(
        "--publish-compression",
        "TEMPLATE_PUBLISH_COMPRESSION",
        "compression of the published XVA when the artifact is a raw disk or an uncompressed "
        "XVA (XCP-ng 8.2 and 8.3 import all three)",
        default="zstd",
        kind="choice",
        choices=("zstd", "gzip", "none"),
    ),
    Opt(
        "--publish-vhd",
        "TEMPLATE_PUBLISH_VHD",
        "also publish a dynamic VHD beside the XVA, for CloudStack's XenServer/XCP-ng zones: "
        "none, vhd, or bzip2 (a .vhd.bz2, which CloudStack unpacks)",
        default="none",
        kind="choice",
        choices=("none", "vhd", "bzip2"),
    ),
    Opt(
        "--signing-key",
        "TEMPLATE_SIGNING_KEY",
        "OpenSSH private key (the file's text, no passphrase) that signs each published build's "
        "SHA256SUMS and provenance (ssh-keygen -Y sign -n file); unset: published unsigned",
        secret=True,
    ),
    Opt(
        "--allowed-signers",
        "TEMPLATE_ALLOWED_SIGNERS",
        "ssh-keygen allowed-signers file: the keys `store fetch` and `store diff` accept "
        "signatures from",
        kind="path",
    ),
    Opt("--run-id", "TEMPLATE_RUN_ID", "run id carried by VM names and tags (default: generated)"),
    # the local platform's clones
    Opt(
        "--local-firmware",
        "TEMPLATE_LOCAL_FIRMWARE",
        "firmware a local clone boots with: uefi (OVMF) or bios (SeaBIOS); the image boots both",
        default="uefi",
        kind="choice",
        choices=("uefi", "bios"),
    ),
    Opt(
        "--local-datasource",
        "TEMPLATE_LOCAL_DATASOURCE",
        "how a local clone gets its seed: nocloud (a cidata disk, as Xen Orchestra offers it) or "
        "cloudstack (CloudStack's virtual router: metadata on the DHCP server's port 80, password "
        "server on 8080)",
        default="nocloud",
        kind="choice",
        choices=("nocloud", "cloudstack"),
    ),
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
        kind="int",
    ),
    Opt(
        "--xcpng-tls-verify",
        "XCPNG_TLS_VERIFY",
        "verify the pool's TLS certificate",
        default="1",
        kind="bool",
    ),
    Opt(
        "--xcpng-ca-bundle", "XCPNG_CA_BUNDLE", "CA bundle for the pool's certificate", kind="path"
    ),
    Opt(
        "--xcpng-tls-fingerprint",
        "XCPNG_TLS_FINGERPRINT",
        "SHA-256 fingerprint of the pool's certificate, checked on every connection instead of "
        "a CA and the name (comma list: one per host); for XCP-ng 8.2 addressed by IP",
        kind="fingerprints",
    ),
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
    Opt(
        "--s3-signature-version",
        "S3_SIGNATURE_VERSION",
        "request signing",
        default="s3v4",
        kind="choice",
        choices=("s3v4", "s3"),
    ),
    Opt(
        "--s3-checksum-mode",
        "S3_CHECKSUM_MODE",
        "request checksums: auto = when_supported on AWS, when_required elsewhere",
        default="auto",
        kind="choice",
        choices=("auto", "when_supported", "when_required"),
    ),
    Opt(
        "--s3-tls-verify",
        "S3_TLS_VERIFY",
        "verify the store's TLS certificate",
        default="1",
        kind="bool",
    ),
    Opt("--s3-ca-bundle", "S3_CA_BUNDLE", "CA bundle for the store's certificate", kind="path"),
    Opt(
        "--s3-multipart-chunksize",
        "S3_MULTIPART_CHUNKSIZE",
        "S3 multipart part size and threshold (min 5M)",
        default="8M",
        kind="size",
    ),
    Opt(
        "--s3-max-concurrency",
        "S3_MAX_CONCURRENCY",
        "parallel part uploads per file",
        default="10",
        kind="int",
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
    Opt(
        "--aws-session-token",
        "AWS_SESSION_TOKEN",
        "S3 session token of temporary credentials",
        secret=True,
    ),
    # CloudStack: registration of published templates (docs/cloudstack.md)
    Opt(
        "--cloudstack",
        "TEMPLATE_CLOUDSTACK",
        "register what is published in CloudStack (needs --publish-vhd)",
        kind="flag",
    ),
    Opt(
        "--cloudstack-endpoint",
        "CLOUDSTACK_ENDPOINT",
        "CloudStack API endpoint, https://host/client/api",
        needed_by=("cloudstack",),
    ),
    Opt(
        "--cloudstack-api-key",
        "CLOUDSTACK_API_KEY",
        "API key of the CloudStack account that registers",
        secret=True,
        needed_by=("cloudstack",),
    ),
    Opt(
        "--cloudstack-secret-key",
        "CLOUDSTACK_SECRET_KEY",
        "its secret key (signs every request)",
        secret=True,
        needed_by=("cloudstack",),
    ),
    Opt(
        "--cloudstack-zones",
        "CLOUDSTACK_ZONES",
        "zone names to register templates in, comma separated",
        needed_by=("cloudstack",),
    ),
    Opt(
        "--cloudstack-url-base",
        "CLOUDSTACK_URL_BASE",
        "http(s) URL the published folder is served at (default with s3://: presigned links)",
    ),
    Opt(
        "--cloudstack-url-lifetime",
        "CLOUDSTACK_URL_LIFETIME",
        "lifetime of a presigned link handed to CloudStack (S3 allows 7d at most)",
        default="24h",
        kind="duration",
    ),
    Opt(
        "--cloudstack-featured",
        "CLOUDSTACK_FEATURED",
        "make the newest build the OS's featured template (needs an admin key)",
        default="1",
        kind="bool",
    ),
    Opt(
        "--cloudstack-public",
        "CLOUDSTACK_PUBLIC",
        "register templates as public (every account sees them)",
        default="1",
        kind="bool",
    ),
    Opt(
        "--cloudstack-retention",
        "CLOUDSTACK_RETENTION",
        "registered builds kept per OS; older ones are deleted",
        default="3",
        kind="int",
    ),
    Opt(
        "--cloudstack-timeout",
        "CLOUDSTACK_TIMEOUT",
        "time every zone has to download the template and report it ready",
        default="2h",
        kind="duration",
    ),
    Opt(
        "--cloudstack-tls-verify",
        "CLOUDSTACK_TLS_VERIFY",
        "verify the endpoint's TLS certificate",
        default="1",
        kind="bool",
    ),
    Opt(
        "--cloudstack-ca-bundle",
        "CLOUDSTACK_CA_BUNDLE",
        "CA bundle for the endpoint's certificate",
        kind="path",
    ),
)

BY_DEST = {o.dest: o for o in OPTIONS}
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACKER_DIR = PACKAGE_ROOT / "packer"


def parse_duration(text: str, what: str) -> float:
    """'90m', '7d', '12h', '30s' or plain seconds, as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    t = str(text).strip().lower()
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        value = -1.0
    if value < 0:
        raise UsageError(f"{what}: {text!r} is not a duration; write e.g. 30s, 90m, 12h or 7d")
    return value


def parse_size(text: str, what: str) -> int:
    """'8G', '512M' or plain bytes, as bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = str(text).strip().lower().removesuffix("b").removesuffix("i")
    try:
        value = int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(f"{what}: {text!r} is not a size; write e.g. 8G or 512M")
    return value


@dataclass(frozen=True)
class XcpngConfig:
    """The pool the xcpng platform talks to."""

    url: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sr: str | None = None
    network: str | None = None
    ssh_port: int = 22
    tls_verify: bool = True
    ca_bundle: Path | None = None
    tls_fingerprints: tuple[str, ...] = ()


@dataclass(frozen=True)
class S3Config:
    """An S3 or S3-compatible store, as boto3 is to reach it."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    addressing_style: str = "auto"
    signature_version: str = "s3v4"
    checksum_mode: Literal["auto", "when_supported", "when_required"] = "auto"
    tls_verify: bool = True
    ca_bundle: Path | None = None
    multipart_chunksize: int = 8 << 20
    max_concurrency: int = 10
    acl: str = "private"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CloudStackConfig:
    """The CloudStack management server templates are registered with."""

    enabled: bool = False
    endpoint: str | None = None
    api_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    zones: tuple[str, ...] = ()
    url_base: str | None = None
    url_lifetime: float = 86400.0
    featured: bool = True
    public: bool = True
    retention: int = 3
    timeout: float = 7200.0
    tls_verify: bool = True
    ca_bundle: Path | None = None


@dataclass(frozen=True)
class Settings:
    """Resolved settings: command line first, then environment, then default; all parsed.

    Build one with `Settings.resolve` (pytest options and environment) or `Settings.from_env`;
    durations are seconds, sizes bytes, paths absolute."""

    os: str | None
    list_os: bool
    list_os_format: str
    packer_dir: Path
    platform: str
    xva: Path | None
    rebuild: bool
    reuse_with_pending_updates: bool
    max_image_age: float
    keep_vm: str
    keep_vm_ttl: float
    artifacts_dir: Path
    reports_dir: Path
    cache_dir: Path
    archive_max_age: float
    packer_bin: str
    build_timeout: float
    boot_timeout: float
    min_free_disk: int
    publish: bool
    publish_to: Destination
    publish_require_platform: str | None
    publish_compression: str
    publish_vhd: str
    signing_key: str | None = field(repr=False)
    allowed_signers: Path | None
    run_id: str | None
    local_firmware: str
    local_datasource: str
    xcpng: XcpngConfig
    s3: S3Config
    cloudstack: CloudStackConfig
    # secrets beyond the table: PKR_VAR_*password* and the like from the environment
    extra_secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def resolve(
        cls, cli: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Settings from command-line values (by dest) and the environment; every bad value
        is reported in one UsageError."""
        cli = cli or {}
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        problems: list[str] = []
        for o in OPTIONS:
            try:
                values[o.dest] = _resolve(o, cli.get(o.dest), env)
            except UsageError as exc:
                problems.append(str(exc))
        if problems:
            raise UsageError("; ".join(problems))
        extra = tuple(
            v
            for k, v in env.items()
            if k.startswith("PKR_VAR_") and v and any(w in k.lower() for w in SECRET_WORDS)
        )
        return cls._from_values(values, extra)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings as a command without pytest options sees them (xcpng-golden, tests)."""
        cli = {k: (str(v) if v is not None else None) for k, v in overrides.items()}
        return cls.resolve(cli, env)

    @classmethod
    def _from_values(cls, v: dict[str, Any], extra: tuple[str, ...]) -> Settings:
        xcpng = XcpngConfig(
            url=v.pop("xcpng_url"),
            username=v.pop("xcpng_username"),
            password=v.pop("xcpng_password"),
            sr=v.pop("xcpng_sr"),
            network=v.pop("xcpng_network"),
            ssh_port=v.pop("xcpng_ssh_port"),
            tls_verify=v.pop("xcpng_tls_verify"),
            ca_bundle=v.pop("xcpng_ca_bundle"),
            tls_fingerprints=v.pop("xcpng_tls_fingerprint") or (),
        )
        s3 = S3Config(
            endpoint_url=v.pop("s3_endpoint_url"),
            region=v.pop("s3_region"),
            addressing_style=v.pop("s3_addressing_style"),
            signature_version=v.pop("s3_signature_version"),
            checksum_mode=v.pop("s3_checksum_mode"),
            tls_verify=v.pop("s3_tls_verify"),
            ca_bundle=v.pop("s3_ca_bundle"),
            multipart_chunksize=v.pop("s3_multipart_chunksize"),
            max_concurrency=v.pop("s3_max_concurrency"),
            acl=v.pop("s3_acl"),
            access_key_id=v.pop("aws_access_key_id"),
            secret_access_key=v.pop("aws_secret_access_key"),
            session_token=v.pop("aws_session_token"),
        )
        zones = tuple(z.strip() for z in (v.pop("cloudstack_zones") or "").split(",") if z.strip())
        cloudstack = CloudStackConfig(
            enabled=v.pop("cloudstack"),
            endpoint=v.pop("cloudstack_endpoint"),
            api_key=v.pop("cloudstack_api_key"),
            secret_key=v.pop("cloudstack_secret_key"),
            zones=zones,
            url_base=v.pop("cloudstack_url_base"),
            url_lifetime=v.pop("cloudstack_url_lifetime"),
            featured=v.pop("cloudstack_featured"),
            public=v.pop("cloudstack_public"),
            retention=v.pop("cloudstack_retention"),
            timeout=v.pop("cloudstack_timeout"),
            tls_verify=v.pop("cloudstack_tls_verify"),
            ca_bundle=v.pop("cloudstack_ca_bundle"),
        )
        if v["packer_dir"] is None:
            v["packer_dir"] = DEFAULT_PACKER_DIR
        return cls(**v, xcpng=xcpng, s3=s3, cloudstack=cloudstack, extra_secrets=extra)

    def secrets(self) -> list[str]:
        """Every secret value in force, for the redactor."""
        values = [
            self.xcpng.password,
            self.s3.secret_access_key,
            self.s3.session_token,
            self.cloudstack.api_key,
            self.cloudstack.secret_key,
            *self.extra_secrets,
            *key_material(self.signing_key),
        ]
        return [v for v in values if v]

    def missing(self, phases: set[str]) -> list[Opt]:
        return [o for o in OPTIONS if set(o.needed_by) & phases and not self.raw(o.dest)]

    def raw(self, dest: str) -> Any:
        """The parsed value of one option, by its dest (for generic code: messages, tables)."""
        if dest.startswith("xcpng_"):
            return getattr(self.xcpng, dest.removeprefix("xcpng_"))
        if dest.startswith("s3_"):
            return getattr(self.s3, dest.removeprefix("s3_"))
        if dest.startswith("aws_"):
            return getattr(self.s3, dest.removeprefix("aws_"))
        if dest == "cloudstack":
            return self.cloudstack.enabled
        if dest.startswith("cloudstack_"):
            value = getattr(self.cloudstack, dest.removeprefix("cloudstack_"))
            return ",".join(value) if dest == "cloudstack_zones" else value
        return getattr(self, dest)


def key_material(key: str | None) -> list[str]:
    """A private key's text and each of its lines (a log that shows part of the key shows
    nothing), its BEGIN/END lines and short tail aside: the former are the same in every key,
    the latter would mask unrelated text."""
    if not key:
        return []
    lines = [ln.strip() for ln in key.splitlines()]
    return [key, key.strip(), *(ln for ln in lines if len(ln) >= 16 and not ln.startswith("-"))]


def keep_decision(policy: str, failed: bool) -> bool:
    """--keep-vm: whether a clone stays after its checks. Decided here, once, for all platforms."""
    return policy == "always" or (policy == "on-failure" and failed)


def _where(o: Opt, from_cli: bool) -> str:
    return o.flag if from_cli else o.env


def _resolve(o: Opt, cli: Any, env: Mapping[str, str]) -> Any:
    from_cli = cli not in (None, "", False)
    if from_cli and o.secret:
        raise UsageError(
            f"{o.flag} is a secret: set {o.env} in the environment instead (a command line is "
            "visible to every user of the machine and lands in shell history)"
        )
    if o.kind == "flag":
        if cli:
            return True
        raw = env.get(o.env, "").strip().lower()
        if raw not in TRUE + FALSE:
            raise UsageError(f"{o.env}={raw!r} is not a flag; write 1 or 0")
        return raw in TRUE
    if from_cli:
        text: str | None = str(cli)
    elif env.get(o.env, "") != "":
        text = env[o.env]
    else:
        text = o.default
    if text is None:
        return None
    return _parse(o, text, _where(o, from_cli))


def _parse(o: Opt, text: str, where: str) -> Any:
    if o.secret and len(text) < MIN_LENGTH:
        raise UsageError(
            f"{where} is shorter than {MIN_LENGTH} characters: it could not be masked in logs "
            "without shredding them; use a real secret"
        )
    if o.kind == "choice" and text not in o.choices:
        raise UsageError(f"{where}={text!r} is not valid; choose one of {', '.join(o.choices)}")
    if o.kind == "duration":
        return parse_duration(text, where)
    if o.kind == "size":
        return parse_size(text, where)
    if o.kind == "int":
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 1:
            raise UsageError(f"{where}={text!r} is not a positive whole number")
        return value
    if o.kind == "bool":
        low = text.strip().lower()
        if low not in TRUE + FALSE:
            raise UsageError(f"{where}={text!r} is not a yes/no value; write 1 or 0")
        return low in TRUE
    if o.kind == "path":
        return Path(os.path.expanduser(text)).absolute()
    if o.kind == "destination":
        return Destination.parse(text, where)
    if o.kind == "fingerprints":
        return parse_fingerprints(text, where)
    return text


def parse_fingerprints(text: str, where: str) -> tuple[str, ...]:
    """SHA-256 certificate fingerprints ('AA:BB:...' as openssl prints them, or 64 hex digits),
    comma-separated, in openssl's form."""
    out = []
    for item in (t.strip() for t in text.split(",")):
        digits = item.removeprefix("sha256:").removeprefix("SHA256:").replace(":", "")
        if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise UsageError(
                f"{where}: {item!r} is not a SHA-256 fingerprint; write its 64 hex digits, with "
                "or without colons, as `openssl x509 -noout -fingerprint -sha256` prints them"
            )
        digits = digits.upper()
        out.append(":".join(digits[i : i + 2] for i in range(0, 64, 2)))
    return tuple(out)


def markdown_table() -> str:
    """The configuration reference's table (tools/docgen.py; tests/unit/test_docgen.py)."""
    rows = ["| option | environment | default | what |", "|---|---|---|---|"]
    for o in OPTIONS:
        default = "" if o.default is None else f"`{o.default}`"
        what = o.help + (" (secret: environment only)" if o.secret else "")
        rows.append(f"| `{o.flag}` | `{o.env}` | {default} | {what} |")
    return "\n".join(rows)
