"""The trust checks' readers and judges without a VM: apt's and dnf's semantics on captured and
written configurations (tests/data/trust holds a Debian 12 clone's `apt-config dump` and
`ssh -G` outputs), the SSH client's judge, the shell that asks ssh (run here against this
machine's OpenSSH) and its awk against the Python twin, the CA store and PAM readers on root
trees made here (tests/support/castore.py)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import castore
from validations import apt_trust, cabundle, sshclient
from validations import test_trust as t
from validations.offline_tree import TreeImage

DATA = Path(__file__).resolve().parents[1] / "data" / "trust"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="owners and runuser need root")

# -- apt's settings --------------------------------------------------------------------------------


def test_debian12_dump_today_has_only_mmdebstraps_leftover() -> None:
    pairs = apt_trust.parse_dump((DATA / "apt-config-dump-debian12.txt").read_text())
    assert ("dir::etc::sourceparts", "sources.list.d") in pairs
    assert ("apt::neverautoremove", "^firmware-linux.*") in pairs, "list items keep their key"
    found = apt_trust.setting_findings(pairs)
    assert found == [
        "acquire::check-valid-until 'false': expired Release files are accepted (a replayed, "
        "frozen archive keeps its clones from security updates)"
    ]
    fixed = [p for p in pairs if p[0] != "acquire::check-valid-until"]
    assert apt_trust.setting_findings(fixed) == []


@pytest.mark.parametrize(
    ("line", "finding"),
    [
        ('Acquire::AllowInsecureRepositories "true";', "no or a bad signature"),
        ('Acquire::AllowDowngradeToInsecureRepositories "1";', "turns unsigned"),
        ('Acquire::AllowWeakRepositories "yes";', "weak algorithms"),
        ('APT::Get::AllowUnauthenticated "on";', "could not authenticate"),
        ('Binary::apt::APT::Get::AllowUnauthenticated "1";', "could not authenticate"),
        ('Acquire::Check-Date "no";', "in the future"),
        ('Acquire::https::Verify-Peer "false";', "peer verification off for every https"),
        ('Acquire::https::mirror.example::Verify-Host "0";', "host verification off for mirror"),
        ('Acquire::http::Proxy "http://ci:s3cr3tpw@proxy.example:3128/";', "carries a password"),
        ('Acquire::http::Proxy::deb.example "http://u:p4ss@p.example/";', "for deb.example"),
        ('Acquire::https::CaInfo "/opt/corp/ca.pem";', "another CA store for every https"),
        ('Acquire::https::mirror.example::CaPath "/srv/certs";', "another CA store for mirror"),
    ],
)
def test_each_weak_setting(line: str, finding: str) -> None:
    found = apt_trust.setting_findings(apt_trust.parse_dump(line))
    assert len(found) == 1 and finding in found[0], found
    assert "s3cr3tpw" not in found[0] and "p4ss" not in found[0]


@pytest.mark.parametrize(
    "line",
    [
        'Acquire::AllowInsecureRepositories "0";',
        'Acquire::AllowWeakRepositories "false";',
        'Acquire::Check-Valid-Until "true";',
        'Acquire::https::Verify-Peer "true";',
        'Acquire::https::CaInfo "/etc/ssl/certs/ca-certificates.crt";',
        'Acquire::http::Proxy "http://proxy.example:3128/";',
        'Acquire::http::Proxy::deb.debian.org "DIRECT";',
        'Acquire::http::Proxy "http://ci@proxy.example:3128/";',
    ],
)
def test_sound_settings(line: str) -> None:
    assert apt_trust.setting_findings(apt_trust.parse_dump(line)) == []


def test_string_to_bool_is_apts() -> None:
    assert [apt_trust.string_to_bool(v) for v in ("yes", "With", "2", "0", "off", "maybe")] == [
        True, True, True, False, False, None,
    ]  # fmt: skip


# -- apt's sources and keys -------------------------------------------------------------------------

ONE_LINE = """\
deb http://deb.debian.org/debian bookworm main
# deb [trusted=yes] http://old.example/ x main
deb [ arch=amd64 trusted=yes ] http://deb.example/debian bookworm main # a comment
deb-src [signed-by=/etc/apt/keyrings/x.gpg allow-insecure=yes] https://src.example/ x main
deb [check-valid-until=no] http://snapshot.example/ x main
"""
DEB822 = """\
Types: deb
URIs: https://repo.vendor.example/apt
Suites: stable
Components: main
Signed-By: /etc/apt/keyrings/vendor.gpg

# a comment-only paragraph is not a stanza

Types: deb
URIs: http://off.example/
Suites: x
Components: main
Enabled: no
Trusted: yes

Types: deb deb-src
URIs: http://weak.example/
Suites: x
Components: main
Allow-Weak: yes
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBF...
 -----END PGP PUBLIC KEY BLOCK-----
"""


def test_sources_as_apt_numbers_them() -> None:
    sources = apt_trust.parse_sources(
        {"/etc/apt/sources.list": ONE_LINE, "/etc/apt/sources.list.d/v.sources": DEB822}
    )
    assert sorted(sources) == [
        "/etc/apt/sources.list.d/v.sources:1", "/etc/apt/sources.list.d/v.sources:2",
        "/etc/apt/sources.list.d/v.sources:3", "/etc/apt/sources.list:1",
        "/etc/apt/sources.list:3", "/etc/apt/sources.list:4", "/etc/apt/sources.list:5",
    ]  # fmt: skip
    third = sources["/etc/apt/sources.list.d/v.sources:3"]
    assert third.types == ("deb", "deb-src") and "mQINBF" in third.options["signed-by"]
    assert sources["/etc/apt/sources.list:3"].options == {"arch": "amd64", "trusted": "yes"}


def test_source_findings_judge_only_what_apt_loads() -> None:
    sources = apt_trust.parse_sources(
        {"/etc/apt/sources.list": ONE_LINE, "/etc/apt/sources.list.d/v.sources": DEB822}
    )
    loaded = [e for e in sources if not e.endswith("v.sources:2")]  # Enabled: no
    found = apt_trust.source_findings(sources, [*loaded, "/etc/apt/sources.list.d/odd.list:7"])
    text = "\n".join(found)
    assert "sources.list:3 (deb http://deb.example/debian): trusted=yes" in text
    assert "over plain http" in text
    assert "sources.list:4 (deb-src https://src.example/): allow-insecure=yes" in text
    assert "sources.list:5" in text and "expired Release files" in text
    assert "v.sources:3" in text and "allow-weak=yes" in text
    assert "v.sources:1" not in text and "v.sources:2" not in text
    assert "odd.list:7: apt reads a source entry this check could not parse" in text
    assert len(found) == 5


def test_global_keys_against_what_dpkg_installed() -> None:
    tg, tp = "/etc/apt/trusted.gpg", "/etc/apt/trusted.gpg.d"
    keys = [
        (f"{tp}/debian-archive-bookworm-stable.asc", "aaa"),
        (f"{tp}/debian-archive-bookworm-automatic.asc", "changed"),
        (f"{tp}/vendor.gpg", "bbb"),
        (tg, "ccc"),
    ]
    keys = [k for k in keys if apt_trust.global_key_file(k[0], tg, tp)]
    shipped = {
        (f"{tp}/debian-archive-bookworm-stable.asc", "aaa"),
        (f"{tp}/debian-archive-bookworm-automatic.asc", "orig"),
    }
    found = apt_trust.key_findings(keys, shipped)
    assert [f.split(":")[0] for f in found] == [
        f"{tp}/debian-archive-bookworm-automatic.asc", f"{tp}/vendor.gpg", tg,
    ]  # fmt: skip
    assert not apt_trust.global_key_file(f"{tp}/README", tg, tp)
    assert not apt_trust.global_key_file(f"{tp}/key.asc.bak", tg, tp)


def test_the_files_answer_of_the_clone_is_read(tmp_path: Path) -> None:
    """What APT_FILES prints: the folders, a tar of the files, conffiles and md5sums lines."""
    root = tmp_path / "root"
    (root / "etc/apt/trusted.gpg.d").mkdir(parents=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text("deb http://deb.debian.org/debian bookworm main\n")
    (root / "etc/apt/trusted.gpg.d/debian-archive-bookworm-automatic.asc").write_bytes(b"k1")
    (root / "etc/apt/trusted.gpg.d/local.asc").write_bytes(b"k2")
    (root / "etc/apt/trusted.gpg.d/notes.txt").write_bytes(b"k3")
    (root / "etc/apt/trusted.gpg.d/shipped.gpg").write_bytes(b"k4")
    tar = subprocess.run(
        ["tar", "-C", str(root), "-chf", "-", "etc/apt/sources.list", "etc/apt/sources.list.d",
         "etc/apt/trusted.gpg.d"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    md5 = {n: t._md5(d) for n, d in (("k1", b"k1"), ("k4", b"k4"))}
    out = (
        "dirs\t/etc/apt/sources.list\t/etc/apt/sources.list.d\t/etc/apt/trusted.gpg"
        "\t/etc/apt/trusted.gpg.d\n" + __import__("base64").b64encode(tar).decode() + "\n"
        f" /etc/apt/trusted.gpg.d/debian-archive-bookworm-automatic.asc {md5['k1']}\n"
        f"/var/lib/dpkg/info/vendor.md5sums:{md5['k4']}  etc/apt/trusted.gpg.d/shipped.gpg\n"
    )
    apt = t.read_apt_files(out)
    assert apt.trustedparts == "/etc/apt/trusted.gpg.d"
    assert apt.files["/etc/apt/sources.list"].startswith(b"deb http")
    keys = [
        (p, t._md5(d)) for p, d in sorted(apt.files.items())
        if apt_trust.global_key_file(p, apt.trusted, apt.trustedparts)
    ]  # fmt: skip
    assert [k[0].rsplit("/", 1)[1] for k in keys] == [
        "debian-archive-bookworm-automatic.asc", "local.asc", "shipped.gpg",
    ]  # fmt: skip
    found = apt_trust.key_findings(keys, apt.shipped)
    assert len(found) == 1 and found[0].startswith("/etc/apt/trusted.gpg.d/local.asc:")


# -- dnf and rpm ------------------------------------------------------------------------------------

DNF_CONF = "[main]\ngpgcheck=1\ninstallonly_limit=3\nclean_requirements_on_remove=True\n"
REPOS = {
    "/etc/yum.repos.d/almalinux-baseos.repo": (
        "[baseos]\nname=AlmaLinux $releasever - BaseOS\n"
        "mirrorlist=https://mirrors.almalinux.org/mirrorlist/$releasever/baseos\n"
        "enabled=1\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-AlmaLinux-9\n"
        "[baseos-debug]\nname=debug\nenabled=0\ngpgcheck=0\n"
    ),
    "/etc/yum.repos.d/vendor.repo": (
        "[vendor]\nbaseurl=https://repo.vendor.example/el9\n"
        "gpgkey=https://repo.vendor.example/key.asc\n"
    ),
}


def test_dnf_defaults_and_the_almalinux_shape_pass() -> None:
    assert apt_trust.dnf_findings("/etc/dnf/dnf.conf", DNF_CONF, REPOS) == []


def test_dnf_findings() -> None:
    repos = {
        **REPOS,
        "/etc/yum.repos.d/bad.repo": (
            "[nogpg]\nbaseurl=http://x.example/\ngpgcheck=0\n"
            "[nossl]\nbaseurl=https://y.example/\nsslverify=False\n"
            "[httpkey]\nbaseurl=https://z.example/\ngpgkey=http://z.example/key\n"
            "[off]\nenabled=false\ngpgcheck=0\n"
        ),
    }
    found = apt_trust.dnf_findings("/etc/dnf/dnf.conf", DNF_CONF, repos)
    assert [f.split(": ")[0] for f in found] == [
        "/etc/yum.repos.d/bad.repo [nogpg]", "/etc/yum.repos.d/bad.repo [nossl]",
        "/etc/yum.repos.d/bad.repo [httpkey]",
    ]  # fmt: skip
    # libdnf's own default is gpgcheck off: without it in dnf.conf, a repository that does
    # not turn it on itself installs unsigned packages
    found = apt_trust.dnf_findings("/etc/dnf/dnf.conf", "[main]\n", REPOS)
    assert found == [
        "/etc/yum.repos.d/vendor.repo [vendor]: gpgcheck off: packages are installed unsigned"
    ]
    assert apt_trust.reposdirs({"reposdir": "/a, /b"}) == ["/a", "/b"]


def test_rpm_keyring_against_the_shipped_keys() -> None:
    imported = [
        "b86b3716-61e69f29 gpg(AlmaLinux OS 9 <packager@almalinux.org>)",
        "deadbeef-5f000000 gpg(Someone Else <x@example>)",
    ]
    found = apt_trust.rpm_key_findings(imported, {"D36CB86CB86B3716"})
    assert len(found) == 1 and "deadbeef-5f000000" in found[0]


# -- the SSH client ---------------------------------------------------------------------------------


def defaults() -> dict[str, str]:
    return sshclient.parse_g((DATA / "ssh-G-defaults-debian12.txt").read_text())


def test_debian12_client_is_no_looser_than_openssh() -> None:
    eff = sshclient.parse_g((DATA / "ssh-G-debian12.txt").read_text())
    assert eff["hashknownhosts"] == "yes" and eff["gssapiauthentication"] == "yes"
    assert sshclient.weakenings(eff, defaults()) == []


@pytest.mark.parametrize(
    ("line", "finding"),
    [
        ("stricthostkeychecking false", "stricthostkeychecking false"),
        ("userknownhostsfile /dev/null", "userknownhostsfile /dev/null"),
        ("forwardagent yes", "forwardagent yes"),
        ("forwardagent /run/agent.sock", ""),  # a socket path: judged below
        ("forwardx11 yes", "forwardx11 yes"),
        ("permitlocalcommand yes", "permitlocalcommand yes"),
        ("proxycommand nc -X connect -x u:secret@proxy %h %p", "proxycommand set"),
        ("proxyjump bastion.example", "proxyjump set"),
        ("localcommand /tmp/x", "localcommand set"),
        ("gssapidelegatecredentials yes", "gssapidelegatecredentials yes"),
        ("verifyhostkeydns yes", "verifyhostkeydns yes"),
        ("requiredrsasize 768", "requiredrsasize 768"),
    ],
)
def test_each_weakening(line: str, finding: str) -> None:
    base = defaults()
    key, _, value = line.partition(" ")
    found = sshclient.weakenings({**base, key: value}, base)
    if finding:
        assert len(found) == 1 and found[0].startswith(finding), found
        assert "secret" not in found[0]
    else:
        assert found == [] or "forwardagent" in found[0]


# Debian 13's /etc/ssh/ssh_config.d/20-systemd-ssh-proxy.conf (systemd 257), as ssh -G applies
# it to a name of its second block.
SYSTEMD_PROXY = {
    "proxycommand": "/usr/lib/systemd/systemd-ssh-proxy %h %p",
    "proxyusefdpass": "yes",
    "checkhostip": "no",
    "stricthostkeychecking": "false",
    "userknownhostsfile": "/dev/null",
}


@pytest.mark.parametrize("host", [".host", "machine/.host", "machine/x", "unix/x", "vsock/x"])
def test_systemds_local_proxy_is_no_finding(host: str) -> None:
    """The names systemd's proxy carries over AF_UNIX/AF_VSOCK to a local socket or VM: no
    network, no host key to check (Debian 13 ships it; the e2e fleet run found it)."""
    base = defaults()
    assert sshclient.weakenings({**base, **SYSTEMD_PROXY}, base, host) == []


@pytest.mark.parametrize(
    ("host", "proxy"),
    [
        ("bastion.example", "/usr/lib/systemd/systemd-ssh-proxy %h %p"),  # a network name
        ("machine/x", "nc -X connect -x proxy.example:3128 %h %p"),  # another command
        ("machine/x", "/usr/lib/systemd/systemd-ssh-proxy-evil %h %p"),
        ("xmachine/x", "/usr/lib/systemd/systemd-ssh-proxy %h %p"),
    ],
)
def test_the_local_proxy_exception_is_exact(host: str, proxy: str) -> None:
    base = defaults()
    found = sshclient.weakenings({**base, **SYSTEMD_PROXY, "proxycommand": proxy}, base, host)
    assert [f.split()[0] for f in found] == [
        "stricthostkeychecking",
        "userknownhostsfile",
        "proxycommand",
    ], found


def test_algorithms_beyond_the_defaults() -> None:
    base = defaults()
    eff = {
        **base,
        "ciphers": base["ciphers"] + ",aes128-cbc",
        "kexalgorithms": "diffie-hellman-group1-sha1," + base["kexalgorithms"],
        "hostkeyalgorithms": base["hostkeyalgorithms"] + ",ssh-rsa",
        "pubkeyacceptedalgorithms": base["pubkeyacceptedalgorithms"] + ",ssh-rsa",
        "macs": "hmac-sha2-256-etm@openssh.com",  # only tightens
    }
    found = sshclient.weakenings(eff, base)
    assert found == [
        "ciphers adds aes128-cbc beyond OpenSSH's defaults",
        "kexalgorithms adds diffie-hellman-group1-sha1 beyond OpenSSH's defaults",
        "hostkeyalgorithms adds ssh-rsa beyond OpenSSH's defaults",
        "pubkeyacceptedalgorithms adds ssh-rsa beyond OpenSSH's defaults",
    ]


def test_tightening_and_accept_new_are_no_finding() -> None:
    base = defaults()
    eff = {
        **base,
        "stricthostkeychecking": "accept-new",
        "hashknownhosts": "yes",
        "forwardx11trusted": "no",
        "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
    }
    assert sshclient.weakenings(eff, base) == []


CLIENT_CONFIG = """\
Host bastion *.corp !secret.corp
  ForwardAgent yes
Host=db?
Match host build*,!x user admin exec "true"
Match all
Match originalhost web* canonical
# Host commented.example
Host *
"""


def test_samples_for_each_block() -> None:
    assert sshclient.samples(CLIENT_CONFIG) == {
        ("bastion", "-"), ("x.corp", "-"), ("dbx", "-"), ("buildx", "admin"),
        (sshclient.PROBE, "-"), ("webx", "-"),
    }  # fmt: skip


def test_the_awk_picks_what_samples_picks(tmp_path: Path) -> None:
    if not shutil.which("awk"):
        pytest.skip("no awk")
    config, picks = tmp_path / "config", tmp_path / "picks"
    config.write_text(CLIENT_CONFIG)
    out = subprocess.run(
        ["awk", "-v", "B=@@b", "-v", f"probe={sshclient.PROBE}", "-v", f"OUT={picks}",
         sshclient._AWK, str(config)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout == f"@@b file {config}\n{CLIENT_CONFIG}", "the file's text, under its header"
    picked = {tuple(line.split()) for line in picks.read_text().splitlines()}
    assert picked == sshclient.samples(CLIENT_CONFIG)


def test_a_block_the_shell_did_not_ask_for_is_reported() -> None:
    report = sshclient.Report(
        files={"root": ["/etc/ssh/ssh_config"]},
        texts={"/etc/ssh/ssh_config": "Host jump\n  ProxyJump x\n"},
        runs=[sshclient.Run("root", sshclient.PROBE, "-", 0, "")],
    )
    assert sshclient.unasked(report) == ["root: host jump"]
    lost = sshclient.Report(report.files, {}, report.runs)
    assert sshclient.unasked(lost) == [
        "/etc/ssh/ssh_config (ssh read it; its text did not come back)"
    ]


@dataclass
class _Out:
    rc: int
    stdout: str
    stderr: str


class _Local:
    """testinfra's host.run on this machine (the tests run as root; sudo is stripped)."""

    def run(self, command: str) -> _Out:
        command = command.removeprefix("sudo -n ")
        proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        return _Out(proc.returncode, proc.stdout, proc.stderr)


@needs_root
def test_the_script_asks_this_machines_openssh(tmp_path: Path) -> None:
    """The shell, run here against this machine's OpenSSH (its own /etc/ssh/ssh_config), with
    a stand-in for /etc/skel/.ssh/config that has Host and Match blocks."""
    if not (shutil.which("ssh") and shutil.which("runuser")):
        pytest.skip("no ssh or runuser here")
    tmp_path.chmod(0o755)
    skel = tmp_path / "skel-config"
    skel.write_text("Host *.internal\n  ForwardAgent yes\nMatch host db* user admin\n  Port 2222\n")
    skel.chmod(0o644)
    boundary = "@@" + secrets.token_hex(8)
    command = sshclient.script(boundary, "nobody", str(skel))
    out = _Local().run("sh -c " + __import__("shlex").quote(command))
    report = sshclient.parse_report(out.stdout, boundary)
    assert set(report.files) == {"root", "user", "skel"}, out.stderr[-500:]
    assert "/etc/ssh/ssh_config" in report.files["root"]
    assert report.files["skel"][0] == str(skel)
    asked = {(r.who, r.host, r.user) for r in report.runs}
    for who in ("root", "user", "skel"):
        assert {
            (who, sshclient.PROBE, "-"),
            (who, "x.internal", "-"),
            (who, "dbx", "admin"),
        } <= asked
    assert all(r.rc == 0 and "ciphers" in r.output for r in report.runs)
    assert sshclient.unasked(report) == []
    skel_runs = {
        (r.host, r.user): sshclient.parse_g(r.output) for r in report.runs if r.who == "skel"
    }
    assert skel_runs[("x.internal", "-")]["forwardagent"] == "yes"
    assert skel_runs[("dbx", "admin")]["port"] == "2222"
    assert skel_runs[(sshclient.PROBE, "-")]["forwardagent"] == "no"


# -- the CA store, on trees made here -------------------------------------------------------------------


def _ca(root: Path) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        found, count = t.ca_problems(TreeImage(root), Path(tmp))
    assert count >= 2
    return found


@pytest.fixture
def debian_root(tmp_path: Path) -> Path:
    castore.debian_store(tmp_path / "root")
    return tmp_path / "root"


def test_debian_store_as_generated_passes(debian_root: Path) -> None:
    assert _ca(debian_root) == []


def test_cert_appended_to_the_bundle(debian_root: Path) -> None:
    bundle = debian_root / "etc/ssl/certs/ca-certificates.crt"
    bundle.write_bytes(bundle.read_bytes() + castore.certificate("Corp_Intercept_CA"))
    (found,) = _ca(debian_root)
    assert found.startswith("CN=Corp Intercept CA [sha256 ")
    assert "/etc/ssl/certs/ca-certificates.crt" in found and "/usr/lib/ssl/cert.pem" in found


def test_planted_hash_link_to_a_file_elsewhere(debian_root: Path) -> None:
    (debian_root / "opt").mkdir()
    (debian_root / "opt/ca.pem").write_bytes(castore.certificate("Planted_CA"))
    (debian_root / "etc/ssl/certs/0badc0de.0").symlink_to("/opt/ca.pem")
    (found,) = _ca(debian_root)
    assert "CN=Planted CA" in found and "/etc/ssl/certs/0badc0de.0" in found


def test_local_ca_is_found_before_and_after_update_ca_certificates(debian_root: Path) -> None:
    local = debian_root / "usr/local/share/ca-certificates/corp/root.crt"
    local.parent.mkdir(parents=True)
    local.write_bytes(castore.certificate("Local_Corp_CA"))
    (found,) = _ca(debian_root)
    assert found.startswith("/usr/local/share/ca-certificates/corp/root.crt: a local CA")


def test_dropped_and_changed_package_files(debian_root: Path) -> None:
    dropped = debian_root / "usr/share/ca-certificates/extra/Dropped.crt"
    dropped.parent.mkdir()
    dropped.write_bytes(castore.certificate("Dropped_CA"))
    changed = debian_root / f"usr/share/ca-certificates/mozilla/{castore.DEBIAN_CAS[0]}.crt"
    changed.write_bytes(castore.certificate("Swapped_CA"))
    found = _ca(debian_root)
    text = "\n".join(found)
    assert "extra/Dropped.crt: no package shipped it; the package's next upgrade" in text
    assert "Test_Root_CA_One.crt: changed since dpkg installed it; enabled" in text
    assert "CN=Swapped CA" in text  # and, through the .pem link, trusted right now
    # the original is no longer what the package file holds: it is reported too
    assert "CN=Test Root CA One" in text
    assert len(found) == 4


def test_deselected_ca_only_counts_once_regenerated(debian_root: Path) -> None:
    name = castore.DEBIAN_CAS[2]
    conf = debian_root / "etc/ca-certificates.conf"
    conf.write_text(conf.read_text().replace(f"mozilla/{name}.crt", f"!mozilla/{name}.crt"))
    found = _ca(debian_root)
    assert len(found) == 1 and "CN=Test Root CA Three" in found[0], "the bundle still has it"
    bundle = debian_root / "etc/ssl/certs/ca-certificates.crt"
    bundle.write_bytes(bundle.read_bytes().replace(castore.certificate(name), b""))
    (debian_root / f"etc/ssl/certs/{name}.pem").unlink()
    (debian_root / f"etc/ssl/certs/{castore.fake_hash(name)}.0").unlink()
    assert _ca(debian_root) == []


@pytest.fixture
def el_root(tmp_path: Path) -> Path:
    castore.el_store(tmp_path / "root")
    return tmp_path / "root"


def test_el_store_as_extracted_passes(el_root: Path) -> None:
    assert cabundle.pem_certificates(
        (el_root / "etc/pki/ca-trust/extracted/openssl/ca-bundle.trust.crt").read_bytes()
    ) == cabundle.pem_certificates(
        (el_root / "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem").read_bytes()
    ), "TRUSTED CERTIFICATE blocks read as the same certificates"
    assert _ca(el_root) == []


def test_el_anchor_and_appended_bundle(el_root: Path) -> None:
    anchor = el_root / "etc/pki/ca-trust/source/anchors/corp.der"
    anchor.write_bytes(b"\x30\x03\x02\x01\x01")
    bundle = el_root / "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"
    bundle.write_bytes(bundle.read_bytes() + castore.certificate("Appended_CA"))
    found = _ca(el_root)
    assert found[0].startswith("/etc/pki/ca-trust/source/anchors/corp.der: an extra trust source")
    assert "CN=Appended CA" in found[1] and "/etc/pki/tls/cert.pem" in found[1]
    assert len(found) == 2


# -- the PAM reader ----------------------------------------------------------------------------------


def test_pam_reader_vendor_folder_and_precedence(tmp_path: Path) -> None:
    etc, vendor = tmp_path / "etc/pam.d", tmp_path / "usr/lib/pam.d"
    etc.mkdir(parents=True)
    vendor.mkdir(parents=True)
    (etc / "other").write_text("auth required pam_deny.so\n")
    (etc / "login").write_text("auth required pam_unix.so\n")
    (vendor / "login").write_text("auth sufficient pam_permit.so\n")  # /etc wins
    (vendor / "kiosk").write_text("auth include common\n")
    (vendor / "common").write_text("auth sufficient pam_permit.so\n")
    services, _read = t.pam_reader(TreeImage(tmp_path))
    assert services == ["common", "kiosk", "login", "other"]
    with pytest.raises(AssertionError) as failure:
        t.test_pam(TreeImage(tmp_path))
    assert "pam_permit(common:1) (services: common, kiosk)" in str(failure.value)


def test_every_shell_the_trust_checks_send_parses() -> None:
    """`sh -n` on each script (dash here, as on Debian; EL's sh is bash): the EL ones never
    run on this machine otherwise."""
    scripts = {
        "apt files": t.APT_FILES,
        "dnf repos": t.DNF_REPOS
        + t._print_files("@@b", '$(for x in $d; do echo "$x"/*.repo; done)'),
        "dnf main": t._print_files("@@b", t.DNF_MAIN),
        "rpm keys": t.RPM_SHIPPED_KEYS,
        "ssh client": sshclient.script("@@b", "tester"),
    }
    for name, text in scripts.items():
        done = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True)
        assert done.returncode == 0, f"{name}: {done.stderr}"


@needs_root
def test_dnf_shell_reads_a_tree(tmp_path: Path) -> None:
    """The dnf.conf/reposdir shell, run here on files made for it (no dnf needed)."""
    etc = tmp_path / "etc"
    (etc / "dnf").mkdir(parents=True)
    (tmp_path / "repos").mkdir()
    (etc / "dnf/dnf.conf").write_text(f"[main]\ngpgcheck=1\nreposdir={tmp_path}/repos\n")
    (tmp_path / "repos/a.repo").write_text("[a]\nbaseurl=https://a.example/\ngpgcheck=0\n")
    boundary = "@@" + secrets.token_hex(8)
    shell = t.DNF_REPOS.replace("/etc/dnf/dnf.conf", str(etc / "dnf/dnf.conf")) + t._print_files(
        boundary, '$(for x in $d; do echo "$x"/*.repo; done)'
    )
    out = _Local().run("sh -c " + __import__("shlex").quote(shell))
    files = t._sections(out.stdout, boundary)
    assert list(files) == [f"{tmp_path}/repos/a.repo"], out.stderr
    found = apt_trust.dnf_findings("/etc/dnf/dnf.conf", "[main]\ngpgcheck=1\n", files)
    assert found == [f"{tmp_path}/repos/a.repo [a]: gpgcheck off: packages are installed unsigned"]
