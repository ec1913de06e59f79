"""The pure parts of the validation v3 checks: accounts as NSS returns them, sudo's parsed
policy, kernel parameters with the kernel's per-interface rules, the package-source probe and
its failure class, AppArmor's kernel state."""

from __future__ import annotations

import json

import pytest

from core.errors import InfrastructureError
from validations import accounts, sudo, sysctl
from validations.test_apparmor import declared_modes, loaded_profiles, problems
from validations.test_package_sources import HostView, judge, parse_probe, release_uris

PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "sync:x:4:65534:sync:/bin:/bin/sync\n"
    "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    "tester:x:1000:1000::/home/tester:/bin/bash\n"
)
SHADOW = "root:*:1::::::\ndaemon:*:1::::::\nsync:*:1::::::\nwww-data:*:1::::::\ntester:!:1::::::\n"
GROUP = "root:x:0:\nadm:x:4:\nsudo:x:27:\nwww-data:x:33:\ntester:x:1000:\n"
GSHADOW = "root:*::\nadm:*::\nsudo:*::\nwww-data:*::\ntester:!::\n"


def test_sound_databases_have_no_finding() -> None:
    assert accounts.password_findings(PASSWD, SHADOW, GROUP, GSHADOW) == []
    assert accounts.identity_findings(PASSWD, GROUP) == []
    assert accounts.login_findings(PASSWD, "UID_MIN 1000\n", {"tester"}) == []


@pytest.mark.parametrize(
    ("passwd", "shadow", "gshadow", "named"),
    [
        (PASSWD.replace("root:x:", "root:$6$abc$" + "h" * 80 + ":"), SHADOW, GSHADOW,
         "root: passwd has a usable password hash"),
        (PASSWD.replace("daemon:x:", "daemon::"), SHADOW, GSHADOW,
         "daemon: passwd has an empty password (no password needed)"),
        (PASSWD, SHADOW.replace("tester:!:", "tester::"), GSHADOW,
         "tester: shadow has an empty password (no password needed)"),
        (PASSWD, SHADOW, GSHADOW.replace("sudo:*::", "sudo:$y$j9T$" + "g" * 40 + "::"),
         "sudo: gshadow has a usable password hash"),
    ],
)  # fmt: skip
def test_each_password_field_counts(passwd: str, shadow: str, gshadow: str, named: str) -> None:
    assert accounts.password_findings(passwd, shadow, GROUP, gshadow) == [named]


def test_root_under_another_name_and_shared_ids() -> None:
    passwd = PASSWD + "toor:x:0:0::/root:/bin/bash\nweb2:x:33:33::/var/www:/usr/sbin/nologin\n"
    group = GROUP + "admins:x:4:\n"
    found = accounts.identity_findings(passwd, group)
    assert found[0] == "UID 0 belongs to root, toor: toor is root under another name"
    assert "UID 33 is shared by www-data, web2" in found
    assert "GID 4 is shared by adm, admins" in found


def test_who_can_log_in() -> None:
    passwd = PASSWD.replace("/var/www:/usr/sbin/nologin", "/var/www:/bin/bash")
    passwd += "svc:x:990:990::/var/lib/svc:\nops:x:1001:1001::/home/ops:/bin/bash\n"
    found = accounts.login_findings(passwd, "UID_MIN\t1000\n", {"tester"})
    assert found == [
        "www-data (system UID 33) has the login shell /bin/bash",
        "svc (system UID 990) has the login shell /bin/sh",
        "ops (UID 1001) is a regular account the template does not document",
    ]
    # UID_MIN from login.defs moves the line between system and regular accounts
    assert accounts.login_findings(PASSWD, "UID_MIN 500\n", set()) == [
        "tester (UID 1000) is a regular account the template does not document"
    ]


def _policy(*specs: dict[str, object], defaults: list[dict[str, object]] | None = None) -> str:
    return json.dumps({"User_Specs": list(specs), "Defaults": defaults or []})


def _spec(who: dict[str, str], command: str = "ALL", nopasswd: bool = False) -> dict[str, object]:
    options = [{"authenticate": False}] if nopasswd else []
    return {
        "User_List": [who],
        "Host_List": [{"hostname": "ALL"}],
        "Cmnd_Specs": [{"Options": options, "Commands": [{"command": command}]}],
    }


BASE = [_spec({"username": "root"}), _spec({"usergroup": "sudo"})]


def test_the_template_policy_passes_and_the_seed_grant_is_allowed() -> None:
    seed = _spec({"username": "tester"}, nopasswd=True)
    policy = sudo.load(_policy(*BASE, seed))
    assert sudo.policy_findings(policy, sudo.load(_policy(seed))) == []
    # the same grant without cloud-init's file behind it is a finding
    assert sudo.policy_findings(policy, {}) == [
        "tester may run ALL as another user without a password (NOPASSWD)"
    ]


def test_grants_and_defaults_beyond_the_policy() -> None:
    policy = sudo.load(
        _policy(
            *BASE,
            _spec({"usergroup": "sudo"}, nopasswd=True),
            _spec({"useralias": "OPS"}, "/usr/bin/apt"),
            defaults=[
                {"Binding": [{"usergroup": "sudo"}], "Options": [{"authenticate": False}]},
                {"Options": [{"operation": "list_add", "env_keep": ["LD_PRELOAD", "TZ"]}]},
                {"Options": [{"use_pty": True}, {"logfile": "/var/log/sudo.log"}]},
                {"Binding": [{"username": "root"}], "Options": [{"authenticate": False}]},
                {"Binding": [{"usergroup": "sudo"}], "Options": [{"setenv": True}]},
            ],
        )
    )
    policy["User_Aliases"] = {"OPS": [{"username": "bob"}, {"usergroup": "ops"}]}
    assert sudo.policy_findings(policy, {}) == [
        "%sudo may run ALL without a password (NOPASSWD)",
        "bob may run /usr/bin/apt as another user",
        "%ops may run /usr/bin/apt as another user",
        "Defaults:%sudo !authenticate: no password asked",
        "Defaults env_keep keeps LD_PRELOAD for root",
        "Defaults:%sudo setenv: the caller may hand root any variable (sudo -E)",
    ]


def test_negated_commands_grant_nothing() -> None:
    spec = _spec({"username": "bob"})
    spec["Cmnd_Specs"] = [{"Commands": [{"command": "/bin/sh", "negated": True}]}]
    assert sudo.grants(sudo.load(_policy(spec))) == []


def test_cvtsudoers_garbage_is_one_clear_error() -> None:
    with pytest.raises(sudo.SudoersError, match="no JSON"):
        sudo.load("sudo: /etc/sudoers is world writable")


SYSCTL_A = """net.ipv4.ip_forward = 0
net.ipv6.conf.all.forwarding = 0
net.ipv4.tcp_syncookies = 1
kernel.randomize_va_space = 2
fs.protected_hardlinks = 1
fs.protected_symlinks = 1
fs.suid_dumpable = 0
kernel.kptr_restrict = 1
vm.mmap_min_addr = 65536
kernel.perf_event_paranoid = 3
kernel.unprivileged_bpf_disabled = 2
net.ipv4.conf.all.send_redirects = 0
net.ipv4.conf.default.send_redirects = 0
net.ipv4.conf.eth0.send_redirects = 0
net.ipv4.conf.lo.send_redirects = 0
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.eth0.accept_redirects = 0
net.ipv4.conf.eth0.forwarding = 0
net.ipv4.conf.all.rp_filter = 1
net.ipv4.conf.eth0.rp_filter = 0
net.ipv6.conf.all.accept_redirects = 0
net.ipv6.conf.eth0.accept_redirects = 0
"""
PROMISED = sysctl.parse_conf(
    "# file\nkernel.kptr_restrict = 1\n-net.ipv4.conf.*.send_redirects = 0\n"
    "net/ipv4/ip_forward = 0\n; comment\n"
)


def test_sound_kernel_parameters_pass() -> None:
    values = sysctl.parse_sysctl_a(SYSCTL_A)
    assert sysctl.problems(values, PROMISED, "90.conf") == []
    assert PROMISED == {
        "kernel.kptr_restrict": "1",
        "net.ipv4.conf.*.send_redirects": "0",
        "net.ipv4.ip_forward": "0",
    }


def test_interface_values_follow_the_kernel_rules() -> None:
    text = SYSCTL_A.replace("eth0.send_redirects = 0", "eth0.send_redirects = 1")
    text = text.replace(
        "ipv6.conf.eth0.accept_redirects = 0", "ipv6.conf.eth0.accept_redirects = 1"
    )
    found = sysctl.problems(sysctl.parse_sysctl_a(text), PROMISED, "90.conf")
    assert "net.ipv4.conf.eth0.send_redirects = 1 (the template's 90.conf sets 0)" in found
    assert any(f.startswith("ipv4 send_redirects is 1 on eth0") for f in found)
    assert any(f.startswith("ipv6 accept_redirects is 1 on eth0") for f in found)
    # rp_filter: the larger of all and the interface decides, so eth0 = 0 is fine with all = 1
    assert not any("rp_filter" in f for f in found)


def test_accept_redirects_is_and_when_the_interface_forwards() -> None:
    rule = next(r for r in sysctl.INTERFACE_RULES if r.key == "accept_redirects")
    assert rule.effective(0, 1, forwarding=0) == 1
    assert rule.effective(0, 1, forwarding=1) == 0


def test_stricter_than_the_template_passes_weaker_fails() -> None:
    values = sysctl.parse_sysctl_a(SYSCTL_A.replace("kptr_restrict = 1", "kptr_restrict = 2"))
    assert sysctl.problems(values, PROMISED, "90.conf") == []
    values = sysctl.parse_sysctl_a(SYSCTL_A.replace("kptr_restrict = 1", "kptr_restrict = 0"))
    assert sysctl.problems(values, PROMISED, "90.conf") == [
        "kernel.kptr_restrict = 0 (the template's 90.conf sets 1)"
    ]


def test_floor_holds_whatever_the_template_says() -> None:
    values = sysctl.parse_sysctl_a(
        SYSCTL_A.replace("ipv6.conf.all.forwarding = 0", "ipv6.conf.all.forwarding = 1")
    )
    assert "net.ipv6.conf.all.forwarding = 1 (want 0)" in sysctl.problems(values, {}, "x")


def test_a_kernel_without_ipv6_holds_every_ipv6_key() -> None:
    """ipv6.disable=1: no net.ipv6 key exists, which is stricter than any value of one; an IPv4
    key the template sets still has to be there."""
    no_ipv6 = "".join(x for x in SYSCTL_A.splitlines(keepends=True) if "ipv6" not in x)
    promised = {**PROMISED, "net.ipv6.conf.all.accept_ra": "0"}
    assert sysctl.problems(sysctl.parse_sysctl_a(no_ipv6), promised, "90.conf") == []
    without_forward = no_ipv6.replace("net.ipv4.ip_forward = 0\n", "")
    assert sysctl.problems(sysctl.parse_sysctl_a(without_forward), promised, "90.conf") == [
        "net.ipv4.ip_forward = None (want 0)",
        "net.ipv4.ip_forward: set by 90.conf but the kernel has no such key",
    ]
    with_ipv6 = sysctl.parse_sysctl_a(SYSCTL_A)
    assert sysctl.problems(with_ipv6, promised, "90.conf") == [
        "net.ipv6.conf.all.accept_ra: set by 90.conf but the kernel has no such key"
    ]


@pytest.mark.parametrize(
    ("line", "weak"),
    [
        ("vm.mmap_min_addr = 65536", "vm.mmap_min_addr = 0"),
        ("kernel.perf_event_paranoid = 3", "kernel.perf_event_paranoid = -1"),
        ("kernel.unprivileged_bpf_disabled = 2", "kernel.unprivileged_bpf_disabled = 0"),
    ],
)
def test_kernel_defaults_the_template_does_not_name_cannot_be_weakened(
    line: str, weak: str
) -> None:
    values = sysctl.parse_sysctl_a(SYSCTL_A.replace(line, weak))
    assert sysctl.problems(values, {}, "x") == [
        f"{weak} (want {sysctl.MINIMUM[weak.split(maxsplit=1)[0]]} or stricter: a kernel default undone)"
    ]
    stricter = sysctl.parse_sysctl_a(
        SYSCTL_A.replace("mmap_min_addr = 65536", "mmap_min_addr = 1048576")
    )
    assert sysctl.problems(stricter, {}, "x") == []


PRINT_URIS = (
    "'http://deb.debian.org/debian/dists/bookworm/InRelease' deb.debian.org_x 0 \n"
    "'http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages.xz' y 0 \n"
    "'http://example.org/flat/Release' z 0 \n"
)


def test_release_uris_are_the_sources() -> None:
    assert release_uris(PRINT_URIS) == [
        "http://deb.debian.org/debian/dists/bookworm/InRelease",
        "http://example.org/flat/Release",
    ]


def test_probe_output_is_parsed() -> None:
    import base64

    b64 = base64.b64encode(PRINT_URIS.encode()).decode()
    err = base64.b64encode(b"E: Failed to fetch").decode()
    out = f"print-uris 0\n{b64}\nfetched 0 http://a/InRelease \nfetched 100 http://b/InRelease {err}\n"
    probe = parse_probe(out)
    assert probe.printed == PRINT_URIS and probe.printed_rc == 0
    assert probe.fetched == {
        "http://a/InRelease": (0, ""),
        "http://b/InRelease": (100, "E: Failed to fetch"),
    }


def test_failure_class_follows_the_cause() -> None:
    a, b = "http://a/InRelease", "http://b/InRelease"
    ok, gone = HostView(a, True, "HTTP 200"), HostView(b, False, "Name or service not known")
    # this machine fetches what the clone cannot: the clone's configuration is at fault
    found = judge({a: "E: could not connect"}, {a: ok, b: ok})
    assert found and "this machine fetches it" in found[0]
    # a source whose server answers 404 is a wrong source line
    assert "HTTP 404" in judge({a: "E"}, {a: HostView(a, True, "HTTP 404"), b: ok})[0]
    # a source nobody reaches while the others answer: its name is wrong
    assert "cannot reach it either" in judge({b: "E"}, {a: ok, b: gone})[0]
    # nothing reachable from here either: the network is down, not the image
    with pytest.raises(InfrastructureError, match="network or the mirrors are down"):
        judge({a: "E", b: "E"}, {a: HostView(a, False, "timed out"), b: gone})


APPARMOR_OK = {
    "enabled": "Y\n",
    "lsm": "lockdown,capability,landlock,yama,apparmor",
    "loaded": "man_filter (enforce)\nman_groff (enforce)\n/usr/bin/man (enforce)\nlsb_release (complain)\n",
    "service": "enabled\nactive\n",
    "switched": "",
    "declared": "/usr/bin/man\t/etc/apparmor.d/usr.bin.man\t\n"
    "man_filter\t/etc/apparmor.d/usr.bin.man\t\nman_groff\t/etc/apparmor.d/usr.bin.man\t\n"
    "lsb_release\t/etc/apparmor.d/lsb_release\tflags=(complain)\n",
    "shipped": "/etc/apparmor.d/usr.bin.man aaa\n/etc/apparmor.d/lsb_release bbb\n",
    "md5": "aaa  /etc/apparmor.d/usr.bin.man\nbbb  /etc/apparmor.d/lsb_release\n",
}


def test_apparmor_sound_state_passes() -> None:
    assert problems(APPARMOR_OK) == []
    assert loaded_profiles(APPARMOR_OK["loaded"])["lsb_release"] == "complain"
    assert declared_modes("x\t/f\tflags=(attach_disconnected, complain)\n") == {"x": {"complain"}}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"enabled": "N\n"}, "AppArmor is off"),
        ({"lsm": "lockdown,capability,yama"}, "not among the active LSMs"),
        ({"service": "masked\ninactive\n"}, "apparmor.service is masked / inactive"),
        ({"switched": "usr.bin.man\n"}, "switched off or to complain"),
        ({"loaded": "man_filter (enforce)\nman_groff (enforce)\n/usr/bin/man (complain)\nlsb_release (complain)\n"},
         "profile /usr/bin/man is in complain mode"),
        ({"loaded": "man_filter (enforce)\n"}, "profile /usr/bin/man (/etc/apparmor.d) is not loaded"),
        ({"md5": "bbb  /etc/apparmor.d/lsb_release\n"}, "usr.bin.man, a profile its package ships, is gone"),
        ({"md5": "aaa  /etc/apparmor.d/usr.bin.man\nccc  /etc/apparmor.d/lsb_release\n",
          "declared": "lsb_release\t/etc/apparmor.d/lsb_release\tflags=(complain)\n",
          "loaded": "lsb_release (complain)\n"},
         "lsb_release was edited out of enforce mode"),
    ],
)  # fmt: skip
def test_apparmor_each_weakening_is_named(change: dict[str, str], named: str) -> None:
    found = problems({**APPARMOR_OK, **change})
    assert any(named in f for f in found), found


# -- accounts-umask ---------------------------------------------------------------------------------


def test_umask_read_from_noisy_start_up_output() -> None:
    assert accounts.last_umask("bash: cannot set terminal process group\nWelcome\n0022\n") == 0o022
    assert accounts.last_umask("0077") == 0o077 and accounts.last_umask("027\n") == 0o027
    assert accounts.last_umask("no job control\n") is None


def test_adduser_dir_mode_last_assignment_wins_else_the_default() -> None:
    assert accounts.adduser_dir_mode("# DIR_MODE=0777\nDIR_MODE=0750\n") == 0o750
    assert accounts.adduser_dir_mode('DIR_MODE="0755"\nDIR_MODE=0777  # site\n') == 0o777
    assert accounts.adduser_dir_mode("DSHELL=/bin/bash\n") == accounts.ADDUSER_DIR_MODE == 0o700


def test_umask_findings_by_who_and_what() -> None:
    good = {"alice's home": 0o750, "adduser's homes": 0o700}
    assert accounts.umask_findings("alice", 0o022, 0o022, good) == []
    assert accounts.umask_findings("alice", 0o002, 0o077, good) == []  # user-private groups
    found = accounts.umask_findings("alice", 0o000, 0o002, {"adduser's homes": 0o777, "x": None})
    assert [f.split(":")[0].split(" is ")[0] for f in found] == [
        "alice's login umask",
        "root's umask under sudo -i",
        "adduser's homes",
        "x",
    ]
    assert accounts.umask_findings("alice", None, None, {})[1].startswith("sudo -i printed no")


def test_kernel_switches_that_turn_protections_off() -> None:
    from validations.kernel_switches import weakening_findings

    good = "BOOT_IMAGE=/vmlinuz root=UUID=x ro console=ttyS0 mitigations=auto pti=on quiet"
    assert weakening_findings(good, "cmdline") == []
    bad = weakening_findings('ro mitigations=off nokaslr "spectre_v2=OFF" kpti=0 nosmap', "grub")
    assert [f.split(" ")[1] for f in bad] == [
        "mitigations=off", "nokaslr", "spectre_v2=OFF", "kpti=0", "nosmap",
    ]  # fmt: skip
    assert weakening_findings("kaslr pti mitigations", "x") == []  # bare keys switch nothing off


def test_kernel_switches_that_turn_access_control_or_audit_off() -> None:
    from validations.kernel_switches import weakening_findings

    bad = weakening_findings("ro apparmor=0 audit=0 selinux=0 enforcing=0", "grub.d")
    assert [f.split(" ")[1] for f in bad] == ["apparmor=0", "audit=0", "selinux=0", "enforcing=0"]
    assert all("mandatory access control or audit" in f for f in bad)
    assert weakening_findings("ro apparmor=1 security=apparmor audit=1 enforcing=1", "x") == []
