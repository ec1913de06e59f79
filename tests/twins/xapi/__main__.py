"""`python -m tests.twins.xapi --port N`: run the twin on its own and print its URL.

Configure it from another process with `POST /_twin/config` ({"faults": {...}, "guest":
{...}}) and read it with `GET /_twin/state`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from tests.twins.xapi.server import XapiTwin


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.twins.xapi", description=__doc__)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    p.add_argument("--username", default="root")
    p.add_argument("--password-file", type=Path, help="file holding the accepted password")
    p.add_argument("--storage", type=Path, help="folder for VDI contents (default: a temp dir)")
    p.add_argument("--no-storage", action="store_true", help="verify imports but keep no data")
    p.add_argument("--guest", default="{}", help='guest settings as JSON, e.g. {"tools": true}')
    p.add_argument("--tls-cert", type=Path)
    p.add_argument("--tls-key", type=Path)
    args = p.parse_args(argv)
    password = args.password_file.read_text().strip() if args.password_file else "twin-password"
    storage: Path | bool | None = None if args.no_storage else (args.storage or True)
    tls = (args.tls_cert, args.tls_key) if args.tls_cert and args.tls_key else None
    twin = XapiTwin(
        port=args.port, username=args.username, password=password, storage=storage, tls=tls
    )
    twin.configure({"guest": json.loads(args.guest)})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    twin.start()
    print(twin.url, flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        twin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
