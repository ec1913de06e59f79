"""cloud-init: present and enabled in the image, looking for NoCloud, ConfigDrive and CloudStack
(without ds-identify switching it off where only CloudStack's virtual router serves the data),
a clean first boot, and this VM's seed applied through the datasource the boot offered (which also
proves the checks reached the right VM)."""

from __future__ import annotations

import json
import re
from typing import Any

from core.checks import check
from core.model import BootedVM
from validations import cloudcfg
from validations.conftext import uncommented
from validations.offline import OfflineImage
from validations.remote import ask

REQUIRED_DATASOURCES = ("NoCloud", "ConfigDrive", "CloudStack")
DS_IDENTIFY_CFG = "/etc/cloud/ds-identify.cfg"
# ds-identify's default: nothing recognised means cloud-init disabled. It recognises CloudStack
# only by a DMI product name "CloudStack*", which XenServer/XCP-ng hosts do not set.
DS_IDENTIFY_DEFAULT = "search,found=all,maybe=none,notfound=disabled"
CLOUDSTACK_MAX_WAIT_LIMIT = 60  # seconds a boot with no datasource may spend on the router
CLOUDSTACK_DEFAULT_MAX_WAIT = 120  # DataSourceCloudStack.url_max_wait
# cloud-init 25.2 asks the password server with its own HTTP client; older ones run wget
WGET_UNTIL = (25, 2)
VERSION_FILES = (
    "/usr/lib/python3/dist-packages/cloudinit/version.py",  # Debian, Ubuntu
    "/usr/lib/python3.9/site-packages/cloudinit/version.py",  # EL 9
    "/usr/lib/python3.12/site-packages/cloudinit/version.py",  # EL 10
)
# The units that start cloud-init: 22.x-23.x (first) and 24.x (second).
UNITS = (("cloud-init.service", "cloud-init-local.service"), ("cloud-init-main.service",))
WANTS_DIRS = (
    "/etc/systemd/system/cloud-init.target.wants",
    "/etc/systemd/system/multi-user.target.wants",
)
LOG_PROBLEM = re.compile(
    r"Traceback \(most recent call last\)|\[(ERROR|CRITICAL)\]| - (ERROR|CRITICAL)\b"
)
ALLOWED_LOG_LINES: tuple[re.Pattern[str], ...] = ()  # none yet: add with a reason


@check(
    "cloud-init-installed", "cloud-init present and enabled in the image: clones get their identity"
)
def test_installed(image: OfflineImage) -> None:
    assert image.exists("/usr/bin/cloud-init"), "/usr/bin/cloud-init is missing from the image"
    assert not image.exists("/etc/cloud/cloud-init.disabled"), (
        "/etc/cloud/cloud-init.disabled exists"
    )
    wanted = {n for d in WANTS_DIRS if image.exists(d) for n in image.listdir(d)}
    assert any(all(u in wanted for u in group) for group in UNITS), (
        f"cloud-init units are not enabled (wants: {sorted(n for n in wanted if 'cloud' in n)})"
    )


def ds_identify_policy(text: str) -> str:
    """The `policy:` of ds-identify.cfg (as its own parser reads it: the last one wins), or the
    default."""
    policy = DS_IDENTIFY_DEFAULT
    for line in text.splitlines():
        key, sep, value = uncommented(line).partition(":")
        if sep and key.strip() == "policy" and value.strip():
            policy = value.strip()
    return policy


def cloud_init_version(image: OfflineImage) -> tuple[int, ...] | None:
    for path in VERSION_FILES:
        if image.exists(path):
            found = re.search(r'__VERSION__\s*=\s*"([0-9.]+)"', image.read_text(path))
            if found:
                return tuple(int(p) for p in found.group(1).split("."))
    return None


def datasource_problems(cfg: dict[str, Any], policy: str, has_wget: bool,
                        version: tuple[int, ...] | None) -> list[str]:  # fmt: skip
    """Why a clone would not find its data on XCP-ng, under CloudStack or with a seed."""
    sources = cfg.get("datasource_list")
    if not isinstance(sources, list) or not sources:
        return [f"datasource_list is not set: {sources!r}"]
    bad = []
    missing = [d for d in REQUIRED_DATASOURCES if d not in sources]
    if missing:
        bad.append(f"datasource_list {sources} lacks {', '.join(missing)}")
    options = dict(p.partition("=")[::2] for p in policy.split(",")[1:])
    if sources != ["CloudStack"] and options.get("notfound") != "enabled":
        bad.append(
            f"ds-identify policy {policy!r} disables cloud-init when no datasource is found on a "
            "local disk: on XCP-ng under CloudStack (no config drive, DMI not 'CloudStack') the "
            f"virtual router's data is never read; set 'policy: search,found=all,maybe=all,"
            f"notfound=enabled' in {DS_IDENTIFY_CFG}"
        )
    ds_cfg = (cfg.get("datasource") or {}).get("CloudStack") or {}
    max_wait = ds_cfg.get("max_wait", CLOUDSTACK_DEFAULT_MAX_WAIT)
    try:
        waits = float(max_wait)
    except (TypeError, ValueError):
        waits = float(CLOUDSTACK_DEFAULT_MAX_WAIT)
    if "CloudStack" in sources and waits > CLOUDSTACK_MAX_WAIT_LIMIT:
        bad.append(
            f"datasource.CloudStack.max_wait is {max_wait!r}: a boot with no datasource waits that "
            f"long for a virtual router; keep it at most {CLOUDSTACK_MAX_WAIT_LIMIT} s"
        )
    if "CloudStack" in sources and version is not None and version < WGET_UNTIL and not has_wget:
        bad.append(
            f"cloud-init {'.'.join(map(str, version))} asks CloudStack's password server with "
            "wget, which the image lacks: every CloudStack boot would log a traceback"
        )
    return bad


@check(
    "cloud-init-datasources",
    "datasource_list has NoCloud, ConfigDrive and CloudStack (XCP-ng, local seeds, CloudStack's "
    "config drive and virtual router), ds-identify does not disable cloud-init where only the "
    "router serves the data, and the router is awaited a bounded time",
)
def test_datasources(image: OfflineImage) -> None:
    cfg = cloudcfg.merged(image.read_text, image.listdir)
    policy = ds_identify_policy(
        image.read_text(DS_IDENTIFY_CFG) if image.exists(DS_IDENTIFY_CFG) else ""
    )
    has_wget = image.exists("/usr/bin/wget")
    bad = datasource_problems(cfg, policy, has_wget, cloud_init_version(image))
    assert not bad, "\n".join(bad)


# cloud-init's own record of the boot, read as files (its `status` command is a Python start of
# several seconds under TCG). result.json appears when the last stage ends, after that stage's
# status.json: it is awaited first, then everything is read (an `ask`'s reads run side by side).
FINISHED = (
    "i=0; while [ ! -f /run/cloud-init/result.json ] && [ $i -lt 600 ]; do "
    "sleep 0.5; i=$((i + 1)); done; [ -f /run/cloud-init/result.json ]"
)
CLEAN_BOOT = {
    "result": "cat /run/cloud-init/result.json",
    "status": "cat /run/cloud-init/status.json",
    "log": "cat /var/log/cloud-init.log",
    # what ds-identify chose before any network (a seed on a disk: that one alone)
    "ds_identify": "cat /run/cloud-init/cloud.cfg 2>/dev/null; true",
}
STAGES = ("init-local", "init", "modules-config", "modules-final")


def stage_seconds(status: dict[str, Any]) -> dict[str, float]:
    """Each stage's duration from status.json, and the total from init-local to the end: what a
    datasource search costs shows in init-local and init."""
    out: dict[str, float] = {}
    for name in STAGES:
        stage = status.get(name) or {}
        if isinstance(stage, dict) and stage.get("start") and stage.get("finished"):
            out[name] = round(float(stage["finished"]) - float(stage["start"]), 2)
    first, last = status.get(STAGES[0]) or {}, status.get(STAGES[-1]) or {}
    if first.get("start") and last.get("finished"):
        out["total"] = round(float(last["finished"]) - float(first["start"]), 2)
    return out


@check("cloud-init-clean-boot", "cloud-init finished the first boot without errors or tracebacks")
def test_clean_boot(host: Any, record_property: Any) -> None:
    finished = ask(host, {"finished": FINISHED})["finished"]
    answers = ask(host, CLEAN_BOOT)
    assert finished.rc == 0 and answers["result"].rc == 0, (
        "cloud-init did not finish the boot within 5 minutes (no /run/cloud-init/result.json; "
        f"status.json: {answers['status'].stdout.strip()[:300] or 'missing'})"
    )
    result = json.loads(answers["result"].stdout)
    assert result["v1"]["errors"] == [], f"result.json errors: {result['v1']['errors']}"
    status = json.loads(answers["status"].stdout)["v1"]
    timing = {
        "seconds": stage_seconds(status),
        "datasource": result["v1"].get("datasource"),
        "ds_identify": answers["ds_identify"].stdout.strip(),
    }
    record_property("cloud_init_timing", json.dumps(timing))
    assert status.get("stage") is None, f"cloud-init is still in stage {status['stage']}"
    stage_errors = {
        name: stage.get("errors") or stage.get("recoverable_errors")
        for name, stage in status.items()
        if isinstance(stage, dict) and (stage.get("errors") or stage.get("recoverable_errors"))
    }
    assert not stage_errors, f"status.json stage errors: {stage_errors}"
    log_text = answers["log"].stdout
    assert log_text.strip(), "/var/log/cloud-init.log is empty"
    problems = [
        line
        for line in log_text.splitlines()
        if LOG_PROBLEM.search(line) and not any(p.search(line) for p in ALLOWED_LOG_LINES)
    ]
    assert not problems, "cloud-init.log:\n" + "\n".join(problems[:20])


def hosts_names(text: str) -> set[str]:
    """Every name /etc/hosts maps to an address (comments and blank lines ignored)."""
    names: set[str] = set()
    for line in text.splitlines():
        fields = uncommented(line).split()
        names.update(fields[1:])
    return names


@check(
    "cloud-init-seed-applied",
    "this VM's seed took effect through the datasource the boot offered (NoCloud, or CloudStack's "
    "virtual router or config drive): its instance id, hostname (also in /etc/hosts, so it "
    "resolves without DNS) and user-data marker",
)
def test_seed_applied(host: Any, vm: BootedVM) -> None:
    offered = str(vm.facts.get("datasource") or "NoCloud")
    a = {
        name: answer.stdout
        for name, answer in ask(
            host,
            {
                "instance": "cat /var/lib/cloud/data/instance-id",
                "hostname": "hostname",
                "hosts": "cat /etc/hosts",
                "marker": "cat /var/lib/template-checks/marker || echo '(no marker file)'",
                "result": "cat /run/cloud-init/result.json || echo '{}'",
            },
        ).items()
    }
    try:
        used = str(json.loads(a["result"]).get("v1", {}).get("datasource") or "")
    except ValueError:
        used = ""
    assert used.startswith(f"DataSource{offered}"), (
        f"cloud-init took its data from {used or 'no datasource'!r}; this boot offered it only "
        f"through {offered}"
    )
    instance = a["instance"].strip()
    assert instance == vm.instance_id, f"instance id {instance!r}, seed says {vm.instance_id!r}"
    hostname = a["hostname"].strip()
    assert hostname == vm.hostname, f"hostname {hostname!r}, seed says {vm.hostname!r}"
    # cloud-init writes it there with manage_etc_hosts; without it a clone's name resolves only
    # where DNS or nss-myhostname knows it, and sudo warns "unable to resolve host" otherwise
    assert hostname in hosts_names(a["hosts"]), (
        f"/etc/hosts does not name this clone ({hostname!r}): set manage_etc_hosts: true in the "
        "image's cloud-init configuration"
    )
    text = a["marker"].strip()
    assert text == vm.marker, f"user-data marker {text!r}, seed says {vm.marker!r}"


_TRUE = ("true", "1", "on", "yes")
_FALSE = ("false", "0", "off", "no")
# Keys that bake a credential into every clone, at the top level and in a user entry.
# ssh_keys: host keys the ssh module writes on every clone (the same keys everywhere).
BAKED_TOP = ("password", "passwd", "chpasswd", "ssh_authorized_keys", "ssh_import_id", "ssh_keys")
BAKED_USER = ("passwd", "hashed_passwd", "plain_text_passwd", "ssh_authorized_keys",
              "ssh_import_id")  # fmt: skip


def _is(value: Any, words: tuple[str, ...], boolean: bool) -> bool:
    """cloud-init's util.is_true / is_false."""
    return value is boolean or (isinstance(value, str) and value.strip().lower() in words)


def _chpasswd_sets_passwords(value: Any) -> bool:
    if not isinstance(value, dict):
        return bool(value)
    return bool(value.get("list") or value.get("users"))


def security_problems(cfg: dict[str, Any]) -> list[str]:
    """What in the merged system configuration weakens every clone (defaults as cloud-init's:
    disable_root and ssh_deletekeys are on when unset, ssh_pwauth leaves sshd alone)."""
    bad = []
    if not _is(cfg.get("ssh_pwauth"), _FALSE, False):
        bad.append(f"ssh_pwauth is {cfg.get('ssh_pwauth')!r}, want false")
    for key in ("disable_root", "ssh_deletekeys"):
        if not _is(cfg.get(key, True), _TRUE, True):
            bad.append(f"{key} is {cfg.get(key)!r}, want true")
    opts = cfg.get("disable_root_opts")
    if opts is not None and "command=" not in str(opts):
        # disable_root works by these options on root's copy of the keys: without a forced
        # command, root logs in with the default user's key wherever sshd permits keys.
        bad.append(
            f"disable_root_opts is {str(opts)[:80]!r}: without a command= root's keys log in"
        )
    for key in BAKED_TOP:
        value = cfg.get(key)
        if value and (key != "chpasswd" or _chpasswd_sets_passwords(value)):
            bad.append(f"baked {key}: every clone gets it")
    system_info = cfg.get("system_info") if isinstance(cfg.get("system_info"), dict) else {}
    users: list[tuple[str, Any]] = [("default_user", (system_info or {}).get("default_user"))]
    for entry in cfg.get("users") or []:
        if isinstance(entry, dict):
            users.append((f"users[{entry.get('name', '?')}]", entry))
    for label, user in users:
        if not isinstance(user, dict):
            continue
        if not _is(user.get("lock_passwd", True), _TRUE, True):
            bad.append(f"{label}: lock_passwd is {user.get('lock_passwd')!r}, want true")
        bad += [f"{label}: baked {k}" for k in BAKED_USER if user.get(k)]
    return bad


@check(
    "cloud-init-security",
    "cloud-init's merged configuration keeps clones locked: ssh_pwauth false, disable_root "
    "with its forced command, ssh_deletekeys, default user locked, no baked password, key or "
    "host key",
)
def test_security(image: OfflineImage) -> None:
    cfg = cloudcfg.merged(image.read_text, image.listdir)
    assert cfg, (
        f"cloud-init's configuration is empty ({', '.join(cloudcfg.sources(image.listdir))})"
    )
    bad = security_problems(cfg)
    assert not bad, (
        f"cloud-init's merged configuration ({', '.join(cloudcfg.sources(image.listdir))}):\n"
        + "\n".join(bad)
    )
