"""GET one URL of a package archive, with a bounded retry of what a network can fix.

Connection failures, timeouts and 5xx answers are retried (tenacity: 4 attempts, exponential
back-off with jitter, about 15 s at most); a 404 is an answer, not a fault, and is raised at
once as `NotFound` for the caller to class. Anything else ends as one InfrastructureError
naming the URL.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Callable

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from core.errors import InfrastructureError

ATTEMPTS = 4
TIMEOUT_S = 30.0
USER_AGENT = "xcpng-golden (package index check)"


class NotFound(Exception):
    """The server answered 404/410: the file is not in the archive."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class _Transient(Exception):
    """A failure worth another attempt."""


Opener = Callable[[str, float], bytes]


def _urlopen(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (get() checks)
        return bytes(response.read())


def _once(url: str, opener: Opener, timeout: float) -> bytes:
    try:
        return opener(url, timeout)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response's socket
        if exc.code in (404, 410):
            raise NotFound(url) from exc
        if exc.code >= 500 or exc.code == 429:
            raise _Transient(f"HTTP {exc.code}") from exc
        raise InfrastructureError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _Transient(str(getattr(exc, "reason", exc)) or type(exc).__name__) from exc


def get(
    url: str,
    opener: Opener = _urlopen,
    timeout: float = TIMEOUT_S,
    retrying: Retrying | None = None,
) -> bytes:
    """The body of `url`; NotFound for a 404, InfrastructureError when it cannot be had."""
    if not url.startswith(("http://", "https://")):
        raise InfrastructureError(f"{url}: only http and https archives can be read from here")
    retrying = retrying or Retrying(
        retry=retry_if_exception_type(_Transient),
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_exponential_jitter(initial=1, max=8),
        reraise=True,
    )
    try:
        return retrying(_once, url, opener, timeout)
    except _Transient as exc:
        raise InfrastructureError(
            f"{url}: unreachable, retries exhausted ({exc}); the package archive must be "
            "reachable from this host"
        ) from exc
