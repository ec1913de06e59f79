"""`xcpng-golden plan`: shards and the job time limit that follows from the fleet (docs/operator/ci.md,
"Fanning out over runners", shows the same figures)."""

from __future__ import annotations

import pytest

from core.errors import UsageError
from core.settings import Settings
from xcpng_golden.plan import make_plan, shard

FLEET = [f"os{i:02d}" for i in range(12)]


def test_shards_are_balanced_disjoint_and_never_empty() -> None:
    for runners in range(1, 15):
        shards = shard(FLEET, runners)
        assert len(shards) == min(runners, len(FLEET))
        assert sorted(n for s in shards for n in s) == FLEET
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


@pytest.mark.parametrize(
    ("runners", "minutes"),
    [(1, 435), (2, 285), (3, 155), (4, 150), (12, 140)],
)
def test_the_time_limit_of_the_twelve_os_fleet(runners: int, minutes: int) -> None:
    """15 min set-up + ceil(k / 5) waves x (90 build + 15 boot + 15 checks) + 5 min per OS
    published, k the largest shard: one runner needs 435 min, beyond the old 240-min limit."""
    plan = make_plan(FLEET, runners, 5, Settings.from_env(env={}))
    assert plan.timeout_minutes == minutes
    assert plan.arithmetic().endswith(f"= {minutes} minutes")


def test_the_time_limit_follows_the_build_and_boot_limits() -> None:
    s = Settings.from_env(env={"TEMPLATE_BUILD_TIMEOUT": "60m", "TEMPLATE_BOOT_TIMEOUT": "10m"})
    assert make_plan(FLEET, 3, 5, s).timeout_minutes == 15 + 85 + 20


def test_nonsense_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="at least 1"):
        make_plan(FLEET, 0, 5, Settings.from_env(env={}))
    slow = Settings.from_env(env={"TEMPLATE_BUILD_TIMEOUT": "30d"})
    with pytest.raises(UsageError, match="add runners"):
        make_plan(FLEET, 1, 1, slow)
