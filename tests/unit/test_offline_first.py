"""harness/scheduling.offline_checks_first: within each OS the offline checks come first (they
run while the clone boots), then those that need the clone; the OSes keep pytest's order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.scheduling import background_fixtures, needs_clone, offline_checks_first, os_of_item


@dataclass
class _Callspec:
    params: dict[str, Any]


@dataclass
class _Item:
    name: str
    os_name: str | None
    fixturenames: list[str] = field(default_factory=list)

    @property
    def callspec(self) -> _Callspec | None:
        return _Callspec({"os_name": self.os_name}) if self.os_name else None


def test_offline_checks_first_within_each_os() -> None:
    items = [
        _Item("ssh", "debian12", ["host", "vm", "clone"]),
        _Item("shadow", "debian12", ["image"]),
        _Item("unit", None, []),
        _Item("sysctl", "debian12", ["host"]),
        _Item("ssh", "debian13", ["host"]),
        _Item("shadow", "debian13", ["image"]),
        _Item("owners", "debian12", ["image"]),
    ]
    order = [(i.os_name, i.name) for i in offline_checks_first(items)]
    assert order == [
        ("debian12", "shadow"), ("debian12", "owners"), ("debian12", "ssh"),
        ("debian12", "sysctl"), (None, "unit"), ("debian13", "shadow"), ("debian13", "ssh"),
    ]  # fmt: skip


def test_what_needs_the_clone() -> None:
    assert needs_clone(_Item("a", "debian12", ["image", "host"]))
    assert not needs_clone(_Item("b", "debian12", ["image", "build"]))
    assert os_of_item(_Item("c", None)) is None
    assert os_of_item(_Item("d", "debian13")) == "debian13"


def test_checks_reading_background_answers_come_last() -> None:
    """The persistence checks read answers the clone works out while the others run: they go
    after every other booted check of their OS, whatever their module's place."""
    items = [
        _Item("root-exec", "debian12", ["clone_answers", "host", "image"]),
        _Item("ssh", "debian12", ["host"]),
        _Item("shadow", "debian12", ["image"]),
        _Item("console", "debian12", ["clone_answers", "host"]),
        _Item("sysctl", "debian12", ["host"]),
        _Item("ssh", "debian13", ["host"]),
    ]
    order = [(i.os_name, i.name) for i in offline_checks_first(items)]
    assert order == [
        ("debian12", "shadow"), ("debian12", "ssh"), ("debian12", "sysctl"),
        ("debian12", "root-exec"), ("debian12", "console"), ("debian13", "ssh"),
    ]  # fmt: skip
    assert background_fixtures(items[0]) == ["clone_answers"]
    assert background_fixtures(items[1]) == []
