"""System hardening on the booted clone: sysctl, account files, legacy services, passwords."""

from __future__ import annotations

import re
from typing import Any

from core.checks import check
from core.model import BootedVM, TemplateSpec
from validations import console, journal, kernel_switches, sysctl, systemd
from validations.conftext import uncommented
from validations.offline import OfflineImage
from validations.remote import ask

MIB = 1024 * 1024
MAX_TAIL_BYTES = (
    16 * MIB
)  # a grown root partition ends this close to the disk's end (GPT, alignment)

LEGACY_PACKAGES = {
    "debian": (
        "telnetd",
        "inetutils-telnetd",
        "telnetd-ssl",
        "rsh-server",
        "rsh-redone-server",
        "tftpd",
        "tftpd-hpa",
        "atftpd",
        "xinetd",
        "openbsd-inetd",
        "inetutils-inetd",
        "nis",
        "talkd",
    ),
    "el": ("telnet-server", "rsh-server", "tftp-server", "xinetd", "ypserv", "talk-server"),
}
# telnet, tftp, rexec, rlogin, rsh/syslog, talk, ntalk
LEGACY_PORTS = {"tcp": {23, 512, 513, 514}, "udp": {69, 517, 518}}


def template_sysctl(spec: TemplateSpec) -> tuple[dict[str, str], str]:
    """What the template's hardening promises: the keys of packer/files/sysctl.d/*.conf (the
    files 30-system-hardening.sh installs), read from this checkout, not from the image."""
    folder = next(iter(spec.templates.values())).path.parent / "files" / "sysctl.d"
    files = sorted(folder.glob("*.conf"))
    assert files, f"no sysctl.d files in {folder}: the template promises no kernel parameter"
    promised: dict[str, str] = {}
    for f in files:
        promised |= sysctl.parse_conf(f.read_text())
    return promised, ", ".join(f"packer/files/sysctl.d/{f.name}" for f in files)


@check(
    "system-sysctl",
    "every kernel parameter the template's hardening sets holds on the clone, with the "
    "kernel's rules for per-interface keys (redirects, source routes, rp_filter, forwarding, "
    "IPv4 and IPv6) on every interface; kernel defaults it does not name (mmap_min_addr, "
    "perf_event_paranoid, unprivileged_bpf_disabled) not weakened; no boot switch that turns "
    "a kernel protection off (CPU mitigations, KASLR, SMEP/SMAP, AppArmor/SELinux, audit), now "
    "or at the next boot",
)
def test_sysctl(host: Any, spec: TemplateSpec, image: OfflineImage) -> None:
    promised, source = template_sysctl(spec)
    answers = ask(host, {"a": "sysctl -a", "cmdline": "cat /proc/cmdline"})
    values = sysctl.parse_sysctl_a(answers["a"].stdout)
    bad = sysctl.problems(values, promised, source)
    judge = kernel_switches.weakening_findings
    bad += judge(answers["cmdline"].stdout, "the running kernel (/proc/cmdline)", False)
    bad += console.boot_config_findings(image, judge)
    assert not bad, "\n".join(bad)


@check(
    "system-file-modes",
    "account databases root-owned, shadow files not readable by users, root's home closed to "
    "everyone but root, no rhosts",
)
def test_file_modes(host: Any, spec: TemplateSpec) -> None:
    trust_files = ("/etc/hosts.equiv", "/etc/shosts.equiv", "/root/.rhosts", "/root/.netrc")
    accounts = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow")
    found = ask(
        host,
        {
            "stat": "stat -c '%n %U %G %a' " + " ".join(accounts) + " /root 2>/dev/null; true",
            "trust": "ls -d " + " ".join(trust_files) + " 2>/dev/null; true",
        },
    )
    stats: dict[str, tuple[str, str, int]] = {}
    for line in found["stat"].stdout.splitlines():
        name, owner, owner_group, octal = line.split()
        stats[name] = (owner, owner_group, int(octal, 8))
    bad = []
    for path in ("/etc/passwd", "/etc/group"):
        assert path in stats, f"{path} is missing"
        user, group, mode = stats[path]
        if user != "root" or mode & 0o022 or mode & 0o444 != 0o444:
            bad.append(f"{path}: {user}:{group} {mode:o}, want root 0644")
    shadow_group = "shadow" if spec.family == "debian" else "root"
    for path in ("/etc/shadow", "/etc/gshadow"):
        if path not in stats:
            bad.append(f"{path} is missing")
            continue
        user, group, mode = stats[path]
        if user != "root" or group not in (shadow_group, "root") or mode & 0o137:
            bad.append(f"{path}: {user}:{group} {mode:o}, want root:{shadow_group} 0640 or less")
    # root's files (keys, histories, scripts): root's group may read them, nobody else
    user, group, mode = stats.get("/root", ("?", "?", 0o777))
    if user != "root" or mode & 0o007 or (group != "root" and mode & 0o070):
        bad.append(f"/root: {user}:{group} {mode:o}, want root 0700 (0750 with group root)")
    for path in found["trust"].stdout.split():
        bad.append(f"{path} exists (host-based trust or stored credentials)")
    assert not bad, "\n".join(bad)


@check("system-legacy-services", "no telnet, rsh, tftp, talk or inetd: cleartext services")
def test_legacy_services(host: Any, spec: TemplateSpec) -> None:
    names = LEGACY_PACKAGES.get(spec.family, ())
    query = {
        "debian": "dpkg-query -W -f='${Package} ${Status}\\n' " + " ".join(names),
        "el": "rpm -q --qf '%{NAME} install ok installed\\n' " + " ".join(names),
    }[spec.family]
    answer = ask(host, {"packages": f"{query} 2>/dev/null; true"}, sudo=False)["packages"]
    installed = [
        line.split()[0] for line in answer.stdout.splitlines() if line.endswith("ok installed")
    ]
    sockets = host.socket.get_listening_sockets()
    assert any(s.startswith("tcp://") for s in sockets), (
        "ss lists no TCP listener at all (not even sshd)"
    )
    listening = []
    for sock in sockets:
        proto, _, rest = sock.partition("://")
        port = rest.rsplit(":", 1)[-1]
        if proto in LEGACY_PORTS and port.isdigit() and int(port) in LEGACY_PORTS[proto]:
            listening.append(sock)
    assert not installed and not listening, (
        f"legacy services: packages {installed or 'none'}, listening {listening or 'none'}"
    )


# -- listeners, time, disk, updates (booted) -----------------------------------------------------

# What may listen besides sshd, and why (proto, address pattern, port). Anything else, on any
# address, fails: loopback listeners included, since they are services the template never asked
# for. LLMNR (5355) and mDNS (5353) are not here on purpose: they answer name queries from the
# whole link (turn them off in systemd-resolved: LLMNR=no, MulticastDNS=no).
LISTEN_EXCEPTIONS: tuple[tuple[str, str, int, str], ...] = (
    ("tcp", "*", 22, "sshd"),
    ("udp", "*", 68, "the DHCPv4 client (dhclient, systemd-networkd, NetworkManager)"),
    ("udp", "fe80::*", 546, "the DHCPv6 client"),
    ("udp", "*", 546, "the DHCPv6 client"),
    ("tcp", "127.0.0.53", 53, "systemd-resolved's stub resolver (loopback only)"),
    ("udp", "127.0.0.53", 53, "systemd-resolved's stub resolver (loopback only)"),
    ("tcp", "127.0.0.54", 53, "systemd-resolved's proxy stub (loopback only)"),
    ("udp", "127.0.0.54", 53, "systemd-resolved's proxy stub (loopback only)"),
    ("udp", "127.0.0.1", 323, "chronyd's command port (loopback only)"),
    ("udp", "::1", 323, "chronyd's command port (loopback only)"),
)


def _allowed(proto: str, address: str, port: int) -> bool:
    host = address.split("%", 1)[0]  # "10.0.2.15%enp0s1": bound to an interface
    for e_proto, e_addr, e_port, _why in LISTEN_EXCEPTIONS:
        if (proto, port) != (e_proto, e_port):
            continue
        if e_addr in ("*", host) or (e_addr.endswith("*") and host.startswith(e_addr[:-1])):
            return True
    return False


@check(
    "system-listeners",
    "nothing listens on the clone but sshd and documented exceptions (DHCP client, loopback "
    "resolver), on any address",
)
def test_listeners(host: Any) -> None:
    sockets = [s for s in host.socket.get_listening_sockets() if not s.startswith("unix://")]
    assert any(s.startswith("tcp://") and s.endswith(":22") for s in sockets), (
        f"no TCP listener on port 22 in {sockets}: is ss reading the right namespace?"
    )
    extra = []
    for spec in sockets:
        proto, rest = spec.split("://", 1)
        address, port = rest.rsplit(":", 1)
        if not _allowed(proto, address, int(port)):
            extra.append(spec)
    assert not extra, "unexpected listeners: " + ", ".join(sorted(set(extra)))


TIME_SERVICES = {
    "debian": ("systemd-timesyncd", "chrony", "ntpsec", "ntp", "openntpd"),
    "el": ("chronyd", "systemd-timesyncd", "ntpd"),
}


@check("system-time-sync", "exactly one time-sync daemon (chrony or systemd-timesyncd) enabled")
def test_time_sync(host: Any, spec: TemplateSpec) -> None:
    names = [f"{n}.service" for n in TIME_SERVICES.get(spec.family, TIME_SERVICES["debian"])]
    known = systemd.units(host, names)
    enabled = [n for n, u in known.items() if u.exists and u.enabled]
    running = [n for n in enabled if known[n].running]
    assert enabled, (
        f"no time-sync daemon enabled (looked for {', '.join(names)}): clones drift, TLS and "
        "Kerberos break; install systemd-timesyncd or chrony"
    )
    assert len(enabled) == 1, f"{len(enabled)} time-sync daemons enabled, they fight: {enabled}"
    assert running, f"{enabled[0]} is enabled but not running on the clone"


@check(
    "system-logging",
    "the clone keeps its logs across a reboot: a persistent journal for its machine-id, or a "
    "running syslog daemon writing under /var/log, and this boot's journal is not empty",
)
def test_logging(host: Any) -> None:
    answers = {name: a.stdout for name, a in ask(host, journal.COMMANDS).items()}
    found = journal.findings(answers)
    assert not found, "the clone's logs do not last:\n" + "\n".join(found)


# One command, in order: systemd's own verdict on the boot once its start-up jobs are done
# (`--wait`), then each failed unit with the last lines it logged, then jobs still queued.
BOOT_WAIT_S = 120  # how long start-up jobs may still run after the login
BOOT_STATE = (
    (f"state=$(timeout {BOOT_WAIT_S} systemctl is-system-running --wait 2>/dev/null)\n")
    + r"""echo "state ${state:-unknown}"
failed=$(systemctl list-units --state=failed --plain --no-legend --no-pager)
for u in $(printf '%s\n' "$failed" | awk '{ print ($1 == "●") ? $2 : $1 }')
do
  log=$(journalctl -b -u "$u" -n 3 -o cat --no-pager 2>/dev/null | tr '\n' ' ')
  echo "failed $u $(printf %s "$log" | cut -c1-240)"
done
systemctl list-jobs --plain --no-legend --no-pager 2>/dev/null | awk '{print "job " $2 " " $3}'
"""
)
# Units whose failure says nothing about the image, by platform (none known so far).
BOOT_FAILURES_ALLOWED: dict[str, frozenset[str]] = {}
# Units another check judges, with the cause in its own terms: cloud-init's stages fail when a
# module does (`cloud-init-clean-boot` reads result.json, status.json and the log).
JUDGED_ELSEWHERE = frozenset(
    {
        "cloud-init-local.service", "cloud-init.service", "cloud-init-network.service",
        "cloud-init-main.service", "cloud-config.service", "cloud-final.service",
    }
)  # fmt: skip


def boot_findings(out: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """What keeps systemd from calling the boot clean, from BOOT_STATE's output."""
    state, failed, jobs = "unknown", [], []
    for line in out.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "state":
            state = rest.strip()
        elif kind == "failed" and rest.strip() and rest.split(" ", 1)[0] not in allowed:
            failed.append(rest.strip())
        elif kind == "job":
            jobs.append(rest.strip())
    found = []
    for entry in failed:
        unit, _, log = entry.partition(" ")
        found.append(f"{unit} failed: {log.strip() or '(no log)'}")
    if state in ("starting", "initializing"):
        found.append(
            f"the boot had not finished {BOOT_WAIT_S} s after the login (queued: "
            f"{', '.join(jobs[:8])})"
        )
    elif state not in ("running", "degraded") and not found:
        found.append(f"systemd says the system is {state}")
    return found


@check(
    "system-boot-clean",
    "the clone's boot is clean by systemd's own account: `systemctl is-system-running` says "
    "running once start-up is over, and no unit failed (each failed unit named with its last "
    "log lines; cloud-init's stages are cloud-init-clean-boot's)",
)
def test_boot_clean(host: Any, vm: BootedVM) -> None:
    out = ask(host, {"boot": BOOT_STATE})["boot"].stdout
    found = boot_findings(
        out, BOOT_FAILURES_ALLOWED.get(vm.platform, frozenset()) | JUDGED_ELSEWHERE
    )
    assert not found, "the clone did not boot clean:\n" + "\n".join(found)


@check(
    "system-rootfs-grows",
    "on a disk larger than the template's, the root partition and filesystem fill it "
    "(cloud-init growpart and resizefs)",
)
def test_rootfs_grows(host: Any, vm: BootedVM) -> None:
    grown = int(vm.facts.get("disk_grown_by", 0))
    template = int(vm.facts.get("template_disk_bytes", 0))
    assert grown > 0 and template > 0, (
        f"the {vm.platform} platform booted the clone on a disk no larger than the template's "
        "(facts disk_grown_by/template_disk_bytes missing): growth cannot be checked"
    )
    sizes = ask(host, {"root": ROOT_SIZES}, sudo=False)["root"].stdout.split()
    assert len(sizes) == 5, f"cannot read the root disk's sizes: {sizes}"
    source, disk = sizes[0].split("@", 1)
    disk_bytes, part_start, part_bytes, fs_bytes = (int(n) for n in sizes[1:])
    assert disk_bytes == template + grown, (
        f"{disk} is {disk_bytes} bytes, want the template's {template} + {grown}"
    )
    gap = disk_bytes - (part_start * 512 + part_bytes)
    assert gap <= MAX_TAIL_BYTES, (
        f"the root partition {source} ends {gap // MIB} MiB before the end of {disk}: growpart "
        "did not run (cloud-guest-utils missing, growpart disabled, root not the last partition)"
    )
    assert fs_bytes > template, (
        f"the root filesystem is {fs_bytes // MIB} MiB, no larger than the template's whole disk "
        f"({template // MIB} MiB): resizefs did not run"
    )


# source@disk disk-bytes partition-start(sectors) partition-bytes filesystem-bytes
ROOT_SIZES = (
    's=$(findmnt -n -o SOURCE /); d=/dev/$(lsblk -n -o PKNAME "$s"); '
    'echo "$s@$d" $(lsblk -b -d -n -o SIZE "$d") $(cat /sys/class/block/${s##*/}/start) '
    '$(lsblk -b -d -n -o SIZE "$s") $(findmnt -b -n -o SIZE /)'
)


# -- read offline from the image -------------------------------------------------------------------

# Where world-writable entries are expected (their contents are temporary by design).
WORLD_WRITABLE_PLACES = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/", "/var/lock/")


@check(
    "system-world-writable",
    "no world-writable file, and no world-writable directory without the sticky bit, on the "
    "root filesystem (read offline)",
)
def test_world_writable(image: OfflineImage) -> None:
    bad = []
    seen = 0
    for path, st in image.walk("/"):
        seen += 1
        if not (st.is_file or st.is_dir) or not st.mode & 0o002:
            continue
        if st.is_dir and st.mode & 0o1000:
            continue  # sticky: only owners remove their entries (/tmp)
        if path.startswith(WORLD_WRITABLE_PLACES):
            continue
        kind = "directory without the sticky bit" if st.is_dir else "file"
        bad.append(f"{path}: world-writable {kind} (mode {st.perms:04o})")
    assert seen >= 10, f"the walk of / saw {seen} entries: is this the root filesystem?"
    assert not bad, f"{len(bad)} world-writable entries:\n" + "\n".join(bad[:50])


UNIT_DIRS = (
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
_GETTY = re.compile(r"(getty|console).*\.service(\.d)?$")
_AUTOLOGIN = re.compile(r"(--autologin\b|(^|\s)-a\s+\S)")
# Display managers: (file or folder of *.conf, section or None, key, value that turns it on).
DM_SETTINGS = (
    ("/etc/gdm3/daemon.conf", "daemon", "automaticloginenable", "true"),
    ("/etc/gdm3/daemon.conf", "daemon", "timedloginenable", "true"),
    ("/etc/gdm3/custom.conf", "daemon", "automaticloginenable", "true"),
    ("/etc/gdm/custom.conf", "daemon", "automaticloginenable", "true"),
    ("/etc/gdm/custom.conf", "daemon", "timedloginenable", "true"),
    ("/etc/lightdm/lightdm.conf", None, "autologin-user", "*"),
    ("/etc/lightdm/lightdm.conf.d", None, "autologin-user", "*"),
    ("/usr/share/lightdm/lightdm.conf.d", None, "autologin-user", "*"),
    ("/etc/sddm.conf", "autologin", "user", "*"),
    ("/etc/sddm.conf.d", "autologin", "user", "*"),
    ("/usr/lib/sddm/sddm.conf.d", "autologin", "user", "*"),
    ("/etc/lxdm/lxdm.conf", None, "autologin", "*"),
    ("/etc/default/nodm", None, "nodm_enabled", "true"),
)


def _ini_values(text: str, section: str | None, key: str) -> list[str]:
    """Values of `key` (in `section`, or anywhere when None) of an ini or shell-style file."""
    current = None
    out = []
    for raw in text.splitlines():
        line = uncommented(raw)
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip().lower()
            continue
        name, sep, value = line.partition("=")
        if sep and name.strip().lower() == key and (section is None or current == section):
            out.append(value.strip().strip("\"'"))
    return out


def _files(image: OfflineImage, path: str) -> list[str]:
    if not image.exists(path):
        return []
    if image.stat(path).is_dir:
        return [f"{path}/{n}" for n in image.listdir(path) if n.endswith(".conf")]
    return [path]


def _getty_autologins(image: OfflineImage) -> list[str]:
    found = []
    for unit_dir in UNIT_DIRS:
        if not image.exists(unit_dir):
            continue
        for name in image.listdir(unit_dir):
            if not _GETTY.search(name):
                continue
            path = f"{unit_dir}/{name}"
            files = _files(image, path) if name.endswith(".d") else [path]
            for f in files:
                if not image.exists(f) or not image.stat(f).is_file:
                    continue
                for line in image.read_text(f).splitlines():
                    if line.strip().startswith("ExecStart=") and _AUTOLOGIN.search(line):
                        found.append(f"{f}: {line.strip()}")
    if image.exists("/etc/inittab"):
        for line in image.read_text("/etc/inittab").splitlines():
            if "getty" in line and not line.lstrip().startswith("#") and _AUTOLOGIN.search(line):
                found.append(f"/etc/inittab: {line.strip()}")
    return found


@check(
    "system-console-autologin",
    "no console or serial autologin (getty --autologin) and no display-manager autologin "
    "(read offline)",
)
def test_console_autologin(image: OfflineImage) -> None:
    assert image.exists("/etc/systemd/system") or image.exists("/etc/inittab"), (
        "neither /etc/systemd/system nor /etc/inittab: is this the root filesystem?"
    )
    found = _getty_autologins(image)
    for path, section, key, on in DM_SETTINGS:
        for f in _files(image, path):
            for value in _ini_values(image.read_text(f), section, key):
                if (on == "*" and value) or value.lower() == on:
                    found.append(f"{f}: {key}={value}")
    assert not found, "autologin configured:\n" + "\n".join(found)
