"""Which collected checks run for which OS: a check that some family expects runs only for the
OSes of the families that expect it (SELinux is no question for Debian); a check no family
lists runs for every OS, so a new check is never silently skipped. The verdict then finds every
expected id run, and nothing else run that could fail an OS of another family."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from core.model import FAMILIES


def split_by_family(
    items: list[pytest.Item],
    family_of: Mapping[str, str],
    expected: Callable[[str], tuple[str, ...]],
) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """(items to run, items of checks not meant for their OS's family)."""
    owners: dict[str, set[str]] = {}
    for family in FAMILIES:
        for cid in expected(family):
            owners.setdefault(cid, set()).add(family)
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        props = dict(item.user_properties)
        cid = str(props.get("check_id", ""))
        os_family = family_of.get(str(props.get("os", "")))
        if cid in owners and os_family is not None and os_family not in owners[cid]:
            drop.append(item)
        else:
            keep.append(item)
    return keep, drop
