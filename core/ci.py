"""Who ran a session: the CI workflow and runner (GitHub Actions' default variables), or this
machine. Recorded in results.json and named by each build's provenance (its `builder`).

Only GitHub's documented, non-secret variables are read (GITHUB_*, RUNNER_*); none is a
credential.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

GITHUB = {
    "server_url": "GITHUB_SERVER_URL",
    "repository": "GITHUB_REPOSITORY",
    "workflow_ref": "GITHUB_WORKFLOW_REF",
    "workflow_sha": "GITHUB_WORKFLOW_SHA",
    "run_id": "GITHUB_RUN_ID",
    "run_attempt": "GITHUB_RUN_ATTEMPT",
    "event_name": "GITHUB_EVENT_NAME",
    "ref": "GITHUB_REF",
    "runner_name": "RUNNER_NAME",
    "runner_os": "RUNNER_OS",
    "runner_arch": "RUNNER_ARCH",
    "runner_environment": "RUNNER_ENVIRONMENT",
}


def ci_context(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`{"system": "github-actions", ...}` inside a workflow, else `{"system": "local", ...}`."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_REPOSITORY"):
        return {"system": "github-actions", **{k: env.get(v) or None for k, v in GITHUB.items()}}
    return {"system": "local", "host": socket.gethostname()}


def builder_id(ci: Mapping[str, Any]) -> str:
    """The SLSA builder id: the workflow file at its ref, or this machine."""
    if ci.get("system") == "github-actions" and ci.get("workflow_ref"):
        server = ci.get("server_url") or "https://github.com"
        return f"{server}/{ci['workflow_ref']}"
    return f"urn:xcpng-golden:builder:local:{ci.get('host') or 'unknown'}"


def invocation_id(ci: Mapping[str, Any], run_id: str) -> str:
    """The workflow run (and attempt) that built it, or the harness's own run id."""
    if ci.get("system") == "github-actions" and ci.get("run_id") and ci.get("repository"):
        server = ci.get("server_url") or "https://github.com"
        url = f"{server}/{ci['repository']}/actions/runs/{ci['run_id']}"
        return url + (f"/attempts/{ci['run_attempt']}" if ci.get("run_attempt") else "")
    return run_id


def repository_url(ci: Mapping[str, Any]) -> str | None:
    if ci.get("system") == "github-actions" and ci.get("repository"):
        return f"{ci.get('server_url') or 'https://github.com'}/{ci['repository']}"
    return None
