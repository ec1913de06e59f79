"""SSH signing keys made by OpenSSH's ssh-keygen for the tests, and allowed-signers files."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Keypair:
    private: str  # the file's text, as a CI secret holds it
    public: str  # "ssh-ed25519 AAAA... comment"
    path: Path

    def body_lines(self) -> list[str]:
        """The base64 lines of the private key: none may ever show anywhere."""
        return [ln for ln in self.private.splitlines() if ln and not ln.startswith("-----")]


def make_key(folder: Path, name: str, passphrase: str = "", kind: str = "ed25519") -> Keypair:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", f"{name}@ci", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return Keypair(path.read_text(), path.with_suffix(".pub").read_text().strip(), path)


def allowed_signers(path: Path, *entries: tuple[str, Keypair, str]) -> Path:
    """An allowed-signers file: (principal, key, options) per line, e.g. options
    'namespaces="file",valid-before="20270101Z"'."""
    lines = [f"{who} {opts + ' ' if opts else ''}{key.public}" for who, key, opts in entries]
    path.write_text("\n".join(lines) + "\n")
    return path
