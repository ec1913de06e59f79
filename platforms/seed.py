"""The NoCloud seed (`cidata`) every booted clone gets, on QEMU and on XCP-ng alike.

It carries a fresh SSH key, the instance id, a hostname and a user-data marker, so no
credential is baked into the image and the checks can prove they reached this VM and no
other. The seed is a small FAT image labelled CIDATA, made with mkfs.vfat and mcopy, which
needs no mount and no root, and imports into XCP-ng as a raw VDI.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

SEED_SIZE = 2 * 1024 * 1024  # 2 MiB: a FAT12 volume with room for the three files
CHECK_USER = "tester"  # the account the seed creates for the checks; not present in the image


@dataclass(frozen=True)
class Seed:
    image: Path  # raw FAT image labelled CIDATA
    key_path: Path  # private key of CHECK_USER
    public_key: str
    host_public_key: str  # the host key the seed installs, for a strict known_hosts
    known_hosts_line_key: str  # "ssh-ed25519 AAAA..." of the host
    instance_id: str
    hostname: str
    marker: str
    user: str = CHECK_USER
    user_data: str = ""  # the cloud-config the seed carries, for datasources other than NoCloud

    def known_hosts(self, path: Path, address: str, port: int) -> Path:
        """Write a known_hosts that trusts only this VM's seeded host key."""
        host = address if port == 22 else f"[{address}]:{port}"
        path.write_text(f"{host} {self.known_hosts_line_key}\n")
        return path


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def write_cidata(image: Path, srcdir: Path, files: dict[str, str]) -> Path:
    """A FAT image labelled CIDATA holding `files` (name -> text), made without a mount."""
    srcdir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (srcdir / name).write_text(text)
    with image.open("wb") as fh:
        fh.truncate(SEED_SIZE)
    subprocess.run(["mkfs.vfat", "-n", "CIDATA", str(image)], check=True, capture_output=True)
    subprocess.run(
        ["mcopy", "-i", str(image), *(str(srcdir / n) for n in files), "::/"],
        check=True,
        capture_output=True,
    )
    return image


def make_seed(workdir: Path, os_name: str, run_id: str, instance_id: str | None = None) -> Seed:
    """Create keys and the CIDATA image under workdir (which the caller removes at teardown)."""
    workdir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    instance_id = instance_id or f"i-{run_id}-{os_name}-{token}"
    hostname = f"{os_name}-{token}"
    marker = f"seed-marker-{secrets.token_hex(8)}"

    key = workdir / "id_ed25519"
    public_key = _keygen(key, f"{CHECK_USER}@{run_id}")
    host_key = workdir / "ssh_host_ed25519_key"
    host_public = _keygen(host_key, f"host@{hostname}")
    host_private = host_key.read_text()

    meta = f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"
    user_data = "#cloud-config\n" + json.dumps(
        {
            "hostname": hostname,
            # The image's own default user (`system_info.default_user`), renamed, with the
            # seed's key and sudo: cloud-init's `user` overrides those keys only, so the checks'
            # account has the groups an operator's first account gets, and the template's own
            # access policy (sshd's AllowGroups, pam_access) admits or refuses it as it would
            # that account.
            "user": {
                "name": CHECK_USER,
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "shell": "/bin/bash",
                "lock_passwd": True,
                "ssh_authorized_keys": [public_key],
            },
            "users": ["default"],
            "ssh_pwauth": False,
            "ssh_keys": {"ed25519_private": host_private, "ed25519_public": host_public},
            "write_files": [{"path": "/var/lib/template-checks/marker", "content": marker + "\n"}],
        },
        indent=1,
    )
    # No network-config: cloud-init's fallback (DHCP on the first NIC) works with every
    # renderer; a v2 `match` stanza is rendered by ifupdown as an interface named after its key.
    files = {"meta-data": meta, "user-data": user_data + "\n"}
    image = write_cidata(workdir / "seed.img", workdir, files)
    host_key.unlink()  # the private host key lives only inside the seed image
    return Seed(
        image=image,
        key_path=key,
        public_key=public_key,
        host_public_key=host_public,
        known_hosts_line_key=" ".join(host_public.split()[:2]),
        instance_id=instance_id,
        hostname=hostname,
        marker=marker,
        user_data=files["user-data"],
    )
