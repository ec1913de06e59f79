"""Detached SSH signatures (`ssh-keygen -Y sign -n file`), so that verifiers need only OpenSSH.

The signing key is an OpenSSH private key held as a CI secret and handed over in the
environment only (TEMPLATE_SIGNING_KEY, core/settings.py): never on a command line, never in a
log, metadata or an exception message. For each signature it is written to a file readable by
this user alone, in a private folder (in memory, /dev/shm, where there is one), named to
ssh-keygen by that path, and removed as soon as ssh-keygen returns. The data to sign goes on
ssh-keygen's standard input, the signature comes back on its standard output.

Verification (`store fetch`, `store diff`) runs the three steps OpenSSH offers, so that a
refusal says which one failed:

1. `ssh-keygen -Y check-novalidate`: the signature is a valid signature of these bytes by some
   key (a flipped byte in the signed file fails here);
2. `ssh-keygen -Y find-principals`: that key is in the allowed-signers file, within its
   validity window at the time the build says it was published (`-Overify-time`, as git does
   with a commit's time; the time is itself covered by the signature, through metadata.json's
   line in SHA256SUMS);
3. `ssh-keygen -Y verify` as that principal, in the `file` namespace.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.errors import InfrastructureError, UsageError
from core.ownership import scratch
from publish.stores.base import IntegrityError

NAMESPACE = "file"
SIGNATURE_SUFFIX = ".sig"
ENV_KEY = "TEMPLATE_SIGNING_KEY"
TIMEOUT_S = 60
_SHM = Path("/dev/shm")


class SignatureRefused(IntegrityError):
    """A signature that does not verify against the allowed signers: nothing it covers is
    trusted."""


@dataclass(frozen=True)
class Verified:
    principal: str  # as the allowed-signers file names the key
    fingerprint: str  # SHA256:...


@dataclass(frozen=True)
class SigningKey:
    """A loaded, checked signing key; its private half is in no repr and no message."""

    public: str  # "ssh-ed25519 AAAA... comment"
    fingerprint: str  # SHA256:...
    key_type: str  # ED25519, RSA, ECDSA
    _private: str = field(repr=False)

    def describe(self) -> str:
        return f"{self.key_type} key {self.fingerprint}"

    def sign(self, data: bytes) -> bytes:
        """The armored SSH signature of `data` in the `file` namespace."""
        with _key_file(self._private) as path:
            proc = _ssh_keygen(["-Y", "sign", "-q", "-f", str(path), "-n", NAMESPACE], data)
        if proc.returncode != 0 or b"BEGIN SSH SIGNATURE" not in proc.stdout:
            raise InfrastructureError(
                f"ssh-keygen could not sign with {self.describe()}: {_reason(proc)}"
            )
        return proc.stdout


def load_signing_key(text: str | None) -> SigningKey | None:
    """The key of TEMPLATE_SIGNING_KEY, checked; None when no key is configured. A key that
    ssh-keygen cannot use is one UsageError naming the fix (and nothing of the key)."""
    if not text or not text.strip():
        return None
    private = text.replace("\r\n", "\n").strip() + "\n"
    if "PRIVATE KEY-----" not in private:
        raise UsageError(
            f"{ENV_KEY} is not an OpenSSH private key (expected the text of a file made by "
            "ssh-keygen -t ed25519, from -----BEGIN OPENSSH PRIVATE KEY----- to its END line)"
        )
    with _key_file(private) as path:
        pub = _ssh_keygen(["-y", "-P", "", "-f", str(path)])
    if pub.returncode != 0:
        encrypted = b"passphrase" in pub.stderr
        raise UsageError(
            f"{ENV_KEY} is protected by a passphrase: store the key without one (ssh-keygen -p "
            "-N '' -f KEY) as the CI secret"
            if encrypted
            else f"{ENV_KEY} cannot be loaded by ssh-keygen (damaged or truncated key); "
            "store the whole private key file as the CI secret"
        )
    public = pub.stdout.decode().strip()
    with scratch("xcpng-pubkey") as tmp:
        (tmp / "key.pub").write_text(public + "\n")
        info = _ssh_keygen(["-l", "-f", str(tmp / "key.pub")])
    fields = info.stdout.decode().split()
    if info.returncode != 0 or len(fields) < 3:
        raise InfrastructureError(f"ssh-keygen -l could not fingerprint the key: {_reason(info)}")
    return SigningKey(
        public=public, fingerprint=fields[1], key_type=fields[-1].strip("()"), _private=private
    )


def verify_signature(
    data: bytes, signature: bytes, allowed_signers: Path, *, what: str, at: datetime | None
) -> Verified:
    """Check `signature` over `data` against the allowed-signers file (see module doc);
    SignatureRefused naming what failed, in one line."""
    if not allowed_signers.is_file():
        raise UsageError(
            f"allowed-signers file {allowed_signers} does not exist; pass the file that lists "
            "the publisher's key (--allowed-signers, TEMPLATE_ALLOWED_SIGNERS)"
        )
    when = ["-O", f"verify-time={_time(at)}"] if at is not None else []
    with scratch("xcpng-verify") as tmp:
        sig = tmp / "signature"
        sig.write_bytes(signature)
        check = _ssh_keygen(["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)], data)
        if check.returncode != 0:
            raise SignatureRefused(
                f"{what} does not match its signature ({_reason(check)}): it was changed "
                "after it was signed, or the signature is damaged; nothing of this build is "
                "trusted"
            )
        fingerprint = _fingerprint(check.stdout.decode())
        found = _ssh_keygen(
            ["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers), *when]
        )
        principals = found.stdout.decode().split()
        if found.returncode != 0 or not principals:
            why = _reason(found)
            listed = "expired" in why or "not yet valid" in why
            raise SignatureRefused(
                f"{what} is signed by key {fingerprint}, which {allowed_signers} "
                + (f"does not allow at {_time(at)} ({why})" if listed else "does not list")
                + "; nothing of this build is trusted"
            )
        args = ["-Y", "verify", "-f", str(allowed_signers), "-I", principals[0]]
        ok = _ssh_keygen([*args, "-n", NAMESPACE, "-s", str(sig), *when], data)
        if ok.returncode != 0:
            raise SignatureRefused(
                f"{what}: signature by {principals[0]} ({fingerprint}) refused: {_reason(ok)}"
            )
    return Verified(principal=principals[0], fingerprint=fingerprint)


def _time(at: datetime | None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def _fingerprint(text: str) -> str:
    return next((w for w in text.split() if w.startswith("SHA256:")), "(unknown)")


def _reason(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Signing ", "Write signature"))]
    return "; ".join(lines[-2:]) or f"ssh-keygen exit {proc.returncode}"


def _ssh_keygen(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """ssh-keygen with `args` (paths only, never key material), no terminal to prompt on, and
    an environment without the signing key."""
    env = {k: v for k, v in os.environ.items() if k != ENV_KEY}
    try:
        return subprocess.run(
            ["ssh-keygen", *args],
            input=stdin,
            capture_output=True,
            env=env,
            timeout=TIMEOUT_S,
            check=False,
            start_new_session=True,  # no controlling terminal: a prompt fails instead of hanging
        )
    except FileNotFoundError:
        raise InfrastructureError(
            "ssh-keygen is missing: apt-get install openssh-client (signatures need it)"
        ) from None
    except subprocess.TimeoutExpired:
        raise InfrastructureError(
            f"ssh-keygen {args[0]} {args[1]} took over {TIMEOUT_S}s"
        ) from None


@contextlib.contextmanager
def _key_file(private: str) -> Iterator[Path]:
    """The private key in a file only this user can read, removed on exit."""
    parent = _SHM if _SHM.is_dir() and os.access(_SHM, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="xcpng-signing-", dir=parent))
    path = folder / "key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(private)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()
