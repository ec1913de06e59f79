"""The pure parts of the validation v2 checks, and the failure class that follows its cause:
cloud-init's merge rules, its security settings, whom sshd trusts, documented listeners,
account-file backups, and the verdict of a clone unreachable because of its image."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from core.errors import ImageDefect, InfrastructureError, failure_class
from core.model import TemplateRef, TemplateSpec
from harness.recorder import annotate, to_record
from validations import cloudcfg, credentials, sshd
from validations.test_cloud_init import security_problems
from validations.test_ssh import trust_problems
from validations.test_system import _allowed
from verdict.compute import CheckRecord, os_verdict

CLOUD_CFG = """
users: [default]
disable_root: true
system_info:
  distro: debian
  default_user: {name: debian, lock_passwd: true, shell: /bin/bash}
"""


def merged(files: dict[str, str]) -> dict[str, Any]:
    def read(path: str) -> str:
        return files[path]

    def listdir(path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return [p[len(prefix) :] for p in files if p.startswith(prefix)]

    return cloudcfg.merged(read, listdir)


def test_a_later_drop_in_does_not_wipe_earlier_nested_settings() -> None:
    """A top-level replace would lose default_user to 90-network-renderers.cfg's system_info."""
    cfg = merged(
        {
            "/etc/cloud/cloud.cfg": CLOUD_CFG,
            "/etc/cloud/cloud.cfg.d/90-network-renderers.cfg": (
                "system_info:\n  network:\n    renderers: [netplan, networkd]\n"
            ),
        }
    )
    assert cfg["system_info"]["default_user"]["name"] == "debian"
    assert cfg["system_info"]["network"]["renderers"] == ["netplan", "networkd"]


def test_the_last_drop_in_wins_scalars_and_lists_by_default() -> None:
    cfg = merged(
        {
            "/etc/cloud/cloud.cfg": CLOUD_CFG + "datasource_list: [Ec2]\n",
            "/etc/cloud/cloud.cfg.d/10-a.cfg": "ssh_pwauth: true\ndatasource_list: [NoCloud]\n",
            "/etc/cloud/cloud.cfg.d/99-b.cfg": "ssh_pwauth: false\n",
            "/etc/cloud/cloud.cfg.d/README": "not yaml: [",
        }
    )
    assert cfg["ssh_pwauth"] is False
    assert cfg["datasource_list"] == ["NoCloud"]  # lists are not merged, the first source wins


def test_merge_how_in_a_drop_in_changes_how_it_merges() -> None:
    """Drop-ins merge in reverse name order into what the later ones set: 50-users.cfg's own
    merge_how appends to 99-users.cfg's list instead of being ignored."""
    cfg = merged(
        {
            "/etc/cloud/cloud.cfg": CLOUD_CFG,
            "/etc/cloud/cloud.cfg.d/99-users.cfg": "users: [default]\n",
            "/etc/cloud/cloud.cfg.d/50-users.cfg": (
                "merge_how: 'dict(recurse_array,no_replace)+list(append)'\n"
                "users: [{name: backdoor, lock_passwd: false}]\n"
            ),
        }
    )
    names = [u if isinstance(u, str) else u["name"] for u in cfg["users"]]
    assert names == ["default", "backdoor"]
    assert "merge_how" not in cfg
    assert "users[backdoor]: lock_passwd is False, want true" in security_problems(cfg)


def test_merger_specs_parse_as_cloud_init_does() -> None:
    assert cloudcfg.parse_merge_how("list(append)+dict(no_replace,recurse_list)+str()") == [
        ("list", ["append"]),
        ("dict", ["no_replace", "recurse_list"]),
        ("str", []),
    ]
    assert cloudcfg.parse_merge_how([{"name": "list", "settings": ["prepend"]}]) == [
        ("list", ["prepend"])
    ]
    with pytest.raises(ValueError, match="name\\(options\\)"):
        cloudcfg.parse_merge_how("list")


def test_security_settings_with_cloud_init_defaults() -> None:
    good = merged({"/etc/cloud/cloud.cfg": CLOUD_CFG + "ssh_pwauth: false\n"})
    assert security_problems(good) == []
    assert security_problems({}) == ["ssh_pwauth is None, want false"]
    bad = security_problems(
        {
            "ssh_pwauth": "no",
            "disable_root": "false",
            "chpasswd": {"expire": False, "users": [{"name": "root", "password": "x"}]},
            "ssh_import_id": ["gh:someone"],
            "system_info": {"default_user": {"lock_passwd": False, "passwd": "$6$x"}},
        }
    )
    assert bad == [
        "disable_root is 'false', want true",
        "baked chpasswd: every clone gets it",
        "baked ssh_import_id: every clone gets it",
        "default_user: lock_passwd is False, want true",
        "default_user: baked passwd",
    ]
    assert security_problems({"ssh_pwauth": False, "chpasswd": {"expire": False}}) == []
    assert security_problems(
        {"ssh_pwauth": False, "disable_root_opts": "no-port-forwarding,no-X11-forwarding",
         "ssh_keys": {"ed25519_private": "-----BEGIN OPENSSH PRIVATE KEY-----"}}
    ) == [
        "disable_root_opts is 'no-port-forwarding,no-X11-forwarding': without a command= "
        "root's keys log in",
        "baked ssh_keys: every clone gets it",
    ]  # fmt: skip
    kept = "no-pty,command=\"echo 'Please login as $USER';sleep 10;exit 142\""
    assert security_problems({"ssh_pwauth": False, "disable_root_opts": kept}) == []


DEFAULT_TRUST = {
    "authorizedkeysfile": ".ssh/authorized_keys .ssh/authorized_keys2",
    "authorizedkeyscommand": "none",
    "authorizedprincipalscommand": "none",
    "authorizedprincipalsfile": "none",
    "trustedusercakeys": "none",
    "strictmodes": "yes",
    "hostkey": "/etc/ssh/ssh_host_ecdsa_key\n/etc/ssh/ssh_host_ed25519_key",
}


def test_sshd_trusting_only_own_keys_passes() -> None:
    assert trust_problems(DEFAULT_TRUST, None) == []
    assert (
        trust_problems({**DEFAULT_TRUST, "authorizedkeysfile": "%h/.ssh/authorized_keys"}, None)
        == []
    )


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("authorizedkeysfile", ".ssh/authorized_keys /etc/ssh/keys/%u", "/etc/ssh/keys/%u"),
        ("authorizedkeyscommand", "/usr/bin/fetch-keys %u", "authorizedkeyscommand"),
        ("authorizedprincipalsfile", "/etc/ssh/principals", "authorizedprincipalsfile"),
        ("trustedusercakeys", "/etc/ssh/ca.pub", "trustedusercakeys"),
        ("strictmodes", "no", "strictmodes"),
        (
            "hostkey",
            "/etc/ssh/ssh_host_ed25519_key\n/etc/ssh/golden_shared_key",
            "golden_shared_key",
        ),
    ],
)
def test_each_other_trust_is_named(key: str, value: str, named: str) -> None:
    bad = trust_problems({**DEFAULT_TRUST, key: value}, None)
    assert len(bad) == 1 and named in bad[0]


def test_trust_in_a_match_context_names_the_context() -> None:
    ctx = sshd.Context(user="deploy", why="Match User deploy")
    bad = trust_problems({**DEFAULT_TRUST, "trustedusercakeys": "/etc/ssh/ca.pub"}, ctx)
    assert bad and "Match User deploy" in bad[0]


@pytest.mark.parametrize(
    ("proto", "address", "port", "allowed"),
    [
        ("tcp", "0.0.0.0", 22, True),
        ("tcp", "::", 22, True),
        ("udp", "10.0.2.15%enp0s1", 68, True),
        ("udp", "127.0.0.53%lo", 53, True),
        ("tcp", "127.0.0.54", 53, True),
        ("udp", "127.0.0.1", 323, True),
        ("udp", "0.0.0.0", 5355, False),  # LLMNR
        ("tcp", "::", 5355, False),
        ("udp", "0.0.0.0", 53, False),  # a resolver open to the network
        ("tcp", "127.0.0.1", 8080, False),
    ],
)
def test_listener_exceptions(proto: str, address: str, port: int, allowed: bool) -> None:
    assert _allowed(proto, address, port) is allowed


def test_password_fields_of_account_backups() -> None:
    assert credentials.password_problem("!", "shadow") is None
    assert credentials.password_problem("*", "shadow") is None
    assert credentials.password_problem("!$6$abc", "shadow") is None  # locked keeps the hash
    assert credentials.password_problem("x", "passwd") is None
    assert credentials.password_problem("", "gshadow") is None
    assert credentials.password_problem("$6$abc$def", "shadow") == "a usable password hash"
    assert credentials.password_problem("", "shadow") == "an empty password (no password needed)"
    assert credentials.password_problem("x", "shadow") == "a usable password hash"


def test_secret_patterns_do_not_fire_on_masked_or_plain_text() -> None:
    assert credentials.secrets_in(b"password: ********\n") == []
    assert credentials.secrets_in(b"passwd\nsudo -i\n") == []
    assert credentials.secrets_in(b"Setting up openssh-server (1:9.2p1-2)\n") == []
    assert credentials.secrets_in(b"root:$y$j9T$0123456789abcdef$" + b"x" * 43) == [
        "a password hash"
    ]


# -- the failure class follows the cause -----------------------------------------------------------


class BootFailed(Exception):  # stands for harness.fixtures.BootFailed: it carries its class
    def __init__(self, message: str, klass: str) -> None:
        super().__init__(message)
        self.failure_class = klass


def test_failure_class_reads_the_cause_chain() -> None:
    assert failure_class(ImageDefect("x")) == "image-defect"
    assert failure_class(InfrastructureError("x")) == "infrastructure"
    assert failure_class(RuntimeError("x")) == "infrastructure"
    try:
        try:
            raise ImageDefect("sshd offers no common cipher")
        except ImageDefect as inner:
            raise RuntimeError("boot failed") from inner
    except RuntimeError as outer:
        assert failure_class(outer) == "image-defect"
    assert failure_class(BootFailed("x", "image-defect")) == "image-defect"


def _report(
    when: Literal["setup", "call", "teardown"], exc: BaseException, props: list[tuple[str, object]]
) -> Any:
    import pytest as _pytest

    def fail() -> None:
        raise exc

    call = _pytest.CallInfo.from_call(fail, when)
    report = _pytest.TestReport(
        nodeid="validations/test_ssh.py::test_crypto[debian12]",
        location=("validations/test_ssh.py", 1, "test_crypto"),
        keywords={},
        outcome="failed",
        longrepr=f"E   {type(exc).__name__}: {exc}",
        when=when,
        user_properties=props,
    )
    annotate(report, call)
    return report


def test_setup_error_of_an_image_defect_boot_is_an_image_defect() -> None:
    props: list[tuple[str, object]] = [("os", "debian12"), ("check_id", "ssh-crypto")]
    cause = BootFailed("debian12: boot failed: no common cipher (check ssh-crypto)", "image-defect")
    record = to_record(_report("setup", cause, props))
    assert record is not None and record.failure_class == "image-defect"
    assert props == [("os", "debian12"), ("check_id", "ssh-crypto")], "item's list untouched"
    infra = to_record(_report("setup", InfrastructureError("QEMU exited"), list(props)))
    assert infra is not None and infra.failure_class == "infrastructure"


def test_a_check_failing_on_the_mirror_is_infrastructure() -> None:
    props: list[tuple[str, object]] = [("os", "debian12"), ("check_id", "system-security-updates")]
    mirror = to_record(_report("call", InfrastructureError("apt-get update failed"), props))
    assert mirror is not None and mirror.failure_class == "infrastructure"
    finding = to_record(_report("call", AssertionError("1 security update pending"), props))
    assert finding is not None and finding.failure_class == "image-defect"


SPEC = TemplateSpec(
    name="debian12",
    family="debian",
    version="12",
    templates={"local": TemplateRef(Path("packer/local"), "local", ("qemu.vm",))},
)


def test_verdict_of_an_unreachable_clone_follows_its_cause() -> None:
    expected = ("ssh-crypto", "hygiene-host-keys")
    msg = "E   BootFailed: debian12: boot failed: sshd ... no common cipher (check ssh-crypto)"
    tests = [
        CheckRecord(
            "n1", "debian12", "ssh-crypto", "", "error", "setup", 0.1, msg, None, "image-defect"
        ),
        CheckRecord("n2", "debian12", "hygiene-host-keys", "", "passed", "call", 0.1, None, None),
    ]
    v = os_verdict(SPEC, {"status": "built", "duration_s": 1.0}, tests, expected, "local")
    assert v["failure_class"] == "image-defect"
    assert v["reasons"] == [
        "1 check(s) could not run (ssh-crypto): BootFailed: debian12: boot failed: sshd ... "
        "no common cipher (check ssh-crypto)"
    ]
    assert v["checks"]["passed"] == ["hygiene-host-keys"]  # the offline checks still report


def test_security_update_list_reaches_the_record() -> None:
    import json

    props: list[tuple[str, object]] = [
        ("os", "debian12"),
        ("check_id", "system-security-updates"),
        ("security_updates", json.dumps(["libssl3 3.0.19 -> 3.0.22"])),
    ]
    record = to_record(_report("call", AssertionError("pending"), props))
    assert record is not None and record.data == {"security_updates": ["libssl3 3.0.19 -> 3.0.22"]}


def test_hosts_names_reads_every_mapped_name_and_no_comment() -> None:
    from validations.test_cloud_init import hosts_names

    text = (
        "# Your system has configured 'manage_etc_hosts' as True.\n"
        "127.0.1.1 tpl-debian12-ab12.localdomain tpl-debian12-ab12\n"
        "127.0.0.1 localhost\n"
        "::1 localhost ip6-localhost ip6-loopback  # debian\n"
        "\n"
    )
    names = hosts_names(text)
    assert "tpl-debian12-ab12" in names and "ip6-loopback" in names
    assert not names & {"#", "Your", "debian", "127.0.1.1"}
    assert "tpl-debian12-ab12" not in hosts_names("127.0.1.1 debian\n# tpl-debian12-ab12\n")
