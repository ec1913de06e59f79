"""EL family only: SELinux, the system crypto policy, firewalld and NetworkManager's state.

Read from the artifact offline, like the hygiene checks: what a clone boots with is in these
files (the SELinux mode and labels, the crypto-policies back-end sshd includes, firewalld's
zone, NetworkManager's profiles), and reading them needs no boot. The harness runs these for
the `el` family only (validations/expected.py); each is shown failing on an EL-shaped tree
with its one defect in tests/unit/test_el_trees.py.
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET

from core.checks import check
from validations import selinux, sshd
from validations.conftext import uncommented
from validations.inode import Stat
from validations.offline import OfflineImage

SELINUX_CONFIG = "/etc/selinux/config"
# Where the kickstart's %post and the provisioning scripts write on EL. Every file under these
# paths must carry the label the image's policy wants; packer/scripts/90-seal.sh relabels
# exactly this list (tests/unit/test_el_scripts.py keeps the two equal).
LABELLED = (
    "/etc/ssh",
    "/etc/crypto-policies",
    "/etc/sysconfig/sshd",
    "/etc/sysctl.d",
    "/etc/selinux/config",
    "/etc/firewalld",
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/cloud",
    "/etc/systemd/system",
    "/etc/machine-id",
    "/etc/hostname",
    "/etc/NetworkManager",
    "/etc/yum.repos.d",
    "/etc/default/grub",
    "/boot/loader/entries",
    "/var/lib/dbus",
    "/root",
)
MAX_LISTED = 25

# Kernel command-line sources a clone's boot reads (BLS entries, grubby's defaults, EL8's grubenv).
KERNEL_CMDLINES = ("/etc/kernel/cmdline", "/etc/default/grub", "/boot/grub2/grubenv")
BLS_DIR = "/boot/loader/entries"
SELINUX_OFF_ARGS = ("selinux=0", "enforcing=0")

CRYPTO_CONFIG = "/etc/crypto-policies/config"
CRYPTO_STATE = "/etc/crypto-policies/state/current"
SSHD_BACKEND = "/etc/crypto-policies/back-ends/opensshserver.config"
POLICY_MODULE_DIRS = (
    "/etc/crypto-policies/policies/modules",
    "/usr/share/crypto-policies/policies/modules",
)
POLICY_DIRS = ("/etc/crypto-policies/policies", "/usr/share/crypto-policies/policies")
# Shipped sub-policies that weaken the base policy (crypto-policies' policies/modules).
WEAKENING_MODULES = frozenset({"SHA1", "AD-SUPPORT", "AD-SUPPORT-LEGACY", "NO-ENFORCE-EMS"})
# sshd keywords the crypto-policies back-end sets; on EL no sshd file may set them itself.
POLICY_KEYWORDS = frozenset(
    {
        "ciphers",
        "macs",
        "kexalgorithms",
        "hostkeyalgorithms",
        "pubkeyacceptedalgorithms",
        "pubkeyacceptedkeytypes",
        "hostbasedacceptedalgorithms",
        "hostbasedacceptedkeytypes",
        "casignaturealgorithms",
        "gssapikexalgorithms",
        "requiredrsasize",
    }
)

# The documented firewalld state (docs/fleet/el.md): enabled, default zone public, which
# lets in SSH (and DHCPv6 replies), nothing else; no second firewall service beside it.
FIREWALLD_UNIT = "firewalld.service"
OTHER_FIREWALLS = ("iptables.service", "ip6tables.service", "nftables.service")
ALLOWED_SERVICES = frozenset({"ssh", "dhcpv6-client"})
DEFAULT_ZONE = "public"
UNIT_DIRS = ("/usr/lib/systemd/system", "/etc/systemd/system")
WANTS = "/etc/systemd/system/multi-user.target.wants"

NM_PROFILES = "/etc/NetworkManager/system-connections"
IFCFG_DIR = "/etc/sysconfig/network-scripts"
NM_SECRET = "/var/lib/NetworkManager/secret_key"


def _key_values(text: str) -> dict[str, str]:
    """KEY=value lines (shell-style quoting), last one wins, as the files' readers do."""
    out = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value]
        out[key.strip()] = " ".join(words)
    return out


def _listed(items: list[str]) -> str:
    more = f"\n... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return "\n".join(items[:MAX_LISTED]) + more


def selinux_policy(image: OfflineImage) -> tuple[str, str]:
    """(SELINUX mode, SELINUXTYPE) from /etc/selinux/config."""
    assert image.exists(SELINUX_CONFIG), f"{SELINUX_CONFIG} is missing: SELinux is not installed"
    cfg = _key_values(image.read_text(SELINUX_CONFIG))
    return cfg.get("SELINUX", ""), cfg.get("SELINUXTYPE", "targeted")


def kernel_cmdlines(image: OfflineImage) -> dict[str, str]:
    """Every kernel command line the boot loader may use: file (and entry) -> arguments."""
    found: dict[str, str] = {}
    if image.exists(BLS_DIR):
        for name in image.listdir(BLS_DIR):
            if name.endswith(".conf"):
                for line in image.read_text(f"{BLS_DIR}/{name}").splitlines():
                    if line.startswith("options"):
                        found[f"{BLS_DIR}/{name}"] = line.split(None, 1)[1] if " " in line else ""
    for path in KERNEL_CMDLINES:
        if not image.exists(path):
            continue
        text = image.read_text(path)
        if path.endswith("cmdline"):
            found[path] = text.strip()
            continue
        values = _key_values(text)
        for key in ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT", "kernelopts"):
            if key in values:
                found[f"{path} {key}"] = values[key]
    return found


@check(
    "el-selinux-enforcing",
    "SELinux enforcing on every boot of a clone: config, policy present, no kernel argument off",
)
def test_selinux_enforcing(image: OfflineImage) -> None:
    mode, policy = selinux_policy(image)
    bad = []
    if mode != "enforcing":
        bad.append(f"{SELINUX_CONFIG}: SELINUX={mode or '(unset)'}, want enforcing")
    policy_dir = f"/etc/selinux/{policy}/policy"
    if not image.exists(policy_dir) or not any(
        n.startswith("policy.") for n in image.listdir(policy_dir)
    ):
        bad.append(f"SELINUXTYPE={policy}: no compiled policy in {policy_dir}")
    cmdlines = kernel_cmdlines(image)
    assert cmdlines, "no kernel command line found (BLS entries, /etc/kernel/cmdline, grub)"
    for where, args in sorted(cmdlines.items()):
        off = [a for a in args.split() if a in SELINUX_OFF_ARGS]
        if off:
            bad.append(f"{where}: {' '.join(off)} turns SELinux off or permissive")
    assert not bad, "\n".join(bad)


@check(
    "el-selinux-labels",
    "every file the build wrote carries the label its SELinux policy wants; no relabel pending",
)
def test_selinux_labels(image: OfflineImage) -> None:
    _, policy = selinux_policy(image)
    rules = selinux.load_file_contexts(image, policy)
    bad: list[str] = []
    checked = 0
    for top in LABELLED:
        if not image.lexists(top):
            continue
        entries: list[tuple[str, Stat]] = [(top, image.lstat(top))]
        if entries[0][1].is_dir:
            entries += list(image.walk(top))
        for path, st in entries:
            checked += 1
            problem = selinux.mislabel(rules, path, st, selinux.label(image, path))
            if problem:
                bad.append(problem)
    assert checked >= len(LABELLED) // 2, (
        f"only {checked} of the labelled places exist: is this an EL root filesystem?"
    )
    if image.lexists("/.autorelabel"):
        bad.append("/.autorelabel: every clone would relabel its whole disk and reboot")
    assert not bad, f"{bad[0]}" + (
        f"\n{len(bad)} in all, not labelled as the policy wants:\n" + _listed(bad)
        if len(bad) > 1
        else ""
    )


def crypto_policy(image: OfflineImage) -> str:
    """The configured policy string, e.g. DEFAULT:TEMPLATE-SSH."""
    assert image.exists(CRYPTO_CONFIG), f"{CRYPTO_CONFIG} is missing: crypto-policies not installed"
    lines = [ln for ln in map(uncommented, image.read_text(CRYPTO_CONFIG).splitlines()) if ln]
    assert lines, f"{CRYPTO_CONFIG} names no policy"
    return lines[0]


def sshd_backend(image: OfflineImage) -> dict[str, str]:
    """The keyword -> value lines of the OpenSSH server back-end of the applied policy."""
    assert image.exists(SSHD_BACKEND), f"{SSHD_BACKEND} is missing"
    out: dict[str, str] = {}
    for raw in image.read_text(SSHD_BACKEND).splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key.lower(), value.strip())
    return out


@check(
    "el-crypto-policy",
    "system crypto policy not LEGACY nor weakened, applied, and sshd's back-end strong",
)
def test_crypto_policy(image: OfflineImage) -> None:
    policy = crypto_policy(image)
    base, *modules = policy.split(":")
    bad = []
    if base.upper() == "LEGACY":
        bad.append(f"{CRYPTO_CONFIG}: base policy {base}")
    elif not any(image.exists(f"{d}/{base}.pol") for d in POLICY_DIRS):
        bad.append(f"{CRYPTO_CONFIG}: no policy file {base}.pol")
    for module in modules:
        if module.upper() in WEAKENING_MODULES:
            bad.append(f"{CRYPTO_CONFIG}: sub-policy {module} weakens {base}")
        if not any(image.exists(f"{d}/{module}.pmod") for d in POLICY_MODULE_DIRS):
            bad.append(f"{CRYPTO_CONFIG}: sub-policy {module} has no {module}.pmod")
    applied = image.read_text(CRYPTO_STATE).strip() if image.exists(CRYPTO_STATE) else ""
    if applied != policy:
        bad.append(
            f"{CRYPTO_STATE} says {applied or '(nothing)'} but {CRYPTO_CONFIG} says {policy}: "
            "the back-ends were not regenerated (run update-crypto-policies --set)"
        )
    backend = sshd_backend(image)
    for key, strong in (
        ("ciphers", sshd.STRONG_CIPHERS),
        ("kexalgorithms", sshd.STRONG_KEX),
        ("macs", sshd.STRONG_MACS),
    ):
        offered = sshd.algorithms(backend.get(key, ""))
        if not offered:
            bad.append(f"{SSHD_BACKEND}: sets no {key}")
        weak = [a for a in offered if a not in strong]
        if weak:
            bad.append(f"{SSHD_BACKEND}: {key} allows {', '.join(weak)}")
    assert not bad, "\n".join(bad)


def _sshd_files(image: OfflineImage) -> list[str]:
    files = ["/etc/ssh/sshd_config"]
    if image.exists("/etc/ssh/sshd_config.d"):
        files += [
            f"/etc/ssh/sshd_config.d/{n}"
            for n in image.listdir("/etc/ssh/sshd_config.d")
            if n.endswith(".conf")
        ]
    return files


@check(
    "el-ssh-crypto-from-policy",
    "sshd takes its algorithms from the crypto policy: no sshd file or option overrides it",
)
def test_ssh_crypto_from_policy(image: OfflineImage) -> None:
    bad = []
    includes_backend = False
    for path in _sshd_files(image):
        for number, raw in enumerate(image.read_text(path).splitlines(), start=1):
            words = uncommented(raw).split()
            if not words:
                continue
            key = words[0].lower()
            if key in POLICY_KEYWORDS:
                bad.append(f"{path}:{number}: {raw.strip()} overrides the crypto policy")
            if key == "include" and SSHD_BACKEND in words[1:]:
                includes_backend = True
    if not includes_backend:
        bad.append(f"no sshd file includes {SSHD_BACKEND} (50-redhat.conf does on EL)")
    main = image.read_text("/etc/ssh/sshd_config")
    if not re.search(r"(?im)^\s*Include\s+/etc/ssh/sshd_config\.d/\*\.conf", main):
        bad.append("/etc/ssh/sshd_config does not include sshd_config.d/*.conf")
    if image.exists("/etc/sysconfig/sshd"):
        for raw in image.read_text("/etc/sysconfig/sshd").splitlines():
            line = raw.strip()
            if line.startswith("CRYPTO_POLICY="):
                bad.append(f"/etc/sysconfig/sshd: {line} opts sshd out of the crypto policy")
            if line.startswith("OPTIONS=") and re.search(r"(^|\s|\")-o", line):
                bad.append(f"/etc/sysconfig/sshd: {line} passes -o options to sshd")
    assert not bad, "\n".join(bad)


def _unit_state(image: OfflineImage, unit: str) -> str:
    """installed/enabled/masked/absent, from the unit files and the multi-user wants."""
    override = f"/etc/systemd/system/{unit}"
    is_link = image.lexists(override) and image.lstat(override).is_symlink
    if is_link and image.readlink(override) == "/dev/null":
        return "masked"
    if not any(image.exists(f"{d}/{unit}") for d in UNIT_DIRS):
        return "absent"
    return "enabled" if image.lexists(f"{WANTS}/{unit}") else "installed"


def firewalld_zone(image: OfflineImage, zone: str) -> tuple[str, ET.Element]:
    """(path, parsed XML) of the zone definition firewalld uses: /etc overrides /usr/lib."""
    for d in ("/etc/firewalld/zones", "/usr/lib/firewalld/zones"):
        path = f"{d}/{zone}.xml"
        if image.exists(path):
            try:
                return path, ET.fromstring(image.read_bytes(path))
            except ET.ParseError as exc:
                raise AssertionError(f"{path} is not valid XML: {exc}") from exc
    raise AssertionError(f"zone {zone} is defined nowhere (/etc or /usr/lib/firewalld/zones)")


@check("el-firewalld", "firewalld enabled, default zone public letting in SSH only, no rival")
def test_firewalld(image: OfflineImage) -> None:
    bad = []
    state = _unit_state(image, FIREWALLD_UNIT)
    if state != "enabled":
        bad.append(f"{FIREWALLD_UNIT} is {state}, want enabled")
    for unit in OTHER_FIREWALLS:
        if _unit_state(image, unit) == "enabled":
            bad.append(f"{unit} is enabled beside firewalld (two rule sets fight)")
    conf = "/etc/firewalld/firewalld.conf"
    settings = _key_values(image.read_text(conf)) if image.exists(conf) else {}
    default = settings.get("DefaultZone", DEFAULT_ZONE)
    if default != DEFAULT_ZONE:
        bad.append(f"{conf}: DefaultZone={default}, want {DEFAULT_ZONE}")
    path, zone = firewalld_zone(image, DEFAULT_ZONE)
    services = {s.get("name", "") for s in zone.findall("service")}
    if "ssh" not in services:
        bad.append(f"{path}: SSH is not allowed: clones would be unreachable")
    extra = sorted(services - ALLOWED_SERVICES)
    if extra:
        bad.append(f"{path}: services {', '.join(extra)} allowed beyond SSH")
    for tag in ("port", "forward-port", "source-port", "protocol", "rule", "masquerade"):
        for element in zone.findall(tag):
            bad.append(f"{path}: <{tag} {' '.join(f'{k}={v}' for k, v in element.items())}>")
    target = zone.get("target", "default")
    if target.upper() == "ACCEPT":
        bad.append(f"{path}: target ACCEPT lets everything in")
    assert not bad, "\n".join(bad)


@check(
    "el-network-profiles",
    "no NetworkManager profile or NM secret key of the build VM: each clone makes its own",
)
def test_network_profiles(image: OfflineImage) -> None:
    assert image.exists("/etc/NetworkManager"), "/etc/NetworkManager missing: is this EL?"
    found = []
    if image.exists(NM_PROFILES):
        found += [f"{NM_PROFILES}/{n}" for n in image.listdir(NM_PROFILES)]
    if image.exists(IFCFG_DIR):
        found += [
            f"{IFCFG_DIR}/{n}"
            for n in image.listdir(IFCFG_DIR)
            if n.startswith("ifcfg-") and n != "ifcfg-lo"
        ]
    if image.lexists(NM_SECRET):
        found.append(f"{NM_SECRET} (seeds every clone's stable IPv6 and DHCP identifiers)")
    assert not found, "build VM network state: " + ", ".join(found)
