"""Detached SSH signatures with OpenSSH's ssh-keygen and keys made here: a good signature,
a flipped byte, a key the allowed signers do not list, validity windows (key rotation), and a
signing key that never leaves the environment: not in a child's command line or environment,
a repr, an error message or a log."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.errors import UsageError
from core.redact import Redactor
from core.settings import Settings
from publish import signing
from publish.signing import SignatureRefused, load_signing_key, verify_signature
from tests.support.sshkeys import Keypair, allowed_signers, make_key

DATA = b"0123abcd  debian12.xva\n"
JUNE_2026 = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Keypair]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: make_key(folder, name) for name in ("ci2026", "ci2027", "rogue")}


def test_sign_then_verify_then_refuse_a_flipped_byte(
    keys: dict[str, Keypair], tmp_path: Path
) -> None:
    key = load_signing_key(keys["ci2026"].private)
    assert key is not None and key.key_type == "ED25519" and key.fingerprint.startswith("SHA256:")
    sig = key.sign(DATA)
    assert sig.startswith(b"-----BEGIN SSH SIGNATURE-----")
    allowed = allowed_signers(tmp_path / "allowed", ("builds@example.org", keys["ci2026"], ""))
    ok = verify_signature(DATA, sig, allowed, what="SHA256SUMS", at=None)
    assert (ok.principal, ok.fingerprint) == ("builds@example.org", key.fingerprint)
    # OpenSSH alone verifies it too, as the docs tell users to
    sig_file = tmp_path / "SHA256SUMS.sig"
    sig_file.write_bytes(sig)
    out = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "builds@example.org",
         "-n", "file", "-s", str(sig_file)],
        input=DATA, capture_output=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    flipped = bytearray(DATA)
    flipped[3] ^= 0x01
    with pytest.raises(SignatureRefused) as exc:
        verify_signature(bytes(flipped), sig, allowed, what="SHA256SUMS of x", at=None)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("SHA256SUMS of x does not match its signature (")
    assert "incorrect signature" in message


def test_a_key_not_in_allowed_signers_is_refused(keys: dict[str, Keypair], tmp_path: Path) -> None:
    rogue = load_signing_key(keys["rogue"].private)
    assert rogue is not None
    allowed = allowed_signers(tmp_path / "allowed", ("builds@example.org", keys["ci2026"], ""))
    with pytest.raises(SignatureRefused) as exc:
        verify_signature(DATA, rogue.sign(DATA), allowed, what="SHA256SUMS", at=None)
    assert str(exc.value) == (
        f"SHA256SUMS is signed by key {rogue.fingerprint}, which {allowed} does not list; "
        "nothing of this build is trusted"
    )


def test_rotation_two_keys_with_validity_windows(keys: dict[str, Keypair], tmp_path: Path) -> None:
    """The old key stays listed for what it signed before its end; the new one from then."""
    old = load_signing_key(keys["ci2026"].private)
    new = load_signing_key(keys["ci2027"].private)
    assert old is not None and new is not None
    allowed = allowed_signers(
        tmp_path / "allowed",
        ("builds@example.org", keys["ci2026"], 'namespaces="file",valid-before="20270101Z"'),
        ("builds@example.org", keys["ci2027"], 'namespaces="file",valid-after="20261201Z"'),
    )
    assert verify_signature(DATA, old.sign(DATA), allowed, what="a", at=JUNE_2026)
    later = datetime(2027, 3, 1, tzinfo=UTC)
    assert verify_signature(DATA, new.sign(DATA), allowed, what="a", at=later)
    with pytest.raises(SignatureRefused, match="does not allow at 20270301000000Z"):
        verify_signature(DATA, old.sign(DATA), allowed, what="a", at=later)
    with pytest.raises(SignatureRefused, match="does not allow at 20260601000000Z"):
        verify_signature(DATA, new.sign(DATA), allowed, what="a", at=JUNE_2026)


def test_a_missing_allowed_signers_file_is_a_usage_error(
    keys: dict[str, Keypair], tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match=r"allowed-signers file .* does not exist"):
        verify_signature(DATA, b"sig", tmp_path / "nope", what="a", at=None)


def test_unusable_keys_are_one_usage_error_naming_the_fix(tmp_path: Path) -> None:
    assert load_signing_key(None) is None and load_signing_key("  \n") is None
    with pytest.raises(UsageError, match="is not an OpenSSH private key"):
        load_signing_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKe a public key")
    locked = make_key(tmp_path, "locked", passphrase="correct horse battery")
    with pytest.raises(UsageError, match="protected by a passphrase") as exc:
        load_signing_key(locked.private)
    assert not any(line in str(exc.value) for line in locked.body_lines())
    broken = make_key(tmp_path, "broken")
    lines = broken.private.splitlines()
    damaged = "\n".join([lines[0], *lines[1:3], lines[-1]])  # the middle cut out
    with pytest.raises(UsageError, match="cannot be loaded by ssh-keygen") as exc:
        load_signing_key(damaged)
    assert not any(line in str(exc.value) for line in broken.body_lines())


def test_a_key_pasted_with_crlf_and_without_its_last_newline_loads(
    keys: dict[str, Keypair],
) -> None:
    text = keys["ci2026"].private.strip().replace("\n", "\r\n")
    assert load_signing_key(text) is not None


def test_the_key_never_reaches_a_child_a_repr_or_a_log(
    keys: dict[str, Keypair], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = keys["ci2026"]
    monkeypatch.setenv(signing.ENV_KEY, secret.private)
    seen: list[dict[str, Any]] = []
    real_run = subprocess.run

    def spy(argv: list[str], **kw: Any) -> Any:
        seen.append({"argv": argv, "env": kw.get("env"), "input": kw.get("input")})
        return real_run(argv, **kw)

    monkeypatch.setattr(signing.subprocess, "run", spy)
    key = load_signing_key(secret.private)
    assert key is not None
    key.sign(DATA)
    assert seen
    for call in seen:
        text = " ".join(call["argv"])
        assert not any(line in text for line in secret.body_lines()), call["argv"]
        assert call["env"] is not None and signing.ENV_KEY not in call["env"]
        assert not any(line.encode() in (call["input"] or b"") for line in secret.body_lines())
    assert not any(line in repr(key) for line in secret.body_lines())
    # the key file lived only while ssh-keygen ran
    assert not list(Path("/dev/shm").glob("xcpng-signing-*"))
    settings = Settings.from_env(env={"TEMPLATE_SIGNING_KEY": secret.private})
    assert not any(line in repr(settings) for line in secret.body_lines())
    redact = Redactor(settings.secrets())
    leaked = f"oops: {secret.private}\nand a line: {secret.body_lines()[1]}"
    assert not any(line in redact(leaked) for line in secret.body_lines())


def test_the_key_is_refused_on_a_command_line() -> None:
    with pytest.raises(UsageError, match="--signing-key is a secret: set TEMPLATE_SIGNING_KEY"):
        Settings.resolve({"signing_key": "-----BEGIN OPENSSH PRIVATE KEY-----"}, env={})
