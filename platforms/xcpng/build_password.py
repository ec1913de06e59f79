"""The build password, which Packer types at the installer's boot prompt over XAPI's VNC
console (`boot_command`), so it must survive every layer between here and the installer:

- Packer's boot-command parser: `<` starts a special key (`<enter>`, `<wait>`), and the plugin
  renders each line as a Go template (`{{`);
- the VNC key events: US keysyms only, nothing outside printable ASCII;
- the kernel command line and the installer that reads it: a space ends the argument, quotes
  and backslashes are eaten, and d-i and anaconda read it through a shell (`$`, `;`, `*`, ...).

Letters, digits and `._+-` pass all of them unchanged. The XCP-ng platform makes a random one of
these for every build; an operator's own (`PKR_VAR_build_password`) is checked in preflight.
"""

from __future__ import annotations

import secrets
import string

ALPHABET = string.ascii_letters + string.digits + "._+-"
MIN_LENGTH, MAX_LENGTH = 16, 64  # long enough for d-i's weak-password question; the kernel
# command line (2048 bytes) holds it twice
GENERATED_LENGTH = 24
VARIABLE = "PKR_VAR_build_password"


def random_password(length: int = GENERATED_LENGTH) -> str:
    """A fresh password from the console-safe alphabet (~143 bits for 24 characters)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _kinds(chars: set[str]) -> list[str]:
    """What is wrong, by kind of character, so the message names no character of the secret."""
    kinds = {
        "whitespace": any(c.isspace() for c in chars),
        "non-ASCII": any(not c.isascii() for c in chars),
        "boot-command syntax (<>{})": any(c in "<>{}" for c in chars),
        "quotes or backslashes": any(c in "\"'`\\" for c in chars),
        "shell punctuation": any(
            c.isascii() and not c.isspace() and c not in "<>{}\"'`\\" for c in chars
        ),
    }
    return [k for k, present in kinds.items() if present]


def password_problem(password: str) -> str | None:
    """Why the console cannot type `password` reliably, in one line that never shows it."""
    bad = {c for c in password if c not in ALPHABET}
    if bad:
        return (
            f"{VARIABLE} holds characters the boot console cannot type "
            f"({', '.join(_kinds(bad))}); use only letters, digits and ._+- or unset it "
            "(the platform then makes a random one per build)"
        )
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return (
            f"{VARIABLE} is {len(password)} characters long; use {MIN_LENGTH} to {MAX_LENGTH} "
            "(or unset it: the platform then makes a random one per build)"
        )
    return None
