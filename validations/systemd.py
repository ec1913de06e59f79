"""systemd's own view of units, asked once for many units (`systemctl show`), instead of one
`systemctl is-enabled` / `is-active` round trip per unit and question."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from core.errors import InfrastructureError
from validations.remote import ask

# `systemctl is-enabled` exits 0 for these states: the unit starts without anyone asking.
ENABLED_STATES = frozenset(
    {"enabled", "enabled-runtime", "static", "indirect", "generated", "transient", "alias"}
)
SHOW = "systemctl show --no-pager"


def parse_show(text: str) -> list[dict[str, str]]:
    """`systemctl show` output of several units -> one {property: value} per unit (a property
    that repeats, as ExecStart does with several commands, keeps every line)."""
    units: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if current:
                units.append(current)
            current = {}
            continue
        key, _, value = line.partition("=")
        current[key] = f"{current[key]}\n{value}" if key in current else value
    return units


class _Short(InfrastructureError):
    """systemctl answered for fewer units than asked (a D-Bus timeout, usually)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"systemctl show did not answer for every unit: {detail}")


@dataclass(frozen=True)
class Unit:
    name: str
    load: str  # loaded, not-found, masked, ...
    file_state: str  # enabled, disabled, masked, static, ... ("" when unknown)
    active: str  # active, inactive, failed, ...

    @property
    def exists(self) -> bool:
        return self.load not in ("not-found", "")

    @property
    def enabled(self) -> bool:
        return self.file_state in ENABLED_STATES

    @property
    def running(self) -> bool:
        return self.active == "active"


def units(host: Any, names: list[str]) -> dict[str, Unit]:
    """Load, enablement and activity of every unit named, in one exchange.

    systemctl asks systemd over D-Bus, which times out on a clone starved of CPU (TCG on a busy
    runner): a short answer is asked again a few times, then reported as infrastructure, never
    read as "no such unit"."""
    if not names:
        return {}
    command = f"{SHOW} -p Id,LoadState,UnitFileState,ActiveState " + " ".join(
        shlex.quote(n) for n in names
    )
    for attempt in Retrying(
        stop=stop_after_attempt(4), wait=wait_fixed(2), retry=retry_if_exception_type(_Short),
        reraise=True,
    ):  # fmt: skip
        with attempt:
            answer = ask(host, {"show": command}, sudo=False)["show"]
            shown = parse_show(answer.stdout)
            if answer.rc != 0 or len(shown) != len(names):
                raise _Short(answer.stderr.strip() or f"{len(shown)} of {len(names)} units")
    out = {}
    for name, props in zip(names, shown, strict=False):  # systemctl answers in order
        out[name] = Unit(
            name,
            props.get("LoadState", ""),
            props.get("UnitFileState", ""),
            props.get("ActiveState", ""),
        )
    return out
