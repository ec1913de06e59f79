"""A harness-like process that boots one VM against the twin and waits, for signal tests:
`python -m tests.twins.xapi.boot_child XVA WORKDIR RUN_ID` with the XCPNG_* environment.

Prints `booting`, then `booted` once the VM is reachable; exits 130 after an interrupt
(SIGINT, or SIGTERM, which the platform turns into KeyboardInterrupt) once teardown is done.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from core.settings import Settings
from platforms.xcpng import XcpngPlatform
from platforms.xcpng.client import RetryPolicy
from tests.twins.xapi.helpers import build_of, spec


def main() -> int:
    xva, workdir, run_id = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    platform = XcpngPlatform(
        Settings.from_env(),
        run_id,
        policy=RetryPolicy(wait_min=0.05, wait_max=0.1),
        ip_poll=0.1,
        login_check=False,  # the test stands in for sshd with a banner only
    )
    print("booting", flush=True)
    try:
        with platform.boot(spec(), build_of(xva), workdir):
            print("booted", flush=True)
            time.sleep(3600)
    except KeyboardInterrupt:
        print("interrupted, teardown done", flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
