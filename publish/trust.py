"""Whether a published build can be trusted, decided before any of its checksums is used.

For a build of metadata v3: its SHA256SUMS signature is checked against the allowed-signers
file (publish/signing.py), at the time the build says it was published; then metadata.json's
own bytes must match their line in SHA256SUMS (so that time, and every digest metadata.json
gives, are covered by the signature too); then the artifact's and every listed file's digest
in metadata.json must agree with SHA256SUMS. Only then do the readers (fetch, diff) use a
digest to check a download.

Policy, the same for every reader:
- an allowed-signers file given: the build must be signed by a key it allows, else refused
  (an unsigned build only with --allow-unsigned);
- none given: a signed build is refused, since its signature cannot be checked here (name the
  file, or --allow-unsigned to take it on its checksums alone); an unsigned build is taken on
  its checksums, and said to be unsigned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.errors import UsageError
from publish.metadata import is_signed, listed_digests
from publish.signing import SignatureRefused, Verified, verify_signature
from publish.source import Build
from publish.stores.base import IntegrityError
from publish.sums import SUMS, SumsError, parse, sha256

METADATA = "metadata.json"


@dataclass(frozen=True)
class Trust:
    """What a reader may rely on for one build."""

    sums: dict[str, str]  # name -> sha256 every download is checked against
    signed_by: Verified | None  # None: unsigned, or a signature not checked (allow_unsigned)
    state: str  # "signed", "unsigned", "signature not checked", "legacy" (metadata v1/v2)
    # the very bytes of SHA256SUMS and its signature that were checked (fetch writes these,
    # never a second read of the store, which could have changed in between)
    sums_raw: bytes = b""
    signature_raw: bytes | None = None

    def line(self, build: Build) -> str:
        if self.signed_by is not None:
            return (
                f"{build.os_name} {build.build_id}: signature good "
                f"({self.signed_by.principal}, {self.signed_by.fingerprint}); "
                f"{len(self.sums)} files listed in {SUMS}"
            )
        return f"{build.os_name} {build.build_id}: {self.state}; checked against its checksums only"


def check_build(
    build: Build, allowed_signers: Path | None, *, allow_unsigned: bool = False
) -> Trust:
    """The build's trust, or SignatureRefused / IntegrityError / UsageError in one line."""
    meta, where = build.meta, f"{build.os_name} build {build.build_id}"
    if "signature" not in meta:  # metadata v1/v2: published before SHA256SUMS existed
        if allowed_signers is not None and not allow_unsigned:
            raise SignatureRefused(
                f"{where} predates signed builds (metadata {meta['schema']}): nothing "
                "vouches for it; pass --allow-unsigned to take it on its checksums"
            )
        return Trust(sums=listed_digests(meta), signed_by=None, state="legacy, unsigned build")
    sums_raw = _get(build, SUMS)
    verified: Verified | None = None
    sig: bytes | None = None
    if is_signed(meta):
        if allowed_signers is None and not allow_unsigned:
            raise UsageError(
                f"{where} is signed by {meta['signature']['key']}: pass the allowed-signers "
                "file that lists the publisher's key (--allowed-signers, "
                "TEMPLATE_ALLOWED_SIGNERS) to verify it, or --allow-unsigned to skip that"
            )
        if allowed_signers is not None:
            sig = _get(build, str(meta["signature"]["file"]))
            verified = verify_signature(
                sums_raw, sig, allowed_signers, what=f"{SUMS} of {where}", at=_published(meta)
            )
    elif allowed_signers is not None and not allow_unsigned:
        raise SignatureRefused(
            f"{where} is unsigned (no signing key when it was published): refused, since "
            f"allowed signers are set ({allowed_signers}); pass --allow-unsigned to take it"
        )
    try:
        sums = parse(sums_raw)
    except SumsError as e:
        raise IntegrityError(f"{where}: {e}") from None
    _agree(build, sums, where)
    state = "signed" if verified else ("signature not checked" if is_signed(meta) else "unsigned")
    return Trust(sums=sums, signed_by=verified, state=state, sums_raw=sums_raw, signature_raw=sig)


def _agree(build: Build, sums: dict[str, str], where: str) -> None:
    """metadata.json's bytes, the artifact, the VHD and every listed file match SHA256SUMS."""
    if build.raw is None or sums.get(METADATA) != sha256(build.raw):
        raise SignatureRefused(
            f"{where}: {METADATA} does not match its line in {SUMS}: it was changed after "
            "publishing; nothing of this build is trusted"
        )
    for name, digest in listed_digests(build.meta).items():
        if sums.get(name) != digest:
            raise SignatureRefused(
                f"{where}: {name} has sha256 {digest} in {METADATA} but "
                f"{sums.get(name) or 'no line'} in {SUMS}; nothing of this build is trusted"
            )


def verified_bytes(build: Build, name: str, trust: Trust) -> bytes:
    """A small object of the build folder, checked against SHA256SUMS."""
    data = _get(build, name)
    if trust.sums.get(name) != sha256(data):
        raise IntegrityError(
            f"{build.os_name} build {build.build_id}: {name} does not match {SUMS} "
            "(damaged or replaced in the store); xcpng-golden store verify --deep"
        )
    return data


def _get(build: Build, name: str) -> bytes:
    if build.store is None:
        raise UsageError(f"{build.path}: a fetched file carries no {name}; read the store")
    data = build.store.get_bytes(build.key(name))
    if data is None:
        raise IntegrityError(
            f"{build.store.describe(build.key(name))} is missing: the build is incomplete "
            "or damaged (xcpng-golden store verify)"
        )
    return data


def _published(meta: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(meta["published_at"]).replace("Z", "+00:00"))


def companions(build: Build, trust: Trust, allowed_signers: Path | None) -> dict[str, bytes]:
    """The build's SBOM, provenance (signature checked where the build is signed and signers
    are given; its subject must be this artifact), SHA256SUMS and its signature, each checked
    against SHA256SUMS: name -> bytes, for fetch to write beside the artifact."""
    meta = build.meta
    if "signature" not in meta:
        return {}
    names = [str(meta["sbom"]["name"]), str(meta["provenance"]["name"])]
    prov_sig = meta["provenance"].get("signature")
    if prov_sig:
        names.append(str(prov_sig))
    out = {name: verified_bytes(build, name, trust) for name in names}
    out[SUMS] = trust.sums_raw  # as checked: the signature (or, unsigned, nothing) vouches
    sig_name = meta["signature"].get("file")
    if sig_name:
        sig = trust.signature_raw  # None: a signature not checked here (--allow-unsigned)
        out[str(sig_name)] = sig if sig is not None else _get(build, str(sig_name))
    provenance = out[str(meta["provenance"]["name"])]
    where = f"provenance of {build.os_name} build {build.build_id}"
    if prov_sig and allowed_signers is not None and trust.signed_by is not None:
        verify_signature(
            provenance, out[str(prov_sig)], allowed_signers, what=where, at=_published(meta)
        )
    try:
        subject = json.loads(provenance)["subject"][0]
        digest = subject["digest"]["sha256"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise IntegrityError(f"{where} is not an in-toto statement with a subject") from None
    if subject.get("name") != build.name or digest != build.sha256:
        raise SignatureRefused(
            f"{where} is about {subject.get('name')} sha256 {digest}, not {build.name} "
            f"sha256 {build.sha256}; nothing of this build is trusted"
        )
    return out
