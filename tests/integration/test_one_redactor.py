"""One secret, planted in every path text leaves by, masked the same way everywhere.

The secret is the pool password (a setting, from the environment). It reaches the build log
(Packer prints it), a failing check's message (JUnit and results.json), the published metadata
(through the run id), an exception message of the publish command, and an XAPI error carrying
it next to a live session id. Each output holds the same mask and no form of the secret.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import XenAPI

from benchmarks.fake_project import run_harness, write_project
from core.redact import MASK
from core.settings import Settings
from platforms.xcpng.client import describe
from platforms.xcpng.platform import connect
from tests.twins.xapi import XapiTwin
from tests.twins.xapi.helpers import twin_env

SECRET = "Tr0ub4dor/3+x=y%z"  # its URL-encoded forms differ from it
FORMS = (SECRET, quote(SECRET, safe=""), quote_plus(SECRET), json.dumps(SECRET)[1:-1])


def assert_masked(text: str, where: str, planted: bool = True) -> None:
    leaked = [f for f in FORMS if f in text]
    assert leaked == [], f"{where} leaks {leaked}"
    if planted:
        assert MASK in text, f"{where}: the planted secret is not there, masked"


def test_one_secret_masked_in_log_junit_metadata_exception_and_xapi_error(tmp_path: Path) -> None:
    planted = {"XCPNG_PASSWORD": SECRET, "SMOKE_SECRET": SECRET}

    # 1. a failing check whose message carries the secret: JUnit and results.json
    failing = write_project(tmp_path / "failing", {"debian12": ("debian", "12")})
    proc = run_harness(failing, "--os", "debian12", env={**planted, "SMOKE_FAIL_WITH": SECRET})
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert_masked(proc.stdout + proc.stderr, "terminal output", planted=False)
    assert_masked((failing / "artifacts" / "debian12" / "build.log").read_text(), "build log")
    assert_masked((failing / "reports" / "junit-debian12.xml").read_text(), "JUnit")
    assert_masked((failing / "reports" / "results.json").read_text(), "results.json")

    # 2. a passing run whose run id carries it, published to a folder: metadata and its log
    passing = write_project(tmp_path / "passing", {"debian12": ("debian", "12")})
    published = tmp_path / "published"
    proc = run_harness(
        passing,
        "--os",
        "debian12",
        "--publish",
        f"--publish-to={published}",
        env={**planted, "TEMPLATE_RUN_ID": f"run-{SECRET}"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    (metadata,) = published.rglob("metadata.json")
    assert_masked(metadata.read_text(), "metadata.json")
    assert_masked((metadata.parent / "build.log").read_text(), "published build.log")

    # 3. an exception message: the publish command names a results file it cannot find
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPLATE_")}
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "xcpng_golden",
            "publish",
            "--results",
            f"/nowhere/{SECRET}/results.json",
        ],
        env={**env, "XCPNG_PASSWORD": SECRET},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 2
    assert_masked(cli.stderr, "publish error")

    # 4. an XAPI error next to a live session id, through the platform's own client
    with XapiTwin(password=SECRET, storage=False) as twin:
        settings = Settings.from_env(env=twin_env(twin, tmp_path / "artifacts"))
        xapi = connect(settings.xcpng)
        try:
            handle = xapi.handle
            error = XenAPI.Failure(
                ["INTERNAL_ERROR", f"PUT /import?session_id={handle} refused", f"pw {SECRET}"]
            )
            text = xapi.redactor(describe(error))
        finally:
            xapi.logout()
    assert handle not in text
    assert_masked(text, "XAPI error")
