"""The clone can reach its own package sources: the updates it will need arrive.

A broken source line, a resolver or proxy the image configures wrongly, or a mirror name that
does not exist all leave every clone without security updates, silently. The clone asks apt
which index files it would fetch (`apt-get update --print-uris`, every sources file apt reads)
and fetches each source's InRelease with apt's own transport (`apt-helper download-file`:
apt's proxy, TLS and resolver settings). What fails is then fetched from this machine: if this
machine gets an answer, or reaches the clone's other sources, the fault is in the image
(`image-defect`); if it reaches none of them, the network is down (`infrastructure`).
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from core.checks import check
from core.errors import InfrastructureError
from core.model import TemplateSpec
from validations.remote import ask

HOST_TIMEOUT_S = 15
# One exchange: apt prints the URIs it would fetch (every sources file it reads), then each
# source's Release file is fetched with apt's own transport, all at once (apt-helper starts
# slowly under TCG). Prints `uris` first, then one `fetched <rc> <uri> <base64 log>` per source.
PROBE = r"""
t=$(mktemp -d); mkdir -p "$t/partial" "$t/d"; chmod 755 "$t/d"
apt-get update --print-uris -o Dir::State::Lists="$t" -o Debug::NoLocking=1 >"$t/uris" 2>&1
echo "print-uris $?"
base64 -w0 <"$t/uris"; echo
i=0
for u in $(sed -n "s/^'\([^']*\/\(In\)\{0,1\}Release\)'.*/\1/p" "$t/uris" | sort -u); do
  i=$((i + 1))
  ( /usr/lib/apt/apt-helper download-file "$u" "$t/d/$i" >"$t/d/$i.log" 2>&1
    echo "fetched $? $u $(base64 -w0 <"$t/d/$i.log")" >"$t/d/$i.rc" ) &
done
wait
cat "$t"/d/*.rc 2>/dev/null
rm -rf "$t"
"""


def release_uris(print_uris: str) -> list[str]:
    """The InRelease (or flat Release) URIs of `apt-get update --print-uris`, in order."""
    out = []
    for line in print_uris.splitlines():
        words = line.split()
        if words and words[0].startswith("'") and words[0].endswith("'"):
            uri = words[0][1:-1]
            if uri.endswith(("/InRelease", "/Release")) and uri not in out:
                out.append(uri)
    return out


@dataclass(frozen=True)
class HostView:
    uri: str
    answered: bool  # an HTTP status came back (even 404): the server exists and is reachable
    status: str


def from_host(uri: str) -> HostView:
    """Fetch the head of `uri` from this machine (its proxies from the environment)."""
    request = urllib.request.Request(uri, method="GET", headers={"Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(request, timeout=HOST_TIMEOUT_S) as response:
            return HostView(uri, True, f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        return HostView(uri, True, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return HostView(uri, False, str(reason))


@dataclass(frozen=True)
class Probe:
    printed_rc: int
    printed: str
    fetched: dict[str, tuple[int, str]]  # uri -> (exit status, apt-helper's output)


def parse_probe(out: str) -> Probe:
    lines = out.splitlines()
    printed_rc, printed, fetched = -1, "", {}
    for i, line in enumerate(lines):
        words = line.split(" ")
        if words[0] == "print-uris" and len(words) == 2 and i + 1 < len(lines):
            printed_rc = int(words[1])
            printed = base64.b64decode(lines[i + 1]).decode("utf-8", "replace")
        elif words[0] == "fetched" and len(words) >= 3:
            log = base64.b64decode(words[3]).decode("utf-8", "replace") if len(words) > 3 else ""
            fetched[words[2]] = (int(words[1]), log)
    return Probe(printed_rc, printed, fetched)


def judge(failed: dict[str, str], views: dict[str, HostView]) -> list[str]:
    """Image findings for the sources the clone could not fetch; raises InfrastructureError
    when this machine reaches none of the clone's sources either."""
    if not failed:
        return []
    if not any(v.answered for v in views.values()):
        raise InfrastructureError(
            "neither the clone nor this machine reaches the clone's package sources ("
            + "; ".join(f"{u}: {v.status}" for u, v in views.items())
            + "): the network or the mirrors are down"
        )
    found = []
    for uri, error in failed.items():
        view = views[uri]
        if view.status in ("HTTP 200", "HTTP 206"):
            why = "this machine fetches it: the clone's resolver, proxy or TLS settings are broken"
        elif view.answered:
            why = f"the server answers {view.status}: the source line is wrong"
        else:
            why = f"this machine cannot reach it either ({view.status}) while it reaches the others"
        found.append(f"{uri}: {why} (apt on the clone: {' '.join(error.split())[-200:]})")
    return found


@check(
    "system-package-sources",
    "the clone reaches every package source it is configured with, through apt's own transport "
    "(its resolver, proxy and TLS settings): its updates can arrive",
)
def test_package_sources(host: Any, spec: TemplateSpec) -> None:
    if spec.family == "el":
        answer = ask(host, {"dnf": "dnf -q makecache --refresh 2>&1"})["dnf"]
        assert answer.rc == 0, (
            f"dnf cannot fetch its repositories' metadata: {answer.stdout[-400:]}"
        )
        return
    probe = parse_probe(ask(host, {"probe": PROBE})["probe"].stdout)
    uris = release_uris(probe.printed)
    assert probe.printed_rc == 0, f"apt cannot read its sources: {probe.printed.strip()[-400:]}"
    assert uris, "apt has no package source at all: no update can ever arrive"
    missing = [u for u in uris if u not in probe.fetched]
    assert not missing, f"the clone did not try to fetch {', '.join(missing)}"
    failed = {uri: log for uri, (rc, log) in probe.fetched.items() if rc}
    views = {uri: from_host(uri) for uri in uris} if failed else {}
    found = judge(failed, views)
    assert not found, "the clone cannot reach its package sources:\n" + "\n".join(found)
