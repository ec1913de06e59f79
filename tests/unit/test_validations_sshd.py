"""The pure parts of the SSH checks: sshd -T parsing and the Match-block connection contexts."""

from __future__ import annotations

from validations import sshd
from validations.cloudcfg import merged
from validations.systemd import parse_show

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


def test_listener_titles_give_the_daemons_own_command_line() -> None:
    ps = (
        "    1 /sbin/init\n"
        "  470 sshd: /usr/sbin/sshd -D -f /etc/ssh/alt_config -oPasswordAuthentication=yes "
        "[listener] 0 of 10-100 startups\n"
        "  542 sshd: tester [priv]\n"
        "  601 sshd: /usr/sbin/sshd -D -p 2222 [listener] 0 of 10-100 startups\n"
    )
    found = sshd.listeners(ps)
    assert [inv.pid for inv in found] == ["470", "601"]
    assert found[0].options == ("-f", "/etc/ssh/alt_config", "-o", "PasswordAuthentication=yes")
    assert found[0].config_file == "/etc/ssh/alt_config"
    assert found[1].options == ("-p", "2222") and found[1].config_file == "/etc/ssh/sshd_config"


def test_unit_exec_start_is_expanded_as_systemd_does() -> None:
    show = (
        "Id=ssh.service\n"
        "ExecStart={ path=/usr/sbin/sshd ; argv[]=/usr/sbin/sshd -D $SSHD_OPTS -c ${CERT} ; "
        "ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n"
        "Environment=CERT=/etc/ssh/cert.pub\n"
        "EnvironmentFiles=/etc/default/ssh (ignore_errors=yes)\n"
        "\n"
        "Id=other.service\n"
        "ExecStart={ path=/usr/bin/true ; argv[]=/usr/bin/true ; ignore_errors=no }\n"
    )
    files = {
        "/etc/default/ssh": '# options\nSSHD_OPTS="-f /etc/ssh/other -o PermitRootLogin=yes"\n'
    }
    found = sshd.unit_invocations(parse_show(show), files)
    assert len(found) == 1
    assert found[0].options == (
        "-f", "/etc/ssh/other", "-o", "PermitRootLogin=yes", "-c", "/etc/ssh/cert.pub",
    )  # fmt: skip
    assert found[0].source == "ssh.service ExecStart"


def test_same_options_are_one_way_in() -> None:
    a = sshd.Invocation((), "the running daemon (pid 1)", pid="1")
    b = sshd.Invocation((), "ssh.service ExecStart")
    c = sshd.Invocation(("-p", "2222"), "x.service ExecStart")
    assert sshd.unique_invocations([a, b, c]) == [a, c]


def test_match_group_uses_real_members_and_primary_groups() -> None:
    passwd = "root:x:0:0::/root:/bin/bash\nops1:x:1001:1500::/home/ops1:/bin/bash\n"
    group = "root:x:0:\nops:x:1500:\nadmins:x:1600:\nwheel:x:10:alice\n"
    members = sshd.members(passwd, group)
    assert members["ops"] == ["ops1"] and members["wheel"] == ["alice"] and members["admins"] == []
    config = (
        "Match Group ops\n  PasswordAuthentication yes\nMatch Group admins\n  X11Forwarding yes\n"
    )
    config += "Match Group nosuchgroup\n  PermitRootLogin yes\n"
    ctxs = {c.why: c for c in sshd.contexts([config], [], members, "tester")}
    assert ctxs["Match Group ops"].user == "ops1" and ctxs["Match Group ops"].temp_group is None
    empty = ctxs["Match Group admins"]
    assert empty.user == sshd.TEMP_USER and empty.temp_group == "admins"
    # a group that does not exist cannot match: it adds no connection of its own
    assert "Match Group nosuchgroup" not in ctxs
    assert all(c.temp_group != "nosuchgroup" for c in ctxs.values())


def test_algorithms_policy_accepts_fips_choices_and_refuses_sha1() -> None:
    from validations.test_ssh import weak_algorithms

    eff = {
        "ciphers": "aes256-gcm@openssh.com,aes128-ctr",
        "kexalgorithms": "ecdh-sha2-nistp384,curve25519-sha256",
        "macs": "hmac-sha2-256,hmac-sha2-512-etm@openssh.com",
        "pubkeyacceptedalgorithms": "rsa-sha2-512,ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "hostkeyalgorithms": "ssh-ed25519",
    }
    assert weak_algorithms(eff) == []
    weak = weak_algorithms({**eff, "pubkeyacceptedalgorithms": "ssh-ed25519,ssh-rsa,ssh-dss"})
    assert weak == ["pubkeyacceptedalgorithms: weak ssh-rsa, ssh-dss"]
    assert weak_algorithms({**eff, "macs": "hmac-sha1"}) == ["macs: weak hmac-sha1"]


def test_password_as_second_factor_is_allowed_alone_is_not() -> None:
    from validations.test_ssh import Evaluated, password_problems

    inv = sshd.Invocation((), "the running daemon (pid 1)", pid="1")
    base = {"permitemptypasswords": "no", "kbdinteractiveauthentication": "yes"}
    mfa = Evaluated(inv, None, {**base, "passwordauthentication": "yes",
                                "authenticationmethods": "publickey,keyboard-interactive"})  # fmt: skip
    assert password_problems(mfa) == []
    either = Evaluated(inv, None, {**base, "passwordauthentication": "no",
                                   "authenticationmethods": "publickey password"})  # fmt: skip
    assert password_problems(either) == ["kbdinteractiveauthentication yes (want no)"]
    alone = Evaluated(inv, None, {**base, "passwordauthentication": "yes",
                                  "authenticationmethods": "any"})  # fmt: skip
    assert len(password_problems(alone)) == 2
