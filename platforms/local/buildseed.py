"""The NoCloud seed of a local *build*: the account Packer's SSH communicator logs in as.

The base disk has no password and no key; this seed, attached only while Packer builds,
creates BUILD_USER with a fresh key and passwordless sudo. The seal script deletes that user
and cloud-init's state at the end of the build, so nothing of it survives in the image.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from platforms.seed import write_cidata

BUILD_USER = "packer"


@dataclass(frozen=True)
class BuildSeed:
    image: Path
    key_path: Path
    user: str
    instance_id: str


def make_build_seed(workdir: Path, os_name: str, run_id: str, user: str = BUILD_USER) -> BuildSeed:
    """Write a fresh key pair and a CIDATA image under workdir (removed with the build)."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "build_ed25519"
    for stale in (key, key.with_suffix(".pub")):
        stale.unlink(missing_ok=True)
    comment = f"{user}@build-{run_id}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    public_key = key.with_suffix(".pub").read_text().strip()
    instance_id = f"build-{run_id}-{os_name}-{secrets.token_hex(4)}"
    user_data = "#cloud-config\n" + json.dumps(
        {
            "users": [
                {
                    "name": user,
                    "sudo": "ALL=(ALL) NOPASSWD:ALL",
                    "shell": "/bin/bash",
                    "lock_passwd": True,
                    "ssh_authorized_keys": [public_key],
                }
            ],
            "ssh_pwauth": False,
            "disable_root": True,
        },
        indent=1,
    )
    files = {
        "meta-data": f"instance-id: {instance_id}\nlocal-hostname: build-{os_name}\n",
        "user-data": user_data + "\n",
        "network-config": (
            "version: 2\nethernets:\n  all:\n    match: {name: 'e*'}\n    dhcp4: true\n"
        ),
    }
    image = write_cidata(workdir / "build-seed.img", workdir / "build-seed", files)
    return BuildSeed(image=image, key_path=key, user=user, instance_id=instance_id)
