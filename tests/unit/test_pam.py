"""validations/pam.py: PAM stacks walked with libpam's own rules (pam_handlers.c,
pam_dispatch.c, pam_misc.c), on Debian 12's real /etc/pam.d (tests/data/pam/debian12, copied
from the template image) and on EL 9's as authselect's sssd profile renders it
(tests/data/pam/el9), then on small stacks for each rule: jumps, substacks, reset, include,
@include, missing files and the `other` fallback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from validations import pam

DATA = Path(__file__).resolve().parents[1] / "data" / "pam"


def reader(files: dict[str, str]) -> pam.ReadService:
    return files.get


def folder(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


def debian() -> dict[str, str]:
    files = folder(DATA / "debian12" / "etc-pam.d")
    files.setdefault("systemd-user", (DATA / "debian12/usr-lib-pam.d/systemd-user").read_text())
    return files


def problems(files: dict[str, str], services: list[str] | None = None) -> list[str]:
    found = pam.audit(services if services is not None else list(files), reader(files))
    return sorted(f"{f.service}: {f.problem}" for f in found)


def bypass(*lines: str, extra: dict[str, str] | None = None) -> list[str]:
    """Bypass walks of a service `svc` made of `lines` (plus `extra` files)."""
    files = {"svc": "\n".join(lines) + "\n", **(extra or {})}
    rules, _ = pam.auth_rules("svc", reader(files))
    return pam.bypasses(rules)


# -- the distributions' own files ----------------------------------------------------------------


def test_debian_common_auth_with_nullok_is_found_in_every_service() -> None:
    found = problems(debian())
    services = {line.split(":", 1)[0] for line in found}
    assert {"sshd", "login", "su", "sudo", "other", "systemd-user", "chpasswd"} <= services
    assert "sshd: common-auth:17: pam_unix nullok (an empty password logs in)" in found
    assert (
        "sshd: succeeds with no credential checked: "
        "pam_unix(common-auth:17, nullok) -> pam_permit(common-auth:23)"
    ) in found


def debian_without_nullok() -> dict[str, str]:
    files = debian()
    files["common-auth"] = files["common-auth"].replace("pam_unix.so nullok", "pam_unix.so")
    return files


def test_debian_without_nullok_passes_though_common_auth_ends_in_pam_permit() -> None:
    files = debian_without_nullok()
    assert "auth\trequired\t\t\tpam_permit.so" in files["common-auth"]
    assert problems(files) == []


def test_an_extra_optional_module_changes_nothing() -> None:
    files = debian_without_nullok()
    files["sshd"] = "auth optional pam_faildelay.so delay=4000000\n" + files["sshd"]
    files["common-auth"] += "auth optional pam_cap.so\n"
    assert problems(files) == []


def test_el9_authselect_nullok_and_sssd_shadowutils() -> None:
    files = folder(DATA / "el9")
    found = problems(files)
    assert "sshd: password-auth:10: pam_unix nullok (an empty password logs in)" in found
    assert any(
        line.startswith("sssd-shadowutils: sssd-shadowutils:2: pam_unix nullok") for line in found
    )
    assert "other" not in {line.split(":", 1)[0] for line in found}  # pam_deny only


def test_el9_without_nullok_passes() -> None:
    files = {
        name: re.sub(r"(pam_unix\.so.*?) nullok", r"\1", text)
        for name, text in folder(DATA / "el9").items()
    }
    assert problems(files) == []


# -- what opens a door ---------------------------------------------------------------------------


def test_sufficient_pam_permit_first() -> None:
    assert bypass("auth sufficient pam_permit.so", "auth required pam_unix.so") == [
        "pam_permit(svc:1)"
    ]


def test_pam_unix_never_ignores_so_a_prior_success_does_not_carry() -> None:
    assert bypass("auth required pam_env.so", "auth required pam_unix.so") == []
    assert bypass("auth required pam_env.so", "auth required pam_sss.so") == ["pam_env(svc:1)"], (
        "pam_sss may answer PAM_IGNORE (ignore_unknown_user): pam_env's success then stands"
    )


@pytest.mark.parametrize(
    "line",
    [
        "auth sufficient pam_succeed_if.so user ingroup wheel",
        "auth sufficient pam_wheel.so trust use_uid",
        "auth sufficient pam_exec.so /usr/local/bin/ok",
        "auth sufficient /lib/x86_64-linux-gnu/security/pam_localuser.so",
        "-auth sufficient pam_permit.so",
        "auth [success=done default=ignore] pam_listfile.so item=user sense=allow file=/etc/ok",
    ],
)
def test_a_conditional_module_that_can_end_the_stack(line: str) -> None:
    assert bypass(line, "auth required pam_unix.so")


def test_pam_rootok_lets_no_user_in() -> None:
    assert bypass("auth sufficient pam_rootok.so", "auth required pam_deny.so") == []


def test_jump_over_pam_deny() -> None:
    lines = ("auth requisite pam_deny.so", "auth required pam_permit.so")
    assert bypass("auth [success=1 default=ignore] pam_unix.so", *lines) == []
    assert bypass("auth [success=1 default=ignore] pam_succeed_if.so uid >= 1000", *lines) == [
        "pam_succeed_if(svc:1) -> pam_permit(svc:3)"
    ]
    assert bypass("auth [success=2 default=ignore] pam_unix.so", *lines) == [], (
        "a jump past the end fails the stack"
    )


def test_include_splices_and_substack_contains() -> None:
    extra = {"s": "auth sufficient pam_permit.so\n"}
    # include: pam_permit's `done` ends the whole stack
    assert bypass("auth include s", "auth required pam_unix.so", extra=extra) == ["pam_permit(s:1)"]
    # substack: `done` ends only the substack; pam_unix still decides
    assert bypass("auth substack s", "auth required pam_unix.so", extra=extra) == []


def test_done_in_a_substack_does_not_skip_the_next_substack() -> None:
    extra = {"a": "auth sufficient pam_permit.so\n", "b": "auth requisite pam_deny.so\n"}
    assert bypass("auth substack a", "auth substack b", extra=extra) == []


def test_a_jump_counts_a_substack_as_one_module() -> None:
    extra = {"d": "auth requisite pam_deny.so\n"}
    after = ("auth substack d", "auth required pam_permit.so")
    assert bypass("auth [success=1 default=ignore] pam_unix.so", *after, extra=extra) == []
    assert bypass("auth [success=1 default=ignore] pam_exec.so /x", *after, extra=extra) == [
        "pam_exec(svc:1) -> pam_permit(svc:3)"
    ]
    # die in the substack ends the substack only, but the verdict is already negative
    assert bypass("auth required pam_env.so", *after, extra=extra) == []


def test_reset_forgets_a_failure() -> None:
    head = ("auth required pam_deny.so",)
    tail = ("auth required pam_permit.so",)
    assert bypass(*head, "auth optional pam_env.so", *tail) == []
    assert bypass(*head, "auth [default=reset] pam_env.so", *tail) == ["pam_permit(svc:3)"]


def test_reset_in_a_substack_goes_back_to_its_entry() -> None:
    extra = {"s": "auth [default=reset] pam_env.so\nauth required pam_permit.so\n"}
    assert bypass("auth required pam_deny.so", "auth substack s", extra=extra) == []


def test_other_is_used_when_a_service_has_no_auth_line_or_no_file() -> None:
    files = {
        "other": "auth sufficient pam_permit.so\n",
        "chpasswd": "password required pam_unix.so\n",
        "sshd": "auth required pam_unix.so\n",
    }
    found = problems(files, ["chpasswd", "sshd", "not-there"])
    assert found == [
        "chpasswd: succeeds with no credential checked: pam_permit(other:1)",
        "not-there: succeeds with no credential checked: pam_permit(other:1)",
        "other: succeeds with no credential checked: pam_permit(other:1)",
    ]
    assert pam.auth_rules("not-there", reader(files))[1] == "other"


def test_debian_at_include_takes_every_type_and_keeps_the_level() -> None:
    extra = {"common-auth": "account required pam_unix.so\nauth sufficient pam_permit.so\n"}
    assert bypass("@include common-auth", "auth required pam_unix.so", extra=extra) == [
        "pam_permit(common-auth:2)"
    ]


def test_missing_include_fails_closed() -> None:
    assert bypass("auth include nowhere", "auth required pam_permit.so") == []
    assert bypass("@include nowhere", "auth required pam_permit.so") == []
    rules, _ = pam.auth_rules("svc", reader({"svc": "auth substack nowhere\n"}))
    assert [r.kind for r in rules] == [pam.SUBSTACK, pam.BROKEN]
    assert "cannot open 'nowhere'" in rules[1].why


def test_include_loop_stops_at_libpam_depth() -> None:
    rules, _ = pam.auth_rules("svc", reader({"svc": "auth include svc\n"}))
    assert rules[-1].kind == pam.BROKEN and "too deep" in rules[-1].why
    assert pam.bypasses(rules) == []


def test_lines_libpam_refuses_always_fail() -> None:
    assert bypass("auth sufficient", "auth required pam_permit.so") == ["pam_permit(svc:2)"], (
        "a sufficient line without a module only fails itself (ignored)"
    )
    assert bypass("auht required pam_permit.so", "auth required pam_permit.so") == [], (
        "an unknown type is an auth handler that always fails"
    )
    assert bypass("auth", "auth required pam_permit.so") == []


# -- control fields and lines, as libpam reads them -----------------------------------------------


def test_keywords_are_case_insensitive_brackets_are_not() -> None:
    assert pam.parse_control("Sufficient")[pam.SUCCESS] == "done"
    assert set(pam.parse_control("Success=ok").values()) == {"bad"}
    # a bad token makes every action bad: pam_permit then fails the stack
    assert bypass("auth [Success=done default=ignore] pam_permit.so") == []
    assert bypass("auth [success=done default=ignore] pam_permit.so") == ["pam_permit(svc:1)"]


def test_control_parsing_rules() -> None:
    c = pam.parse_control("default=ignore success=ok")
    assert c["success"] == "ok" and c["auth_err"] == "ignore"
    c = pam.parse_control("success=ok default=die default=ignore")
    assert c["auth_err"] == "die", "the first default wins: it fills only unset values"
    c = pam.parse_control("success = 2  new_authtok_reqd=done")
    assert c["success"] == "2" and c["new_authtok_reqd"] == "done" and c["user_unknown"] == "bad"
    for broken in ("success=0", "success=okay", "nosuch=ok", "success", "success=", "success=x"):
        assert set(pam.parse_control(broken).values()) == {"bad"}, broken
    assert pam.parse_control("required")["ignore"] == "ignore"
    assert pam.parse_control("optional")["auth_err"] == "ignore"


def test_continuation_and_comments() -> None:
    assert bypass("auth sufficient \\", "   pam_permit.so", "auth required pam_unix.so")
    # a line with a comment never continues, even when it ends in a backslash
    assert bypass("auth optional pam_env.so # note \\", "auth sufficient pam_permit.so")
    assert bypass("auth [success=done \\", " default=ignore] pam_permit.so")


def test_bracketed_arguments_and_module_names() -> None:
    rules, _ = pam.auth_rules(
        "svc", reader({"svc": "auth required /lib/security/pam_unix.so.0 [a b] nullok\n"})
    )
    assert rules[0].module == "pam_unix" and rules[0].args == ("a b", "nullok")
    assert pam.nullok(("nullok_secure",))


def test_the_walk_stays_small_on_real_stacks() -> None:
    files = {n: t.replace(" nullok", "") for n, t in folder(DATA / "el9").items()}
    rules, _ = pam.auth_rules("sshd", reader(files))
    assert [r.module for r in rules][:3] == ["(substack password-auth)", "pam_env", "pam_faildelay"]
    assert pam.bypasses(rules) == []


# -- the hash a password stack stores ------------------------------------------------------------

DEBIAN_LOGIN_DEFS = "UMASK\t\t022\nENCRYPT_METHOD SHA512\n"


def hashing(files: dict[str, str], login_defs: str = DEBIAN_LOGIN_DEFS) -> list[str]:
    return sorted(f.problem for f in pam.weak_hashing(list(files), reader(files), login_defs))


def test_distribution_stacks_store_strong_hashes() -> None:
    assert hashing(debian()) == []
    el = folder(DATA / "el9")
    assert hashing(el, "ENCRYPT_METHOD SHA512\n") == []


def test_md5_option_in_common_password_is_found_once() -> None:
    files = debian()
    files["common-password"] = files["common-password"].replace("yescrypt", "md5")
    found = hashing(files)
    assert len(found) == 1 and "md5-crypt (its options)" in found[0], found
    assert found[0].startswith("common-password:")


def test_the_last_hash_option_wins_and_login_defs_is_the_default() -> None:
    assert pam.password_hash(("obscure", "md5", "sha512"), None) == "sha512"
    assert pam.password_hash(("sha512", "md5"), None) == "md5"
    assert pam.password_hash(("obscure",), "sha512") == "sha512"  # case-insensitive there
    assert pam.password_hash(("obscure",), "MD5") == "md5"
    assert pam.password_hash(("obscure",), "DES") is None  # not a token: DES crypt
    assert pam.password_hash(("obscure",), None) is None


def test_no_hash_option_falls_back_to_login_defs() -> None:
    files = {"common-password": "password required pam_unix.so obscure\n",
             "passwd": "@include common-password\n"}  # fmt: skip
    assert hashing(files, "ENCRYPT_METHOD YESCRYPT\n") == []
    found = hashing(files, "# ENCRYPT_METHOD SHA512\nENCRYPT_METHOD MD5\n")
    assert found == [
        "common-password:1: pam_unix stores new passwords as md5-crypt "
        "(login.defs ENCRYPT_METHOD MD5); want yescrypt or sha512"
    ]
    assert "DES crypt" in hashing(files, "")[0]
