"""Run the CloudStack twin as its own process, with a web server for a published folder:

    python -m tests.twins.cloudstack --storage /tmp/secondary --serve /tmp/published \\
        --env-file /tmp/twin.env

The env file (mode 0600) holds CLOUDSTACK_ENDPOINT, CLOUDSTACK_API_KEY, CLOUDSTACK_SECRET_KEY,
CLOUDSTACK_ZONES and CLOUDSTACK_URL_BASE for `xcpng-golden publish` and `xcpng-golden cloudstack`;
the keys are never printed. Faults: --fault wrong_key|clock_skew_s=3600|download_failure|
checksum_mismatch|slow_zones=zone2:65536. Stops on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import signal
import threading
from pathlib import Path

from tests.twins.cloudstack.server import CloudStackTwin


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m tests.twins.cloudstack")
    p.add_argument("--storage", type=Path, required=True, help="the zones' secondary storage")
    p.add_argument("--serve", type=Path, required=True, help="the published folder to serve")
    p.add_argument("--env-file", type=Path, required=True)
    p.add_argument("--fault", action="append", default=[])
    args = p.parse_args()
    args.serve.mkdir(parents=True, exist_ok=True)
    web = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(args.serve))
    )
    threading.Thread(target=web.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with CloudStackTwin(args.storage) as twin:
        for fault in args.fault:
            name, _, value = fault.partition("=")
            if name == "slow_zones":
                zone, _, rate = value.partition(":")
                twin.faults.slow_zones[zone] = float(rate)
            else:
                setattr(twin.faults, name, float(value) if value else True)
        env = {**twin.env(), "CLOUDSTACK_URL_BASE": f"http://127.0.0.1:{web.server_address[1]}/"}
        fd = os.open(args.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in env.items())
        print(f"CloudStack twin at {twin.endpoint}, store served at {env['CLOUDSTACK_URL_BASE']}",
              flush=True)  # fmt: skip
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    web.shutdown()


main()
