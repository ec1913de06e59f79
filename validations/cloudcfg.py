"""cloud-init's configuration as it merges it: /etc/cloud/cloud.cfg, then cloud.cfg.d/*.cfg in
name order, later files replacing earlier top-level keys. Pure, so it reads files from an
offline image and is unit-tested without one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

CLOUD_CFG = "/etc/cloud/cloud.cfg"
CLOUD_CFG_D = "/etc/cloud/cloud.cfg.d"


def merged(read: Callable[[str], str], listdir: Callable[[str], list[str]]) -> dict[str, Any]:
    """The merged top-level settings; a file that is not valid YAML raises with its path."""
    out: dict[str, Any] = {}
    files = [CLOUD_CFG] + [
        f"{CLOUD_CFG_D}/{n}" for n in sorted(listdir(CLOUD_CFG_D)) if n.endswith(".cfg")
    ]
    for path in files:
        try:
            data = yaml.safe_load(read(path)) or {}
        except yaml.YAMLError as exc:
            raise AssertionError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise AssertionError(f"{path} is not a mapping")
        out.update(data)
    return out
