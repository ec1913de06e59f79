"""Scheduling ids, redaction, settings and version constraints."""

from __future__ import annotations

import pytest

from core.errors import UsageError
from core.redact import Redactor
from core.settings import OPTIONS, Settings, parse_duration, parse_size
from harness.preflight import check_settings, version_satisfies
from harness.scheduling import os_of_nodeid

NAMES = ["debian12", "ubuntu2204", "centos-stream9", "centos-stream"]


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("validations/test_ssh.py::test_x[debian12]", "debian12"),
        ("validations/test_ssh.py::test_x[centos-stream9]", "centos-stream9"),
        ("validations/test_ssh.py::test_x[centos-stream]", "centos-stream"),
        ("validations/test_sys.py::test_y[ubuntu2204-net.ipv4.ip_forward]", "ubuntu2204"),
        ("validations/test_sys.py::test_y[kernel.sysrq-debian12]", "debian12"),
        ("tests/unit/test_a.py::test_b", None),
        ("tests/unit/test_a.py::test_b[debian1]", None),
    ],
)
def test_os_of_nodeid(nodeid: str, expected: str | None) -> None:
    assert os_of_nodeid(nodeid, NAMES) == expected


def test_redactor_masks_secrets_and_session_ids() -> None:
    r = Redactor(["hunter22", "x"])  # too-short values are not masked (they would garble text)
    text = r("login hunter22 ok; PUT /import?session_id=OpaqueRef:abc-123&task_id=t x")
    assert "hunter22" not in text
    assert "OpaqueRef:abc-123" not in text
    assert "session_id=***" in text and "task_id=t x" in text


def test_settings_order_cli_env_default() -> None:
    s = Settings.from_env({"TEMPLATE_PLATFORM": "local", "XCPNG_PASSWORD": "pw-secret"})
    assert s.platform == "local"
    assert s.keep_vm == "never"
    assert s.secrets() == ["pw-secret"]
    assert "pw-secret" not in repr(s)
    s2 = Settings.from_env({"TEMPLATE_PLATFORM": "local"}, platform="xcpng")
    assert s2.platform == "xcpng"


def test_bad_choice_from_env_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="TEMPLATE_KEEP_VM='sometimes' is not valid"):
        Settings.from_env({"TEMPLATE_KEEP_VM": "sometimes"})


def test_missing_settings_listed_together() -> None:
    s = Settings.from_env({"XCPNG_URL": "https://pool"})
    problems = check_settings(s, {"xcpng"})
    assert len(problems) == 1
    for name in ("XCPNG_USERNAME", "XCPNG_PASSWORD", "XCPNG_NETWORK"):
        assert name in problems[0]
    assert "XCPNG_URL" not in problems[0]


def test_every_option_has_an_env_var_and_help() -> None:
    envs = [o.env for o in OPTIONS]
    assert len(envs) == len(set(envs))
    assert all(o.help and o.flag.startswith("--") for o in OPTIONS)


@pytest.mark.parametrize(
    ("version", "constraint", "ok"),
    [
        ("1.6.6", ">= 1.7.0", False),
        ("1.11.2", ">= 1.7.0", True),
        ("1.6.6", "= 1.6.6", True),
        ("1.10.3", "~> 1.10", True),
        ("2.0.0", "~> 1.10", False),
        ("1.9.4", ">= 1.7, < 1.10", True),
    ],
)
def test_version_constraints(version: str, constraint: str, ok: bool) -> None:
    assert version_satisfies(version, constraint) is ok


def test_durations_and_sizes() -> None:
    assert parse_duration("7d", "x") == 7 * 86400
    assert parse_duration("90m", "x") == 5400
    assert parse_size("8G", "x") == 8 << 30
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration("soon", "--build-timeout")


def test_secret_on_the_command_line_is_refused() -> None:
    with pytest.raises(UsageError, match="set XCPNG_PASSWORD in the environment"):
        Settings.from_env({}, xcpng_password="hunter22")


def test_keep_decision_is_made_in_one_place() -> None:
    from core.settings import keep_decision

    assert keep_decision("always", failed=False) is True
    assert keep_decision("on-failure", failed=True) is True
    assert keep_decision("on-failure", failed=False) is False
    assert keep_decision("never", failed=True) is False


def test_every_bad_value_named_in_one_usage_error() -> None:
    with pytest.raises(UsageError) as err:
        Settings.from_env(
            {
                "TEMPLATE_BOOT_TIMEOUT": "soon",
                "TEMPLATE_MIN_FREE_DISK": "lots",
                "XCPNG_SSH_PORT": "ssh",
                "S3_TLS_VERIFY": "maybe",
                "XCPNG_PASSWORD": "abc",
            }
        )
    text = str(err.value)
    for name in (
        "TEMPLATE_BOOT_TIMEOUT",
        "TEMPLATE_MIN_FREE_DISK",
        "XCPNG_SSH_PORT",
        "S3_TLS_VERIFY",
        "XCPNG_PASSWORD",
    ):
        assert name in text
    assert "abc" not in text  # a secret is named, never shown


def test_values_parsed_once_into_types() -> None:
    s = Settings.from_env(
        {"TEMPLATE_BOOT_TIMEOUT": "2m", "S3_MULTIPART_CHUNKSIZE": "16M", "XCPNG_TLS_VERIFY": "0"},
        keep_vm_ttl="1h",
    )
    assert s.boot_timeout == 120.0 and s.keep_vm_ttl == 3600.0
    assert s.s3.multipart_chunksize == 16 << 20 and s.xcpng.tls_verify is False
    assert s.artifacts_dir.is_absolute() and s.packer_dir.name == "packer"
