"""Template hygiene, read from the artifact itself, offline, before any boot.

A booted clone hides what the image ships: cloud-init deletes baked host keys and starts a new
instance, while the private keys, the old instance data and the build user's traces still sit
in the artifact every clone is made from. Each check lists what it found (image-builder's
find-based hygiene check once exited 0 while finding files: assert on the findings).
"""

from __future__ import annotations

import re
from typing import Any

from core.checks import check
from validations.homes import homes
from validations.offline import OfflineImage
from validations.remote import ask

# A tool's history is any file of a home whose name says so (.bash_history, .python_history,
# fish_history, .node_repl_history, .sqlite_history, .Rhistory...), plus the two that do not:
# less's .lesshst, vim's .viminfo, and wget's HSTS list. Searched three folders deep
# (~/.local/share/fish/fish_history). Empty files and links to /dev/null (a common hardening)
# hold nothing.
HISTORY_NAME = re.compile(r"(?i)(?:history|_hist|\.lesshst|\.hsts|^\.viminfo)$")
HISTORY_DEPTH = 4


def history_files(image: OfflineImage, homes: list[str]) -> list[str]:
    found = []
    for home in homes:
        for path, st in image.walk(home):
            rel = path[len(home) :].lstrip("/")
            deep_enough = rel.count("/") < HISTORY_DEPTH
            if deep_enough and st.is_file and st.size > 0 and HISTORY_NAME.search(rel):
                found.append(path)
    return found


INSTALLER_FILES = (
    "/var/log/installer",  # Debian installer: cdebconf/questions.dat holds password hashes
    "/root/anaconda-ks.cfg",  # EL installer: kickstart with the root/user hashes
    "/root/original-ks.cfg",
    "/root/install.log",
    "/root/install.log.syslog",
    "/root/preseed.cfg",
    "/var/log/anaconda",
    "/etc/cloud/cloud.cfg.d/99-installer.cfg",  # subiquity: may hold the installer's identity
)
CLOUD_STATE = (
    "/var/lib/cloud/instances",
    "/var/lib/cloud/instance",
    "/var/lib/cloud/data",
    "/var/lib/cloud/sem",
    "/var/lib/cloud/seed",
    "/var/lib/cloud/handlers",
)
CLOUD_LOGS = ("/var/log/cloud-init.log", "/var/log/cloud-init-output.log")
LEASE_DIRS = (
    "/var/lib/dhcp",
    "/var/lib/dhclient",
    "/var/lib/NetworkManager",
    "/var/lib/systemd/network",
    "/var/lib/wicked",
)
NET_STATE_FILES = (
    "/etc/udev/rules.d/70-persistent-net.rules",
    "/etc/udev/rules.d/75-persistent-net-generator.rules",
    "/etc/netplan/50-cloud-init.yaml",  # the build VM's rendered network (its MAC, its seed)
    "/etc/network/interfaces.d/50-cloud-init",
)
PACKAGE_CACHES = {
    "/var/cache/apt/archives": ".deb",
    "/var/cache/dnf": ".rpm",
    "/var/cache/yum": ".rpm",
}
CRASH_DIRS = ("/var/crash", "/var/lib/systemd/coredump")
# Where a build leaves scratch files (provisioner scripts, downloads): /tmp is emptied at boot
# on some systems, /var/tmp is not, and both ship in the image whatever happens later.
TEMP_DIRS = ("/tmp", "/var/tmp")
MAX_LOG_BYTES = 1024 * 1024  # what a sealed /var/log may hold in total (empty files, wtmp)
SUDOERS_GRANTEES = {"root", "%sudo", "%wheel", "%admin"}
_UNSET_MACHINE_ID = ("", "uninitialized")


def _present(image: OfflineImage, paths: tuple[str, ...]) -> list[str]:
    return [p for p in paths if image.lexists(p)]


def _nonempty(image: OfflineImage, path: str) -> bool:
    if not image.exists(path):
        return False
    st = image.stat(path)
    return bool(image.listdir(path)) if st.is_dir else st.size > 0


@check(
    "hygiene-host-keys", "no SSH host key in the image: every clone would share its private half"
)
def test_host_keys(image: OfflineImage) -> None:
    assert image.exists("/etc/ssh/sshd_config"), (
        "no /etc/ssh/sshd_config: is this the root filesystem?"
    )
    keys = [n for n in image.listdir("/etc/ssh") if n.startswith("ssh_host_")]
    assert not keys, f"baked host keys in /etc/ssh: {', '.join(keys)}"


@check(
    "hygiene-machine-id",
    "machine-id empty or 'uninitialized': clones get their own (DHCP, journald)",
)
def test_machine_id(image: OfflineImage) -> None:
    if image.exists("/etc/machine-id"):
        value = image.read_text("/etc/machine-id").strip()
        assert value in _UNSET_MACHINE_ID, f"/etc/machine-id is baked: {value!r}"
    dbus = "/var/lib/dbus/machine-id"
    if image.lexists(dbus):
        st = image.lstat(dbus)
        assert st.is_symlink, (
            f"{dbus} is a file ({image.read_text(dbus).strip()!r}), want absent or a link"
        )


# Per-machine state a template must not ship: every clone would start with the same one
# (systemd's "Safely Building Images": remove the machine-id, random seed and credential secret).
MACHINE_STATE = {
    "/var/lib/systemd/random-seed": "systemd's random seed: every clone seeds its RNG alike",
    "/var/lib/urandom/random-seed": "the random seed of sysvinit's urandom script",
    "/var/lib/systemd/credential.secret": "systemd's host secret for encrypted credentials",
    "/var/lib/NetworkManager/secret_key": "NetworkManager's secret for stable IPv6/DHCP ids",
    "/var/lib/dhcpcd/duid": "dhcpcd's DHCP unique identifier",
    "/etc/dhcpcd.duid": "dhcpcd's DHCP unique identifier",
    "/var/lib/dhcp/dhclient6.leases": "dhclient's DHCPv6 identity",
    "/etc/hostid": "the host id (gethostid, ZFS)",
    "/etc/krb5.keytab": "a Kerberos host keytab: the machine's own credential",
    "/etc/iscsi/initiatorname.iscsi": "the iSCSI initiator name, unique per machine",
    "/etc/docker/key.json": "the Docker daemon's identity key",
    "/root/.gnupg/random_seed": "GnuPG's random seed",
    "/var/lib/samba/private/secrets.tdb": "Samba's machine account secret",
    "/etc/salt/minion_id": "the Salt minion's id: every clone would claim the same one",
    "/etc/salt/pki/minion/minion.pem": "the Salt minion's private key",
    "/var/lib/tailscale/tailscaled.state": "Tailscale's node and machine keys",
    "/var/lib/zerotier-one/identity.secret": "the ZeroTier node identity",
}


def machine_state(image: OfflineImage) -> list[str]:
    found = []
    for path, why in MACHINE_STATE.items():
        if image.lexists(path):
            size = image.lstat(path).size
            if path == "/etc/iscsi/initiatorname.iscsi" and "InitiatorName=" not in (
                image.read_text(path) if size else ""
            ):
                continue  # the package's placeholder, filled in on first boot
            found.append(f"{path}: {why}")
    return found


@check(
    "hygiene-machine-state",
    "no per-machine state shipped in the image (random seeds, credential secrets, DHCP "
    "identities, host ids, keytabs): each clone makes its own",
)
def test_machine_state(image: OfflineImage) -> None:
    assert image.exists("/var/lib"), "no /var/lib in the image: is this the root filesystem?"
    found = machine_state(image)
    assert not found, "per-machine state in the image:\n" + "\n".join(found)


@check(
    "hygiene-cloud-init-state",
    "no cloud-init instance data or logs: a clone must run as a new instance",
)
def test_cloud_init_state(image: OfflineImage) -> None:
    found = [
        p
        for p in CLOUD_STATE
        if image.lexists(p) and (image.lstat(p).is_symlink or _nonempty(image, p))
    ]
    found += [p for p in CLOUD_LOGS if _nonempty(image, p)]
    assert not found, f"cloud-init leftovers: {', '.join(found)}"


@check(
    "hygiene-shell-history",
    "no shell or tool history in any account's home or /etc/skel (every file named for a "
    "history, three folders deep)",
)
def test_shell_history(image: OfflineImage) -> None:
    assert image.exists("/root"), "no /root in the image"
    found = history_files(image, homes(image))
    assert not found, f"history files: {', '.join(found)}"


def _passwd(image: OfflineImage) -> list[list[str]]:
    text = image.read_text("/etc/passwd")
    rows = [line.split(":") for line in text.splitlines() if line.count(":") >= 6]
    assert any(r[0] == "root" for r in rows), "/etc/passwd has no root entry"
    return rows


@check(
    "hygiene-build-user",
    "no build user, home or password left: the template has no regular account",
)
def test_build_user(image: OfflineImage) -> None:
    users = [
        f"{r[0]} (uid {r[2]})"
        for r in _passwd(image)
        if r[2].isdigit() and 1000 <= int(r[2]) < 60000
    ]
    homes = image.listdir("/home") if image.exists("/home") else []
    assert not users and not homes, (
        f"build leftovers: users {users or 'none'}, /home {homes or 'empty'}"
    )


def _sudo_grants(text: str) -> list[str]:
    grants = []
    for raw in text.splitlines():
        line = raw.strip()
        if (
            not line
            or line.startswith("#")
            or re.match(r"(Defaults|@include(dir)?|\w+_Alias)\b", line)
        ):
            continue
        grants.append(line)
    return grants


@check(
    "hygiene-sudoers",
    "no sudoers grant for a build user (NOPASSWD drop-ins) left in the image; files of Defaults "
    "only (use_pty, logfile) are sound",
)
def test_sudoers(image: OfflineImage) -> None:
    assert image.exists("/etc/sudoers"), "/etc/sudoers missing"
    bad = [
        f"/etc/sudoers: {g}"
        for g in _sudo_grants(image.read_text("/etc/sudoers"))
        if g.split()[0] not in SUDOERS_GRANTEES
    ]
    if image.exists("/etc/sudoers.d"):
        for name in image.listdir("/etc/sudoers.d"):
            if name == "README":
                continue
            grants = _sudo_grants(image.read_text(f"/etc/sudoers.d/{name}"))
            if grants:
                bad.append(f"/etc/sudoers.d/{name}: {'; '.join(grants)}")
    assert not bad, "sudoers leftovers:\n" + "\n".join(bad)


@check(
    "hygiene-installer-files",
    "no installer files holding password hashes (cdebconf, anaconda-ks.cfg)",
)
def test_installer_files(image: OfflineImage) -> None:
    found = _present(image, INSTALLER_FILES)
    assert image.exists("/var/log"), "no /var/log in the image"
    assert not found, f"installer leftovers: {', '.join(found)}"


@check(
    "hygiene-network-state",
    "no DHCP leases, persistent net rules or the build VM's rendered network",
)
def test_network_state(image: OfflineImage) -> None:
    found = _present(image, NET_STATE_FILES)
    for d in LEASE_DIRS:
        if image.exists(d):
            found += [
                f"{d}/{n}" for n in image.listdir(d) if ".lease" in n or n.startswith("dhclient")
            ]
    assert image.exists("/etc"), "no /etc in the image"
    assert not found, f"network leftovers: {', '.join(found)}"


@check(
    "hygiene-caches-logs",
    "no package caches, crash dumps, build logs, scratch files in /tmp and /var/tmp or "
    "users' download caches (~/.cache) shipped in the image",
)
def test_caches_logs(image: OfflineImage) -> None:
    found = []
    for d, ext in PACKAGE_CACHES.items():
        if image.exists(d):
            found += [p for p, st in image.walk(d) if st.is_file and p.endswith(ext)]
    for d in CRASH_DIRS + TEMP_DIRS:
        if image.exists(d):
            found += [p for p, st in image.walk(d) if st.is_file]
    # pip, npm, go and the like cache downloads (and sometimes index credentials) in ~/.cache;
    # an empty file there (Ubuntu's motd.legal-displayed) is a marker, not a cache
    for home in homes(image):
        if image.exists(f"{home}/.cache"):
            found += [p for p, st in image.walk(f"{home}/.cache") if st.is_file and st.size]
    logs = [(p, st.size) for p, st in image.walk("/var/log") if st.is_file]
    # A journal folder is named after the machine-id of the VM that wrote it: the build's.
    found += [p for p, _ in logs if p.startswith("/var/log/journal/")]
    total = sum(size for _, size in logs)
    if total > MAX_LOG_BYTES:
        biggest = sorted(logs, key=lambda ps: -ps[1])[:5]
        found.append(
            f"/var/log holds {total} bytes (max {MAX_LOG_BYTES}): "
            + ", ".join(f"{p} {s}" for p, s in biggest)
        )
    assert not found, "leftovers:\n" + "\n".join(found)


# "type base64" of each public host key on the clone
FIRST_BOOT_KEYS = (
    'for f in /etc/ssh/ssh_host_*.pub; do [ -f "$f" ] && cut -d\' \' -f1,2 "$f"; done; true'
)


@check(
    "hygiene-first-boot-identity", "the clone made its own machine-id and host keys on first boot"
)
def test_first_boot_identity(image: OfflineImage, host: Any) -> None:
    # cloud-init writes the seed's host keys, public halves too, mode 0600: read as root
    a = ask(host, {"id": "cat /etc/machine-id", "keys": FIRST_BOOT_KEYS, "names": "ls /etc/ssh"})
    booted_id = a["id"].stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", booted_id), f"booted machine-id is {booted_id!r}"
    baked_id = image.read_text("/etc/machine-id").strip() if image.exists("/etc/machine-id") else ""
    assert booted_id != baked_id, f"the clone kept the image's machine-id {baked_id}"
    booted_keys = {line.strip() for line in a["keys"].stdout.splitlines() if line.strip()}
    names = a["names"].stdout.split()
    assert booted_keys, f"the clone has no SSH host keys in /etc/ssh ({', '.join(names)})"
    baked = {
        " ".join(image.read_text(f"/etc/ssh/{n}").split()[:2])
        for n in image.listdir("/etc/ssh")
        if n.startswith("ssh_host_") and n.endswith(".pub")
    }
    shared = booted_keys & baked
    assert not shared, (
        f"the clone serves host keys baked in the image: {sorted(k[:40] for k in shared)}"
    )
