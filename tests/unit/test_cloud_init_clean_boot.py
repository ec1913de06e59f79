"""validations/test_cloud_init.py's clean-boot check, run against a first boot that is still
finishing: cloud-init writes status.json ("stage": null) and only then result.json, so the
check reads its files only once result.json exists."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from validations.test_cloud_init import test_clean_boot as clean_boot


@dataclass
class _Out:
    rc: int
    stdout: str
    stderr: str


class FolderHost:
    """host.run on this machine, with the guest's cloud-init folders moved under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sudo = contextlib.nullcontext

    def run(self, command: str) -> _Out:
        for path in ("/run/cloud-init", "/var/log/cloud-init.log"):
            command = command.replace(path, f"{self.root}{path}")
        proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        return _Out(proc.returncode, proc.stdout, proc.stderr)


def _write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))


def test_answers_are_read_once_the_first_boot_finished(tmp_path: Path) -> None:
    run = tmp_path / "run" / "cloud-init"
    run.mkdir(parents=True)
    (tmp_path / "var" / "log").mkdir(parents=True)
    _write(run / "status.json", {"v1": {"stage": "modules-final", "datasource": None}})
    (tmp_path / "var/log/cloud-init.log").write_text("modules-final running\n")

    def finish() -> None:  # cloud-init's order: the log, status.json, then result.json
        time.sleep(1.0)
        (tmp_path / "var/log/cloud-init.log").write_text("modules-final finished\n")
        _write(run / "status.json", {"v1": {"stage": None, "datasource": "DataSourceNoCloud"}})
        _write(run / "result.json", {"v1": {"datasource": "DataSourceNoCloud", "errors": []}})

    recorded: dict[str, str] = {}
    finisher = threading.Thread(target=finish)
    finisher.start()
    try:
        clean_boot(FolderHost(tmp_path), recorded.__setitem__)  # raises on "still in stage"
    finally:
        finisher.join()
    assert json.loads(recorded["cloud_init_timing"])["datasource"] == "DataSourceNoCloud"
