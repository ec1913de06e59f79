"""The SSH client the checks use must agree with the hardened server policy.

The policy lives in packer/scripts/20-ssh-hardening.sh. testinfra's `ssh` backend runs the
OpenSSH client (`ssh -G` shows what it offers); paramiko, testinfra's default backend, is
compared too, to document why the harness does not rely on it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import paramiko
import pytest

from validations import sshd

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "packer/scripts/20-ssh-hardening.sh"


def policy() -> dict[str, list[str]]:
    text = SCRIPT.read_text()
    out = {}
    for var, key in (("CIPHERS", "ciphers"), ("KEX", "kexalgorithms"), ("MACS", "macs")):
        m = re.search(rf'^{var}="([^"]+)"', text, re.M)
        assert m, f"{SCRIPT.name} has no {var}= policy line"
        out[key] = m.group(1).split()
    return out


def client_offer() -> dict[str, list[str]]:
    """What the OpenSSH client offers by default, from `ssh -G` (no config file read)."""
    out = subprocess.run(
        ["ssh", "-G", "-F", "/dev/null", "template.invalid"],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    offer = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key in ("ciphers", "kexalgorithms", "macs", "hostkeyalgorithms"):
            offer[key] = value.split(",")
    return offer


def negotiated(client: list[str], server: list[str]) -> str | None:
    """RFC 4253 7.1: the first algorithm on the client's list that the server also supports."""
    return next((a for a in client if a in server), None)


def test_policy_is_strong_only() -> None:
    p = policy()
    assert set(p["ciphers"]) <= sshd.STRONG_CIPHERS
    assert set(p["kexalgorithms"]) <= sshd.STRONG_KEX
    assert set(p["macs"]) <= sshd.STRONG_MACS


@pytest.mark.parametrize("key", ["ciphers", "kexalgorithms", "macs"])
def test_openssh_client_agrees_with_the_policy(key: str) -> None:
    offer = client_offer()
    chosen = negotiated(offer[key], policy()[key])
    assert chosen is not None, f"OpenSSH client and hardened sshd share no {key}"
    assert chosen in (sshd.STRONG_CIPHERS | sshd.STRONG_KEX | sshd.STRONG_MACS)


def test_openssh_client_accepts_the_seeded_host_key_type() -> None:
    # platforms/seed.py installs an ed25519 host key and writes a strict known_hosts for it.
    assert "ssh-ed25519" in client_offer()["hostkeyalgorithms"]


def test_paramiko_offer_is_documented() -> None:
    """paramiko negotiates with this policy only through aes-ctr/gcm and curve25519@libssh.org:
    it lacks chacha20-poly1305 and sntrup761, so a stricter policy (chacha20 + sntrup only)
    would lock it out. The harness uses testinfra's `ssh` backend (OpenSSH) instead."""
    t: Any = paramiko.Transport
    # The server keeps only what its OpenSSH knows; this machine runs Debian 12's OpenSSH, the
    # same build as the Debian 12 template, so `ssh -Q kex` stands for the server here.
    known = set(subprocess.run(["ssh", "-Q", "kex"], capture_output=True, text=True).stdout.split())
    p = {"kexalgorithms": [a for a in policy()["kexalgorithms"] if a in known]}
    assert "chacha20-poly1305@openssh.com" not in t._preferred_ciphers
    assert "sntrup761x25519-sha512@openssh.com" not in t._preferred_kex
    assert negotiated(list(t._preferred_kex), p["kexalgorithms"]) == "curve25519-sha256@libssh.org"
    strict = {
        "ciphers": ["chacha20-poly1305@openssh.com"],
        "kex": ["sntrup761x25519-sha512@openssh.com"],
    }
    assert negotiated(list(t._preferred_ciphers), strict["ciphers"]) is None
    assert negotiated(list(t._preferred_kex), strict["kex"]) is None


def test_policy_caps_auth_tries_so_the_client_must_offer_one_key() -> None:
    """MaxAuthTries 3: a client that offers every key of an agent is cut off before the
    right one; the host fixture must pass IdentitiesOnly=yes with the seed's key."""
    text = SCRIPT.read_text()
    tries = int(re.search(r"^MaxAuthTries (\d+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert tries <= 4
    from core.ssh import client_options

    options = client_options(Path("/k"), Path("/kh"))
    assert "IdentitiesOnly=yes" in options and options[:2] == ["-i", "/k"]
    fixtures = (REPO / "harness/fixtures.py").read_text()
    assert "client_options(vm.key_path" in fixtures and 'f"ssh://' in fixtures
