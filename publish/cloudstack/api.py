"""The CloudStack API through the `cs` client library: signed POST requests, errors as one line.

POST keeps the parameters (the API key and the signature among them) out of URLs, where proxies
and error messages would show them; every message still passes through the redactor. cs signs
with signatureVersion=3 and an expiry ten minutes ahead, as CloudStack verifies it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from cs import CloudStack, CloudStackApiException, CloudStackException

from core.errors import InfrastructureError, UsageError
from core.redact import Redactor
from core.settings import CloudStackConfig
from core.waiting import WaitTimeout, wait_for
from publish.cloudstack import CloudStackRefused

TIMEOUT_S = 60
RETRIES = 3  # list and queryAsync calls, on a dropped connection
UNAUTHORIZED = 401
JOB_TIMEOUT_S = 600.0
JOB_POLL_S = 2.0


class CloudStackApi:
    def __init__(
        self,
        cfg: CloudStackConfig,
        redactor: Redactor,
        *,
        poll_interval: float | None = None,
        sleep: Callable[[float], None] | None = None,
    ):
        if not cfg.endpoint or not cfg.api_key or not cfg.secret_key:
            raise UsageError(
                "CloudStack needs CLOUDSTACK_ENDPOINT, CLOUDSTACK_API_KEY and "
                "CLOUDSTACK_SECRET_KEY in the environment"
            )
        if not cfg.endpoint.startswith(("http://", "https://")):
            raise UsageError(
                f"CLOUDSTACK_ENDPOINT={cfg.endpoint!r} is not an http(s) URL; write e.g. "
                "https://cloud.example.org/client/api"
            )
        self.endpoint = cfg.endpoint
        self.redactor = redactor
        self.poll_interval = JOB_POLL_S if poll_interval is None else poll_interval
        self._sleep = sleep
        self._cs = CloudStack(
            endpoint=cfg.endpoint,
            key=cfg.api_key,
            secret=cfg.secret_key,
            method="post",
            timeout=TIMEOUT_S,
            verify=str(cfg.ca_bundle) if cfg.ca_bundle else None,
            dangerous_no_tls_verify=not cfg.tls_verify,
            retry=RETRIES,
        )

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        """One API call; its answer (the value of the single `<command>response` key)."""
        try:
            answer = getattr(self._cs, command)(**params)
        except CloudStackApiException as exc:
            raise self._refused(command, exc.error) from None
        except CloudStackException as exc:
            detail = " ".join(str(a) for a in exc.args)
            raise InfrastructureError(
                self.redactor(f"CloudStack at {self.endpoint} answered {command} oddly: {detail}")
            ) from None
        except requests.RequestException as exc:
            raise InfrastructureError(
                self.redactor(
                    f"cannot reach CloudStack at {self.endpoint} ({type(exc).__name__}: {exc}); "
                    "check CLOUDSTACK_ENDPOINT and the network"
                )
            ) from None
        return dict(answer or {})

    def job(self, command: str, timeout: float = JOB_TIMEOUT_S, **params: Any) -> dict[str, Any]:
        """An asynchronous command, awaited: its job's result, or CloudStackRefused."""
        jobid = self.call(command, **params).get("jobid")
        if not jobid:
            return {}

        def done() -> dict[str, Any] | None:
            j = self.call("queryAsyncJobResult", jobid=jobid)
            return j if j.get("jobstatus") != 0 else None

        try:
            kwargs: dict[str, Any] = {"sleep": self._sleep} if self._sleep else {}
            j = wait_for(done, what=f"{command} job {jobid}", timeout=timeout,
                         interval=self.poll_interval, **kwargs)  # fmt: skip
        except WaitTimeout as exc:
            raise CloudStackRefused(f"{command}: {exc}") from None
        if j.get("jobstatus") != 1:
            raise self._refused(command, j.get("jobresult"))
        return dict(j.get("jobresult") or {})

    def _refused(self, command: str, error: Any) -> Exception:
        code = error.get("errorcode") if isinstance(error, dict) else None
        text = error.get("errortext") if isinstance(error, dict) else str(error)
        if code == UNAUTHORIZED:
            return UsageError(
                self.redactor(
                    f"CloudStack refused {command} (401: {text}): check CLOUDSTACK_API_KEY and "
                    "CLOUDSTACK_SECRET_KEY, and this machine's clock (signed requests expire "
                    "ten minutes after they are made)"
                )
            )
        return CloudStackRefused(self.redactor(f"CloudStack refused {command} ({code}): {text}"))
