"""A build published with its SBOM, provenance, SHA256SUMS and SSH signatures (a key made here
by ssh-keygen), then read back: `store fetch` verifies the signature before it trusts any
checksum and refuses a flipped byte, another key, an unsigned build; `store diff` and the
catalog page show what changed between two builds; nothing half-published on a fault."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from publish import api
from publish.provenance import checks_digest
from publish.sbom import validation_errors
from publish.stores.local import LocalStore
from publish.verify import verify_tree
from tests.support.publishing import FAKE_SECRET, PACKAGES, Faulty, fake_os, write_results
from tests.support.sshkeys import Keypair, allowed_signers, make_key
from xcpng_golden import main as cli

PRINCIPAL = "builds@example.org"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Keypair]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: make_key(folder, name) for name in ("ci", "rogue")}


def settings(key: Keypair | None = None) -> Settings:
    env = {"AWS_SECRET_ACCESS_KEY": FAKE_SECRET}
    if key is not None:
        env["TEMPLATE_SIGNING_KEY"] = key.private
    return Settings.from_env(env=env)


def publish(root: Path, pub: Path, key: Keypair | None, **os_kw: Any) -> tuple[Path, list[str]]:
    """One debian12 build published to `pub`; its folder and the publisher's log lines."""
    path = write_results(root, [fake_os(root, "debian12", **os_kw)])
    lines: list[str] = []
    report = api.publish_results([path], str(pub), settings(key), log=lines.append)
    assert report.ok, report.lines()
    doc = json.loads((pub / "debian12" / "latest.json").read_text())
    return pub / doc["folder"], lines


def fetch(store: Path, to: Path, *extra: str, build: str | None = None) -> int:
    args = ["store", "fetch", "--from", str(store), "--os", "debian12", "--to", str(to)]
    return cli.main([*args, *(["--build", build] if build else []), *extra])


@pytest.fixture
def signed(keys: dict[str, Keypair], tmp_path: Path) -> tuple[Path, Path, Path]:
    """(store, build folder, allowed-signers file) of one signed build."""
    pub = tmp_path / "pub"
    folder, _ = publish(tmp_path / "run", pub, keys["ci"])
    allowed = allowed_signers(tmp_path / "allowed_signers", (PRINCIPAL, keys["ci"], ""))
    return pub, folder, allowed


def test_a_signed_build_lists_and_signs_every_file(
    signed: tuple[Path, Path, Path], keys: dict[str, Keypair]
) -> None:
    pub, folder, allowed = signed
    assert sorted(p.name for p in folder.iterdir()) == [
        "SHA256SUMS",
        "SHA256SUMS.sig",
        "build.log",
        "debian12.xva",
        "junit.xml",
        "metadata.json",
        "provenance.intoto.json",
        "provenance.intoto.json.sig",
        "sbom.cdx.json",
    ]
    # sha256sum itself checks the folder, metadata.json included
    check = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    listed = {line.split()[1] for line in (folder / "SHA256SUMS").read_text().splitlines()}
    assert listed == {p.name for p in folder.iterdir()} - {"SHA256SUMS", "SHA256SUMS.sig"}
    # and OpenSSH alone verifies both signatures, as the docs say
    for name in ("SHA256SUMS", "provenance.intoto.json"):
        out = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", PRINCIPAL, "-n", "file",
             "-s", str(folder / f"{name}.sig")],
            input=(folder / name).read_bytes(), capture_output=True, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["schema"] == "xcpng-templates/metadata/v3"
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(keys["ci"].path) + ".pub"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[1]  # fmt: skip
    assert meta["signature"] == {
        "state": "signed",
        "sums": "SHA256SUMS",
        "file": "SHA256SUMS.sig",
        "namespace": "file",
        "key": fingerprint,
        "key_type": "ED25519",
    }
    assert meta["sbom"] == {
        "name": "sbom.cdx.json",
        "format": "CycloneDX",
        "spec_version": "1.6",
        "package_database": "dpkg",
        "packages": len(PACKAGES),
        "components": len(PACKAGES) + 2,
        "kernels": ["6.1.0-28-amd64"],
    }
    assert validation_errors((folder / "sbom.cdx.json").read_bytes()) == []
    assert verify_tree(LocalStore(pub), deep=True) == []


def test_the_provenance_names_the_build(signed: tuple[Path, Path, Path]) -> None:
    _, folder, _ = signed
    meta = json.loads((folder / "metadata.json").read_text())
    st = json.loads((folder / "provenance.intoto.json").read_text())
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    assert st["subject"] == [
        {"name": "debian12.xva", "digest": {"sha256": meta["artifact"]["sha256"]}}
    ]
    pred = st["predicate"]
    ext = pred["buildDefinition"]["externalParameters"]
    assert ext["os"] == "debian12" and ext["source"]["revision"] == meta["git"]["revision"]
    deps = pred["buildDefinition"]["resolvedDependencies"]
    assert deps[0]["digest"] == {"gitCommit": meta["git"]["revision"]}
    assert deps[0]["annotations"] == {"dirty": False}
    iso = deps[1]
    assert iso["uri"] == "https://cdimage.example.org/debian12-netinst.iso"
    assert iso["digest"] == {"sha256": "ab" * 32}
    assert {"name": "packer", "uri": "pkg:generic/packer@1.11.2"} in deps
    assert {
        "name": "github.com/vatesfr/xenserver",
        "uri": "https://github.com/vatesfr/packer-plugin-xenserver/releases/tag/v0.7.3",
    } in deps
    assert any(d.get("name") == "inputs-digest" for d in deps)
    run = pred["runDetails"]
    assert run["builder"]["id"].startswith(("urn:xcpng-golden:builder:local:", "https://"))
    assert run["metadata"]["invocationId"] == meta["validation"]["run_id"] or run["metadata"][
        "invocationId"
    ].startswith("https://")
    checks = next(b for b in run["byproducts"] if b["name"] == "checks")
    # anyone recomputes it from metadata.json (jq -jcS .validation.checks | sha256sum)
    assert checks["digest"]["sha256"] == checks_digest(meta["validation"]["checks"])
    files = {b["name"]: b["digest"]["sha256"] for b in run["byproducts"] if b["name"] != "checks"}
    assert files == {
        n: meta["files"][n]["sha256"] for n in ("build.log", "junit.xml", "sbom.cdx.json")
    }


def test_fetch_verifies_the_signature_then_writes_every_file(
    signed: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub, folder, allowed = signed
    to = tmp_path / "dl"
    assert fetch(pub, to, "--allowed-signers", str(allowed)) == 0
    out = capsys.readouterr().out
    assert f"signature good ({PRINCIPAL}, SHA256:" in out
    assert sorted(p.name for p in to.iterdir()) == [
        "debian12.xva",
        "debian12.xva.SHA256SUMS",
        "debian12.xva.SHA256SUMS.sig",
        "debian12.xva.metadata.json",
        "debian12.xva.provenance.intoto.json",
        "debian12.xva.provenance.intoto.json.sig",
        "debian12.xva.sbom.cdx.json",
    ]
    for name in ("metadata.json", "sbom.cdx.json", "SHA256SUMS"):
        assert (to / f"debian12.xva.{name}").read_bytes() == (folder / name).read_bytes()


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


def test_a_flipped_byte_in_sha256sums_is_refused_in_one_line(
    signed: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub, folder, allowed = signed
    sums = bytearray((folder / "SHA256SUMS").read_bytes())
    sums[10] = ord("0") if sums[10] != ord("0") else ord("1")
    (folder / "SHA256SUMS").write_bytes(bytes(sums))
    to = tmp_path / "dl"
    assert fetch(pub, to, "--allowed-signers", str(allowed)) == 1
    err = one_error(capsys)
    assert err.startswith("error: SHA256SUMS of debian12 build ")
    assert (
        "does not match its signature (Signature verification failed: incorrect signature)" in err
    )
    assert not to.exists() or not list(to.iterdir())


def test_a_build_signed_by_another_key_is_refused(
    signed: tuple[Path, Path, Path],
    keys: dict[str, Keypair],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pub, folder, allowed = signed
    sig = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-q", "-f", str(keys["rogue"].path), "-n", "file"],
        input=(folder / "SHA256SUMS").read_bytes(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    (folder / "SHA256SUMS.sig").write_bytes(sig)
    to = tmp_path / "dl"
    assert fetch(pub, to, "--allowed-signers", str(allowed)) == 1
    err = one_error(capsys)
    assert f"which {allowed} does not list; nothing of this build is trusted" in err
    assert not to.exists() or not list(to.iterdir())


def test_a_changed_metadata_json_is_refused(
    signed: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """metadata.json is covered by the signature through its line in SHA256SUMS."""
    pub, folder, allowed = signed
    meta = json.loads((folder / "metadata.json").read_text())
    meta["validation"]["checks"]["passed"].append("made-up-check")
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    assert fetch(pub, tmp_path / "dl", "--allowed-signers", str(allowed)) == 1
    assert "metadata.json does not match its line in SHA256SUMS" in one_error(capsys)


def test_a_signed_build_without_allowed_signers_asks_for_them(
    signed: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub, _, _ = signed
    assert fetch(pub, tmp_path / "dl") == 2
    err = one_error(capsys)
    assert "is signed by SHA256:" in err and "--allowed-signers" in err
    assert fetch(pub, tmp_path / "dl", "--allow-unsigned") == 0
    assert "signature not checked; checked against its checksums only" in capsys.readouterr().out


def test_an_unsigned_build_says_so_and_is_refused_where_signers_are_set(
    keys: dict[str, Keypair], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "pub"
    folder, lines = publish(tmp_path / "run", pub, None)
    assert any(
        "no signing key (TEMPLATE_SIGNING_KEY): builds are published unsigned" in ln for ln in lines
    )
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["signature"]["state"] == "unsigned" and meta["provenance"]["signature"] is None
    assert not (folder / "SHA256SUMS.sig").exists() and (folder / "SHA256SUMS").exists()
    allowed = allowed_signers(tmp_path / "allowed", (PRINCIPAL, keys["ci"], ""))
    assert fetch(pub, tmp_path / "dl", "--allowed-signers", str(allowed)) == 1
    assert "is unsigned (no signing key when it was published): refused" in one_error(capsys)
    assert fetch(pub, tmp_path / "dl") == 0
    assert "unsigned; checked against its checksums only" in capsys.readouterr().out


def test_the_key_never_reaches_a_published_file_or_the_log(
    keys: dict[str, Keypair], tmp_path: Path
) -> None:
    pub = tmp_path / "pub"
    _, lines = publish(tmp_path / "run", pub, keys["ci"])
    secret = keys["ci"]
    for path in pub.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(line.encode() in data for line in secret.body_lines()), path
    assert not any(line in "\n".join(lines) for line in secret.body_lines())
    assert any(
        "complete and verified" in ln and "SHA256SUMS signed by ED25519 key" in ln for ln in lines
    )


def test_a_bad_key_stops_before_anything_is_written(tmp_path: Path) -> None:
    path = write_results(tmp_path, [fake_os(tmp_path, "debian12")])
    env = {"TEMPLATE_SIGNING_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END x-----"}
    with pytest.raises(Exception, match="cannot be loaded by ssh-keygen"):
        api.publish_results([path], str(tmp_path / "pub"), Settings.from_env(env=env), log=print)
    assert not (tmp_path / "pub").exists()
    assert "cannot be loaded" in api.preflight(str(tmp_path / "pub"), Settings.from_env(env=env))[0]


def test_without_an_inventory_nothing_is_published(tmp_path: Path) -> None:
    rec = fake_os(tmp_path, "debian12")
    rec["inventory"] = None
    path = write_results(tmp_path, [rec])
    report = api.publish_results([path], str(tmp_path / "pub"), settings(), log=lambda _m: None)
    assert not report.ok and not report.published
    assert report.refused == [
        (
            "debian12",
            "no package inventory for its SBOM in the results (the session did not read the "
            "image's package database: rerun the checks with this harness version)",
        )
    ]
    rec = fake_os(tmp_path / "b", "debian12")
    inventory = Path(rec["inventory"]["path"])
    doc = json.loads(inventory.read_text())
    inventory.write_text(json.dumps({**doc, "inventory": None, "error": "debugfs failed"}))
    rec["inventory"]["sha256"] = hashlib.sha256(inventory.read_bytes()).hexdigest()
    report = api.publish_results(
        [write_results(tmp_path / "b", [rec])], str(tmp_path / "pub"), settings(), log=print
    )
    assert report.refused == [("debian12", "no SBOM: debugfs failed")]
    assert not (tmp_path / "pub").exists()


@pytest.mark.parametrize(
    ("method", "key_part"),
    [
        ("put_bytes", "provenance.intoto.json.sig"),
        ("put_bytes", "SHA256SUMS.sig"),
        ("put_bytes", "metadata.json"),
    ],
)
def test_a_fault_on_a_signature_leaves_nothing_that_looks_whole(
    keys: dict[str, Keypair], tmp_path: Path, method: str, key_part: str
) -> None:
    pub = tmp_path / "pub"
    publish(tmp_path / "old", pub, keys["ci"], built_at=1e9)
    before = (pub / "debian12" / "latest.json").read_text()
    new = write_results(tmp_path / "new", [fake_os(tmp_path / "new", "debian12", size=999)])
    report = api.publish_results(
        [new], str(pub), settings(keys["ci"]), log=print, store=Faulty(pub, method, key_part)
    )
    assert not report.ok and "injected fault" in report.failed[0][1]
    assert (pub / "debian12" / "latest.json").read_text() == before
    assert verify_tree(LocalStore(pub), deep=True) == []
    folders = sorted((pub / "debian12" / "12").iterdir())
    assert len(folders) == 2 and not (folders[1] / "metadata.json").exists()
    out = cli.main(["store", "list", "--from", str(pub), "--os", "debian12"])
    assert out == 0  # lists only the complete build


def test_diff_and_catalog_show_an_upgrade(
    keys: dict[str, Keypair], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "pub"
    publish(tmp_path / "one", pub, keys["ci"], built_at=1_763_900_000.0)
    newer = {**PACKAGES, "libssl3": "3.0.16-1~deb12u1"}
    publish(
        tmp_path / "two",
        pub,
        keys["ci"],
        built_at=1_764_000_000.0,
        packages=newer,
        security=frozenset({"libssl3"}),
        size=5000,
    )
    allowed = allowed_signers(tmp_path / "allowed", (PRINCIPAL, keys["ci"], ""))
    args = ["store", "diff", "--from", str(pub), "--os", "debian12"]
    assert cli.main([*args, "--allowed-signers", str(allowed)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("debian12: 20251123T") and " -> 20251124T" in lines[0]
    assert lines[1:] == [
        "  upgraded   libssl3:amd64 3.0.15-1~deb12u1 -> 3.0.16-1~deb12u1  [security]",
        "  1 upgraded (1 security), 3 unchanged",
    ]
    assert cli.main([*args, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["changes"] == [
        {
            "kind": "upgraded",
            "name": "libssl3",
            "arch": "amd64",
            "old": "3.0.15-1~deb12u1",
            "new": "3.0.16-1~deb12u1",
            "security": True,
        }
    ]
    page = (pub / "index.html").read_text()
    assert "Changes since the previous build" in page
    assert "1 upgraded (1 security), 3 unchanged" in page
    assert (
        "<code>3.0.16-1~deb12u1</code>" in page and '<span class="failed">security</span>' in page
    )
    assert 'href="debian12/12/' in page and 'sbom.cdx.json"' in page
    assert "signed</span> by ED25519 key" in page
    assert cli.main([*args, "--base", "nope"]) == 2
    assert "no complete build 'nope'" in capsys.readouterr().err


def test_the_catalog_says_unsigned(tmp_path: Path) -> None:
    pub = tmp_path / "pub"
    publish(tmp_path / "run", pub, None)
    page = (pub / "index.html").read_text()
    assert '<span class="skipped">unsigned</span> (published without a signing key)' in page
    assert "Not shown: this is the first build of it in the store." in page


def as_v2(folder: Path) -> None:
    """The build as a publisher before SBOMs left it: metadata v2, no SBOM, provenance or
    SHA256SUMS."""
    meta = json.loads((folder / "metadata.json").read_text())
    for name in ("sbom.cdx.json", "provenance.intoto.json", "SHA256SUMS"):
        (folder / name).unlink()
        meta["files"].pop(name, None)
    for field in ("sbom", "provenance", "signature"):
        del meta[field]
    meta["schema"] = "xcpng-templates/metadata/v2"
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def test_a_build_from_before_signatures_stays_readable(
    keys: dict[str, Keypair], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "pub"
    old, _ = publish(tmp_path / "one", pub, None, built_at=1_763_900_000.0)
    as_v2(old)
    publish(tmp_path / "two", pub, keys["ci"], built_at=1_764_000_000.0, size=5000)
    assert verify_tree(LocalStore(pub), deep=True) == []
    build = old.name
    assert fetch(pub, tmp_path / "dl", build=build) == 0
    assert "legacy, unsigned build; checked against its checksums only" in capsys.readouterr().out
    allowed = allowed_signers(tmp_path / "allowed", (PRINCIPAL, keys["ci"], ""))
    assert fetch(pub, tmp_path / "dl2", "--allowed-signers", str(allowed), build=build) == 1
    assert "predates signed builds (metadata xcpng-templates/metadata/v2)" in one_error(capsys)
    assert fetch(pub, tmp_path / "dl2", "--allowed-signers", str(allowed), "--allow-unsigned",
                 build=build) == 0  # fmt: skip
    capsys.readouterr()
    # no SBOM to compare with: said so, on the page and by store diff
    page = (pub / "index.html").read_text()
    assert "Not shown: debian12 build " + build + " has no SBOM" in page
    assert cli.main(["store", "diff", "--from", str(pub), "--os", "debian12"]) == 2
    assert "has no SBOM (published with metadata xcpng-templates/metadata/v2" in one_error(capsys)


def test_the_vhd_is_listed_signed_and_named_by_the_provenance(
    keys: dict[str, Keypair], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A build published first without its VHD, then again with one (TEMPLATE_PUBLISH_VHD):
    SHA256SUMS is rewritten to list it and signed again before metadata.json names it."""
    rec = fake_os(tmp_path, "debian12", size=32 << 20, fmt="raw")
    results = write_results(tmp_path, [rec], platform="local")
    pub = tmp_path / "pub"

    def run(vhd: str, key: Keypair | None) -> api.PublishReport:
        env = {"AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "TEMPLATE_PUBLISH_VHD": vhd}
        if key is not None:
            env["TEMPLATE_SIGNING_KEY"] = key.private
        return api.publish_results([results], str(pub), Settings.from_env(env=env), log=print)

    assert run("none", keys["ci"]).ok
    folder = pub / json.loads((pub / "debian12" / "latest.json").read_text())["folder"]
    # a signed build gets no VHD without the key that can sign SHA256SUMS again
    refused = run("bzip2", None)
    assert not refused.ok and "needs the signing key" in refused.failed[0][1]
    assert "debian12.vhd.bz2" not in (folder / "SHA256SUMS").read_text()
    assert run("bzip2", keys["ci"]).ok
    meta = json.loads((folder / "metadata.json").read_text())
    sums = (folder / "SHA256SUMS").read_text()
    assert f"{meta['vhd']['sha256']}  debian12.vhd.bz2\n" in sums
    check = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert verify_tree(LocalStore(pub), deep=True) == []
    allowed = allowed_signers(tmp_path / "allowed", (PRINCIPAL, keys["ci"], ""))
    capsys.readouterr()
    assert fetch(pub, tmp_path / "dl", "--allowed-signers", str(allowed)) == 0
    assert "signature good" in capsys.readouterr().out
    # a build published with its VHD from the start: the provenance names both disks
    rec2 = fake_os(tmp_path / "b", "debian12", size=32 << 20, fmt="raw", built_at=1_764_000_000.0)
    env = {
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "TEMPLATE_PUBLISH_VHD": "vhd",
        "TEMPLATE_SIGNING_KEY": keys["ci"].private,
    }
    report = api.publish_results(
        [write_results(tmp_path / "b", [rec2], platform="local")],
        str(pub / "two"),
        Settings.from_env(env=env),
        log=lambda _m: None,
    )
    assert report.ok
    folder2 = pub / "two" / report.published[0].folder
    meta2 = json.loads((folder2 / "metadata.json").read_text())
    st = json.loads((folder2 / "provenance.intoto.json").read_text())
    assert st["subject"] == [
        {"name": "debian12.xva", "digest": {"sha256": meta2["artifact"]["sha256"]}},
        {"name": "debian12.vhd", "digest": {"sha256": meta2["vhd"]["sha256"]}},
    ]
    assert "debian12.vhd" in (folder2 / "SHA256SUMS").read_text()
