"""Telling why a clone cannot be reached (platforms/reach.py, platforms/console.py): sshd's
KEXINIT read over real TCP, the check client's offer from the real `ssh -G`, the console lines
systemd and cloud-init print, and the rules that turn observations into a certain cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from platforms import reach
from platforms.console import parse_console
from platforms.reach import (
    HOSTKEY,
    NEGOTIATION,
    REFUSED,
    TRANSIENT,
    Algorithms,
    Diagnosis,
    Observation,
    classify_login,
    no_common,
)
from tests.support.sshd import WEAK, fake_sshd


def test_sshd_offer_is_read_from_its_kexinit_over_tcp() -> None:
    with fake_sshd(WEAK) as (host, port):
        offer = reach.server_algorithms(host, port)
    assert offer == WEAK  # the kex-strict pseudo-algorithm is dropped


def test_weak_only_ciphers_are_named_against_the_real_client(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("")
    client = reach.client_algorithms(key, None, "127.0.0.1", 22)
    assert "chacha20-poly1305@openssh.com" in client.ciphers
    lines = no_common(WEAK, client)
    assert lines == [
        "no common cipher: sshd offers aes128-cbc, 3des-cbc; the client accepts "
        + ", ".join(client.ciphers)
    ]


def test_a_mac_matters_only_without_an_aead_cipher() -> None:
    client = Algorithms(
        ("curve25519-sha256",),
        ("ssh-ed25519",),
        ("aes128-ctr",),
        ("hmac-sha2-256-etm@openssh.com",),
    )
    server = Algorithms(WEAK.kex, WEAK.hostkey, ("aes128-ctr",), ("hmac-md5",))
    assert no_common(server, client) == [
        "no common MAC (cipher aes128-ctr needs one): sshd offers hmac-md5; the client accepts "
        "hmac-sha2-256-etm@openssh.com"
    ]
    aead = Algorithms(WEAK.kex, WEAK.hostkey, ("chacha20-poly1305@openssh.com",), ("hmac-md5",))
    assert no_common(aead, Algorithms(client.kex, client.hostkey, aead.ciphers, client.macs)) == []


def test_host_key_and_kex_mismatches_are_named() -> None:
    server = Algorithms(
        ("diffie-hellman-group1-sha1",), ("ssh-rsa",), ("aes128-ctr",), ("hmac-sha2-256",)
    )
    client = Algorithms(
        ("curve25519-sha256",), ("ssh-ed25519",), ("aes128-ctr",), ("hmac-sha2-256",)
    )
    lines = no_common(server, client)
    assert lines[0].startswith("no common key exchange: sshd offers diffie-hellman-group1-sha1")
    assert lines[1].startswith("no common host-key algorithm: sshd offers ssh-rsa")


@pytest.mark.parametrize(
    ("rc", "stderr", "want"),
    [
        (0, "", "ok"),
        (1, "", "ok"),  # the remote command's own exit code: the login worked
        (255, "Unable to negotiate with 127.0.0.2 port 2222: no matching cipher found. "
              "Their offer: aes128-cbc,3des-cbc", NEGOTIATION),
        (255, "tester@127.0.0.2: Permission denied (publickey).", REFUSED),
        (255, "Host key verification failed.", HOSTKEY),
        (255, "kex_exchange_identification: read: Connection reset by peer", TRANSIENT),
        (255, "ssh: connect to host 127.0.0.2 port 2222: Connection refused", TRANSIENT),
    ],
)  # fmt: skip
def test_ssh_outcomes_are_classified(rc: int, stderr: str, want: str) -> None:
    assert classify_login(rc, stderr) == want


# -- the console ---------------------------------------------------------------------------------

ESC = "\x1b"
BOOTED = f"""Welcome to {ESC}[1mDebian GNU/Linux 12 (bookworm){ESC}[0m!
[{ESC}[0;32m  OK  {ESC}[0m] Finished {ESC}[0;1;39mcloud-init-local.…l cloud-init job (pre-networking).
[   50.670386] cloud-init[342]: Cloud-init v. 22.4.2 running 'init-local' at Mon, 30 Nov 2026 16:22:25 +0000. Up 49.89 seconds.
[   72.342603] cloud-init[381]: Cloud-init v. 22.4.2 running 'init' at Mon, 30 Nov 2026 16:22:47 +0000. Up 71.93 seconds.
[{ESC}[0;32m  OK  {ESC}[0m] Started {ESC}[0;1;39mssh.service{ESC}[0m - OpenBSD Secure Shell server.
Debian GNU/Linux 12 debian12-3ef9617c ttyS0
debian12-3ef9617c login: [   95.958248] cloud-init[455]: Cloud-init v. 22.4.2 running 'modules:config' at Mon, 30 Nov 2026 16:23:08 +0000. Up 93.87 seconds.
"""
FINISHED = "[  118.288469] cloud-init[487]: Cloud-init v. 22.4.2 finished at Mon, 30 Nov 2026 16:23:33 +0000. Datasource {ds}.  Up 118.21 seconds\n"
NO_CLOUD_INIT = f"""[{ESC}[0;32m  OK  {ESC}[0m] Reached target {ESC}[0;1;39mnetwork.target{ESC}[0m - Network.
[{ESC}[0;32m  OK  {ESC}[0m] Started {ESC}[0;1;39mssh.service{ESC}[0m - OpenBSD Secure Shell server.
localhost login:
"""


def test_console_facts_of_a_good_boot() -> None:
    facts = parse_console(
        BOOTED + FINISHED.format(ds="DataSourceNoCloud [seed=/dev/vdb][dsmode=net]")
    )
    assert facts.status_lines and facts.login_prompt and facts.sshd_started
    assert facts.cloud_init_stages == ("init-local", "init", "modules:config")
    assert facts.datasource == "DataSourceNoCloud [seed=/dev/vdb][dsmode=net]"
    assert not facts.no_datasource and facts.cloud_init_version == "22.4.2"


def test_console_facts_of_failures() -> None:
    failed = parse_console(
        f"[{ESC}[0;1;31mFAILED{ESC}[0m] Failed to start {ESC}[0;1;39mcloud-init-local.service{ESC}[0m - x.\n"
        f"[{ESC}[0;1;31mFAILED{ESC}[0m] Failed to start {ESC}[0;1;39mssh.service{ESC}[0m - OpenBSD.\n"
    )
    assert failed.cloud_init_failed and failed.sshd_failed and failed.status_lines
    assert parse_console(FINISHED.format(ds="DataSourceNone")).no_datasource
    quiet = parse_console("Linux version 6.1\nlocalhost login:\n")
    assert not quiet.status_lines  # systemd prints elsewhere: nothing is concluded


# -- the rules ---------------------------------------------------------------------------------------

UP = "SSH-2.0-OpenSSH_9.2p1"


def test_no_common_algorithm_is_certain_on_the_second_look() -> None:
    d = Diagnosis("debian12 on 127.0.0.2:2222")
    obs = Observation(
        UP, NEGOTIATION, "Unable to negotiate", ("no common cipher: sshd offers aes128-cbc",)
    )
    assert d.cause(10.0, obs) is None
    cause = d.cause(13.0, obs)
    assert cause is not None and "ssh-crypto" in cause and "aes128-cbc" in cause


def test_cloud_init_that_never_ran_is_certain_30_s_after_the_prompt() -> None:
    d = Diagnosis("vm", "console.log")
    facts = parse_console(NO_CLOUD_INIT)
    refused = Observation(UP, REFUSED, "Permission denied (publickey).")
    assert d.cause(100.0, refused, facts) is None
    assert d.cause(120.0, refused, facts) is None
    cause = d.cause(131.0, refused, facts)
    assert cause is not None and "cloud-init did not run" in cause and "console.log" in cause


def test_no_datasource_is_certain_at_once_a_failed_unit_after_a_minute() -> None:
    none = parse_console(BOOTED + FINISHED.format(ds="DataSourceNone"))
    cause = Diagnosis("vm").cause(1.0, Observation(None, None, "refused"), none)
    assert cause is not None and "DataSourceNone" in cause and "cloud-init-datasources" in cause
    failed = parse_console(
        f"[{ESC}[0;1;31mFAILED{ESC}[0m] Failed to start cloud-init.service - x.\n"
    )
    d = Diagnosis("vm")
    assert d.cause(1.0, Observation(None), failed) is None  # its later stages may still log in
    assert d.cause(60.0, Observation(None), failed) is None
    cause = d.cause(61.5, Observation(None), failed)
    assert cause is not None and "cloud-init failed to start" in cause


def test_seed_key_refused_after_cloud_init_finished() -> None:
    d = Diagnosis("vm")
    facts = parse_console(BOOTED + FINISHED.format(ds="DataSourceNoCloud [seed=/dev/vdb]"))
    refused = Observation(UP, REFUSED, "Permission denied (publickey).")
    assert d.cause(200.0, refused, facts) is None
    cause = d.cause(206.0, refused, facts)
    assert cause is not None and "refuses the seed's key after cloud-init finished" in cause


def test_nothing_on_port_22_after_the_prompt() -> None:
    d = Diagnosis("vm")
    facts = parse_console(BOOTED + FINISHED.format(ds="DataSourceNoCloud"))
    silent = Observation(None, None, "Connection refused")
    assert d.cause(10.0, silent, facts) is None
    cause = d.cause(56.0, silent, facts)
    assert cause is not None and "nothing listens on the SSH port" in cause


def test_without_a_console_the_ssh_side_decides() -> None:
    """XCP-ng: no serial console; sshd starts after cloud-init made the seed's user."""
    d = Diagnosis("vm")
    refused = Observation(UP, REFUSED, "Permission denied (publickey).")
    assert d.cause(0.0, refused) is None
    assert d.cause(59.0, refused) is None
    cause = d.cause(61.0, refused)
    assert cause is not None and "for 61 s while sshd answers" in cause
    quiet = Diagnosis("vm")
    assert quiet.cause(100.0, Observation(None), address_since=0.0) is None
    cause = quiet.cause(181.0, Observation(None, detail="timed out"), address_since=0.0)
    assert cause is not None and "nothing answers on the SSH port" in cause


def test_a_slow_boot_is_never_blamed() -> None:
    """Transient failures and a booting clone keep the wait going, whatever their number."""
    d = Diagnosis("vm", "c.log")
    booting = parse_console(BOOTED)  # cloud-init still running its stages
    for t in range(0, 600, 3):
        assert d.cause(float(t), Observation(None, detail="no banner"), parse_console("")) is None
        assert (
            d.cause(float(t), Observation(UP, TRANSIENT, "reset"), booting if t < 300 else None)
            is None
        )


def test_a_failed_negotiation_is_named_although_ssh_prints_nothing(tmp_path: Path) -> None:
    """ssh logs "Unable to negotiate" at INFO, under the harness's LogLevel=ERROR: the real
    client fails silently, and the observation still names the cause from sshd's KEXINIT."""
    key = tmp_path / "id_ed25519"
    key.write_text("")
    with fake_sshd(WEAK) as (host, port):
        obs = reach.observe(reach.Target("tester", host, port, key, None), "true", 20)
    assert obs.login == NEGOTIATION, obs
    assert obs.mismatch and obs.mismatch[0].startswith("no common cipher: sshd offers aes128-cbc")


def test_cloud_init_not_running_explains_a_failed_sshd() -> None:
    """No cloud-init, no host keys, sshd fails: the cause told is cloud-init's, not sshd's."""
    facts = parse_console(
        f"[{ESC}[0;1;31mFAILED{ESC}[0m] Failed to start ssh.service - OpenBSD Secure Shell.\n"
        + NO_CLOUD_INIT.replace("Started", "Reached")
    )
    d = Diagnosis("vm")
    assert d.cause(0.0, Observation(None), facts) is None
    assert d.cause(25.0, Observation(None), facts) is None
    cause = d.cause(31.0, Observation(None), facts)
    assert cause is not None and "cloud-init did not run" in cause


FIRMWARE = Path(__file__).resolve().parents[1] / "data" / "console" / "ovmf-nothing-to-boot.log"
GOOD_START = (
    'BdsDxe: failed to load Boot0002 "UEFI Misc Device 2" from PciRoot(0x0)/Pci(0x4,0x0): '
    'Not Found\r\nBdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x3,0x0)\r\n'
    'BdsDxe: starting Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x3,0x0)\r\n'
)


def test_a_disk_the_firmware_cannot_boot_is_named_at_the_first_look() -> None:
    """OVMF's own console (captured from QEMU with a disk of zeros): it fails the disk's boot
    option, then tries the network; no OS line ever comes."""
    facts = parse_console(FIRMWARE.read_bytes().decode("utf-8", "replace"))
    assert facts.firmware_gave_up and not facts.status_lines
    assert facts.firmware_failed[0].startswith('Boot0001 "UEFI Misc Device" from PciRoot(')
    d = Diagnosis("debian12 on 127.0.0.2:2222", "/a/console.log")
    cause = d.cause(5.0, Observation(None, detail="no banner"), facts)
    assert cause and "found nothing to boot on the disk" in cause
    assert 'Boot0001 "UEFI Misc Device"' in cause and "/a/console.log" in cause


def test_a_boot_option_that_fails_before_the_disk_boots_is_no_finding() -> None:
    started = parse_console(GOOD_START)
    assert started.firmware_failed and not started.firmware_gave_up
    booted_after_network = parse_console(">>Start PXE over IPv4.\r\n" + BOOTED)
    assert not booted_after_network.firmware_gave_up, "an OS booted: the network try was moot"
    d = Diagnosis("debian12 on 127.0.0.2:2222")
    assert d.cause(5.0, Observation(None, detail="no banner"), started) is None
