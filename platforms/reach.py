"""Why a clone cannot be reached, said as soon as it is certain, on every platform.

A boot wait that only retries until its timeout reports the wrong thing after a quarter of an
hour. This module tells the causes apart while the clone boots:

- nothing answers on port 22 (no SSH banner while the boot is over);
- sshd answers but no key exchange, host-key, cipher or MAC algorithm is common with the check
  client: sshd's own offer is read from its KEXINIT packet, compared with `ssh -G`, and named
  (check `ssh-crypto`);
- cloud-init did not apply the seed: it did not run (disabled, no datasource found by
  ds-identify, not installed), failed, or finished with no datasource: read from the serial
  console, where systemd and cloud-init print their own lines (local platform);
- the seed's key is refused after cloud-init finished.

Each is an image defect: the image decides it, rerunning will not change it. `Diagnosis` is
pure (times and observations in, a verdict out), so the rules are unit-tested without a VM.
"""

from __future__ import annotations

import re
import socket
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from core.ssh import client_options, ssh_argv, ssh_banner
from platforms.console import ConsoleFacts

KEXINIT = 20
AEAD_CIPHERS = frozenset(
    {"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}
)
_PSEUDO = re.compile(r"^(ext-info-[cs]|kex-strict-[cs]-v00@openssh\.com)$")

# How long an observation must hold before it is certain (seconds of the harness's clock).
NO_SSHD_AFTER_PROMPT_S = 45.0  # sshd starts in the same transaction as the login prompt
NO_SSHD_AFTER_FAILED_S = 20.0  # ssh.service may restart once after a failure
NO_SSHD_AFTER_IP_S = 180.0  # XCP-ng: no console; the guest agent starts beside sshd
NO_CLOUD_INIT_AFTER_PROMPT_S = 30.0  # cloud-init's first stage runs long before the prompt
REFUSED_AFTER_FINISH_S = 5.0  # cloud-init made the user and key before it printed "finished"
REFUSED_WITHOUT_CONSOLE_S = 60.0  # cloud-init makes the user before sshd starts
# A failed cloud-init unit (a module's error, e.g. a failing bootcmd) may still have made the
# seed's user: certain only when no login succeeded this long after the failure was shown.
NO_LOGIN_AFTER_CLOUD_INIT_FAILED_S = 60.0


@dataclass(frozen=True)
class Algorithms:
    """One side's offer, in its order of preference."""

    kex: tuple[str, ...]
    hostkey: tuple[str, ...]
    ciphers: tuple[str, ...]
    macs: tuple[str, ...]


def _names(value: str) -> tuple[str, ...]:
    return tuple(a for a in value.split(",") if a and not _PSEUDO.match(a))


def parse_kexinit(payload: bytes) -> Algorithms:
    """The name-lists of an SSH_MSG_KEXINIT payload (RFC 4253 §7.1), server to client."""
    if not payload or payload[0] != KEXINIT:
        raise ValueError("not a KEXINIT packet")
    pos = 17  # message number and a 16-byte cookie
    lists: list[str] = []
    for _ in range(10):
        (length,) = struct.unpack(">I", payload[pos : pos + 4])
        lists.append(payload[pos + 4 : pos + 4 + length].decode("ascii", "replace"))
        pos += 4 + length
    return Algorithms(
        kex=_names(lists[0]),
        hostkey=_names(lists[1]),
        ciphers=_names(lists[3]),  # server to client
        macs=_names(lists[5]),
    )


def server_algorithms(address: str, port: int, timeout: float = 10.0) -> Algorithms:
    """What sshd offers, from its KEXINIT: the first packet after the version exchange, sent
    before any key exchange, so it is read in the clear without logging in."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        data = b""
        while b"SSH-" not in data or b"\n" not in data[data.index(b"SSH-") :]:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("sshd closed the connection before its banner")
            data += chunk
        start = data.index(b"SSH-")
        end = data.index(b"\n", start) + 1
        sock.sendall(b"SSH-2.0-xcpng-golden-probe\r\n")
        data = data[end:]
        while len(data) < 5 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("sshd closed the connection before its KEXINIT")
            data += chunk
    length, padding = struct.unpack(">IB", data[:5])
    return parse_kexinit(data[5 : 4 + length - padding])


def client_algorithms(key: Path, known_hosts: Path | None, address: str, port: int) -> Algorithms:
    """What the check client (OpenSSH with the harness's options) offers: `ssh -G`."""
    argv = ["ssh", *client_options(key, known_hosts), "-G", "-p", str(port), address]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
    conf = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return Algorithms(
        kex=_names(conf.get("kexalgorithms", "")),
        hostkey=_names(conf.get("hostkeyalgorithms", "")),
        ciphers=_names(conf.get("ciphers", "")),
        macs=_names(conf.get("macs", "")),
    )


def no_common(server: Algorithms, client: Algorithms) -> list[str]:
    """One line per negotiation that fails, as OpenSSH negotiates: the client's first choice
    the server also offers; a MAC only matters when the chosen cipher is not an AEAD."""
    lines = []
    labels = (("kex", "key exchange"), ("hostkey", "host-key algorithm"), ("ciphers", "cipher"))
    for attr, label in labels:
        offer, accepted = getattr(server, attr), getattr(client, attr)
        if not any(a in offer for a in accepted):
            lines.append(
                f"no common {label}: sshd offers {', '.join(offer) or 'none'}; "
                f"the client accepts {', '.join(accepted)}"
            )
    cipher = next((c for c in client.ciphers if c in server.ciphers), None)
    needs_mac = cipher is not None and cipher not in AEAD_CIPHERS
    if needs_mac and not any(m in server.macs for m in client.macs):
        lines.append(
            f"no common MAC (cipher {cipher} needs one): sshd offers "
            f"{', '.join(server.macs) or 'none'}; the client accepts {', '.join(client.macs)}"
        )
    return lines


# -- one look at the clone ---------------------------------------------------------------------

OK, REFUSED, HOSTKEY, NEGOTIATION, TRANSIENT = (
    "ok",
    "refused",
    "hostkey",
    "negotiation",
    "transient",
)
_NEGOTIATION = re.compile(r"Unable to negotiate|no matching (key exchange|cipher|MAC|host key)")
_REFUSED = re.compile(r"Permission denied")
_HOSTKEY = re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED")


def classify_login(rc: int, stderr: str) -> str:
    """ssh's exit code and errors -> ok, refused, hostkey, negotiation or transient."""
    if rc != 255:
        return OK  # ssh's own failures are 255; anything else is the remote command's
    if _NEGOTIATION.search(stderr):
        return NEGOTIATION
    if _HOSTKEY.search(stderr):
        return HOSTKEY
    if _REFUSED.search(stderr):
        return REFUSED
    return TRANSIENT  # refused connection, reset, timeout: sshd not up yet or penalising


@dataclass(frozen=True)
class Observation:
    """One poll: the SSH banner (None: nothing answered), the login's outcome and details."""

    banner: str | None
    login: str | None = None  # one of the classify_login outcomes, None when not tried
    detail: str = ""
    mismatch: tuple[str, ...] = ()  # no_common() lines when the login failed to negotiate


@dataclass(frozen=True)
class Target:
    """How to reach one clone: its address, the seed's key and pinned host key."""

    user: str
    address: str
    port: int
    key: Path
    known_hosts: Path | None


# The login that proves a clone ready, on every platform: it returns once cloud-init has
# finished the first boot (whatever its outcome, which is a check's to judge), so no check
# reads a state the first boot is still changing.
SETTLED_LOGIN = "cloud-init status --wait >/dev/null 2>&1; true"
SETTLED_LOGIN_TIMEOUT_S = 120.0  # one such login; the platform's boot timeout bounds the retries


def observe(target: Target, command: str, timeout_s: float) -> Observation:
    """Banner first (cheap, no penalty on sshd's side), then one login running `command`."""
    try:
        banner = ssh_banner(target.address, target.port)
    except OSError as exc:
        return Observation(banner=None, detail=str(exc))
    argv = ssh_argv(
        target.user, target.address, target.port, target.key, target.known_hosts, command
    )
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
        rc, err = proc.returncode, proc.stderr.strip()
    except subprocess.TimeoutExpired:
        rc, err = 255, f"ssh did not finish within {timeout_s:.0f} s"
    outcome = classify_login(rc, err)
    mismatch: tuple[str, ...] = ()
    if outcome in (NEGOTIATION, TRANSIENT):
        # ssh reports a failed negotiation at INFO, below the harness's LogLevel=ERROR: compare
        # sshd's offer (its KEXINIT) with the client's instead of reading ssh's errors.
        try:
            server = server_algorithms(target.address, target.port)
            client = client_algorithms(target.key, target.known_hosts, target.address, target.port)
            mismatch = tuple(no_common(server, client))
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            if outcome == NEGOTIATION:
                mismatch = (f"{err} (sshd's offer could not be read: {exc})",)
        if mismatch:
            outcome = NEGOTIATION
        elif outcome == NEGOTIATION:
            mismatch = (err,)
    return Observation(banner=banner, login=outcome, detail=err[-500:], mismatch=mismatch)


# -- the rules -----------------------------------------------------------------------------------


@dataclass
class Diagnosis:
    """Accumulates observations over one boot and names the cause once it is certain.

    `where` names the clone in messages; `console` is where its serial console is kept (None on
    platforms without one, where only the SSH side can be judged)."""

    where: str
    console: str | None = None
    first: dict[str, float] = field(default_factory=dict)  # fact -> when first seen
    last: Observation | None = None
    negotiation_seen: int = 0

    def _seen(self, fact: str, now: float, present: bool) -> float | None:
        if present:
            self.first.setdefault(fact, now)
        return self.first.get(fact)

    def _since(self, fact: str, now: float) -> float:
        return now - self.first[fact] if fact in self.first else -1.0

    def _see(self, console: str) -> str:
        return f"; the console is in {console}" if console else ""

    def cause(
        self,
        now: float,
        obs: Observation,
        facts: ConsoleFacts | None = None,
        address_since: float | None = None,
    ) -> str | None:
        """The certain cause of unreachability, or None to keep waiting. `address_since` is
        when the platform learnt the clone's address (XCP-ng: from the guest agent)."""
        self.last = obs
        if facts is not None and facts.firmware_gave_up:
            tried = "; ".join(facts.firmware_failed[:3]) or "no boot option named"
            return (
                f"{self.where}: the firmware found nothing to boot on the disk and went on to "
                f"network boot ({tried}): the image has no boot loader a new VM can start (UEFI "
                "looks for \\EFI\\BOOT\\BOOTX64.EFI on an EFI system partition, BIOS for a "
                f"boot sector), or is not a disk image at all{self._see(self.console or '')}"
            )
        usable = facts if facts is not None and facts.status_lines else None
        self._seen("banner", now, obs.banner is not None)
        self._seen("refused", now, obs.login in (REFUSED, HOSTKEY))
        see = self._see(self.console or "")

        if obs.login == NEGOTIATION:
            self.negotiation_seen += 1
            if self.negotiation_seen >= 2:
                return (
                    f"{self.where}: sshd answers but the check client cannot agree algorithms "
                    f"with it (check ssh-crypto): " + "; ".join(obs.mismatch)
                )
            return None
        if usable is not None:
            found = self._console_cause(now, obs, usable, see)
            if found:
                return found
        elif (
            obs.banner is None
            and address_since is not None
            and now - address_since >= NO_SSHD_AFTER_IP_S
        ):
            return (
                f"{self.where}: nothing answers on the SSH port {now - address_since:.0f} s "
                "after the guest agent reported the address: sshd is not enabled or failed "
                f"to start, or a firewall in the image blocks it ({obs.detail})"
            )
        refused_for = self._since("refused", now)
        if obs.login in (REFUSED, HOSTKEY) and refused_for >= REFUSED_WITHOUT_CONSOLE_S:
            return self._refused_message(obs, refused_for, see)
        return None

    def _console_cause(
        self, now: float, obs: Observation, facts: ConsoleFacts, see: str
    ) -> str | None:
        self._seen("prompt", now, facts.login_prompt)
        self._seen("finished", now, facts.finished is not None)
        self._seen("sshd-failed", now, bool(facts.sshd_failed))
        self._seen("cloud-init-failed", now, bool(facts.cloud_init_failed))
        if (
            facts.cloud_init_failed
            and self._since("cloud-init-failed", now) >= NO_LOGIN_AFTER_CLOUD_INIT_FAILED_S
        ):
            return (
                f"{self.where}: the seed cannot be applied: cloud-init failed to start: "
                f"{' | '.join(facts.cloud_init_failed[:3])} (check cloud-init-installed){see}"
            )
        if facts.no_datasource:
            return (
                f"{self.where}: the seed was not applied: cloud-init finished without a "
                f"datasource ({facts.datasource}): it did not find the NoCloud seed, so the "
                f"seed's user and key do not exist (check cloud-init-datasources){see}"
            )
        if not facts.cloud_init_ran and self._since("prompt", now) >= NO_CLOUD_INIT_AFTER_PROMPT_S:
            return (
                f"{self.where}: the seed was not applied: cloud-init did not run on this boot "
                f"(the console reached the login prompt {self._since('prompt', now):.0f} s ago "
                "with no cloud-init line): cloud-init is disabled (/etc/cloud/cloud-init.disabled "
                "or cloud-init=disabled), ds-identify found no datasource, or it is not installed; "
                "so the seed's user, key and host key were never made (check "
                f"cloud-init-installed, cloud-init-datasources){see}"
            )
        # sshd's own failure only counts once cloud-init is known to have run: without it the
        # seed's host keys never come and sshd may fail for that reason (told above)
        if obs.banner is None and facts.cloud_init_ran:
            if self._since("sshd-failed", now) >= NO_SSHD_AFTER_FAILED_S:
                return (
                    f"{self.where}: nothing listens on the SSH port: sshd failed to start: "
                    f"{' | '.join(facts.sshd_failed[:2])}{see}"
                )
            if self._since("prompt", now) >= NO_SSHD_AFTER_PROMPT_S:
                started = (
                    "sshd started, then stopped" if facts.sshd_started else "sshd never started"
                )
                waited = self._since("prompt", now)
                return (
                    f"{self.where}: nothing listens on the SSH port {waited:.0f} s after the "
                    f"login prompt appeared ({started}; ssh.service not enabled?){see}"
                )
        refused = obs.login in (REFUSED, HOSTKEY)
        if refused and facts.finished and self._since("finished", now) >= REFUSED_AFTER_FINISH_S:
            return self._refused_message(obs, self._since("refused", now), see, facts)
        return None

    def _refused_message(
        self, obs: Observation, refused_for: float, see: str, facts: ConsoleFacts | None = None
    ) -> str:
        what = (
            "sshd serves a host key other than the seed's (cloud-init's ssh module did not "
            "install the seed's host key)"
            if obs.login == HOSTKEY
            else "sshd refuses the seed's key"
        )
        when = (
            f"after cloud-init finished ({facts.datasource})"
            if facts is not None and facts.finished
            else f"for {refused_for:.0f} s while sshd answers (cloud-init creates the user "
            "before sshd starts): cloud-init did not apply the seed (disabled, no datasource, "
            "failed) or sshd does not read ~/.ssh/authorized_keys"
        )
        return (
            f"{self.where}: {what} {when} (check cloud-init-seed-applied, ssh-trust): "
            f"{obs.detail}{see}"
        )

    def summary(self) -> str:
        """The last state, for a timeout message."""
        obs = self.last
        if obs is None:
            return "nothing observed"
        if obs.banner is None:
            return f"no SSH banner ({obs.detail})"
        return f"sshd answers ({obs.banner}); login: {obs.login} {obs.detail}".strip()
