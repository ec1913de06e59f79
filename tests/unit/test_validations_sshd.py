"""The pure parts of the SSH checks: sshd -T parsing and the Match-block connection contexts."""

from __future__ import annotations

from validations import sshd
from validations.cloudcfg import merged

SSHD_T = """port 22
passwordauthentication no
ciphers chacha20-poly1305@openssh.com,aes256-ctr
kexalgorithms curve25519-sha256,kex-strict-s-v00@openssh.com
hostkey /etc/ssh/ssh_host_ed25519_key
hostkey /etc/ssh/ssh_host_rsa_key
"""


def test_parse_effective_lowercases_and_joins_repeats() -> None:
    eff = sshd.parse_effective(SSHD_T)
    assert eff["passwordauthentication"] == "no"
    assert eff["hostkey"].splitlines() == [
        "/etc/ssh/ssh_host_ed25519_key",
        "/etc/ssh/ssh_host_rsa_key",
    ]
    assert sshd.algorithms(eff["kexalgorithms"]) == ["curve25519-sha256"]


def test_contexts_cover_each_match_block() -> None:
    config = """
Match Address 10.0.0.0/8,!10.1.0.0/16
    PasswordAuthentication yes
match User deploy*  # comment
    PermitRootLogin yes
Match Group admins LocalPort 2222
    X11Forwarding yes
"""
    ctxs = sshd.contexts([config], ["alice"], {"admins": ["bob"]}, "tester")
    specs = {c.spec() for c in ctxs}
    assert "user=tester,host=client.example.invalid,addr=10.0.0.1" in specs
    assert "user=deployx,host=client.example.invalid,addr=192.0.2.10" in specs
    assert "user=bob,host=client.example.invalid,addr=192.0.2.10,lport=2222" in specs
    assert {
        "user=root,host=client.example.invalid,addr=192.0.2.10",
        "user=alice,host=client.example.invalid,addr=192.0.2.10",
    } <= specs


def test_violations_name_the_context() -> None:
    ctx = sshd.Context(user="tester", addr="10.0.0.1", why="Match Address 10.0.0.0/8")
    bad = sshd.violations(
        {"passwordauthentication": "yes"},
        {"passwordauthentication": {"no"}, "permitemptypasswords": {"no"}},
        ctx,
    )
    assert bad[0].startswith("passwordauthentication yes (want no) [Match Address 10.0.0.0/8")
    assert "permitemptypasswords: not reported" in bad[1]


def test_cloud_cfg_later_file_wins() -> None:
    files = {
        "/etc/cloud/cloud.cfg": "datasource_list: [ Ec2 ]\nusers: [default]\n",
        "/etc/cloud/cloud.cfg.d/90_dpkg.cfg": "datasource_list: [ NoCloud, None ]\n",
        "/etc/cloud/cloud.cfg.d/95-template-datasources.cfg": "datasource_list: [ NoCloud, ConfigDrive ]\n",
        "/etc/cloud/cloud.cfg.d/README": "not yaml: [",
    }
    cfg = merged(
        files.__getitem__, lambda d: [p.rsplit("/", 1)[1] for p in files if p.startswith(d + "/")]
    )
    assert cfg["datasource_list"] == ["NoCloud", "ConfigDrive"]
    assert cfg["users"] == ["default"]
