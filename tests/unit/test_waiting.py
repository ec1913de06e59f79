"""core.waiting.wait_for, the one polling helper, on a fake clock: what it returns, how often it
asks, that it never sleeps past the deadline, and what its timeout says."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.waiting import WaitTimeout, wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def answers(values: list[object], clock: FakeClock, asked: list[float]) -> Callable[[], object]:
    def predicate() -> object:
        asked.append(clock.now - 100.0)
        return values.pop(0) if values else None

    return predicate


def test_returns_the_first_truthy_answer() -> None:
    clock, asked = FakeClock(), list[float]()
    got = wait_for(
        answers([None, False, [], "", 0, "10.0.0.5"], clock, asked),
        what="an IP",
        timeout=60,
        interval=2,
        clock=clock,
        sleep=clock.sleep,
    )
    assert got == "10.0.0.5"
    assert asked == [0, 2, 4, 6, 8, 10] and clock.sleeps == [2, 2, 2, 2, 2]


def test_a_true_condition_at_once_never_sleeps() -> None:
    clock = FakeClock()
    assert wait_for(lambda: True, what="x", timeout=0, interval=1, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_the_timeout_names_what_was_awaited_and_for_how_long() -> None:
    clock, asked = FakeClock(), list[float]()
    with pytest.raises(WaitTimeout) as e:
        wait_for(
            answers([], clock, asked),
            what="the pool's task",
            timeout=5,
            interval=2,
            clock=clock,
            sleep=clock.sleep,
        )
    assert str(e.value) == "timed out after 5 s waiting for the pool's task"
    assert (e.value.what, e.value.timeout) == ("the pool's task", 5)
    assert isinstance(e.value, TimeoutError)
    # asked at 0, 2, 4 and once more at the deadline; never slept past it
    assert asked == [0, 2, 4, 5] and clock.sleeps == [2, 2, 1]


def test_a_zero_timeout_asks_once() -> None:
    clock, asked = FakeClock(), list[float]()
    with pytest.raises(WaitTimeout):
        wait_for(
            answers([], clock, asked),
            what="x",
            timeout=0,
            interval=0.2,
            clock=clock,
            sleep=clock.sleep,
        )
    assert asked == [0] and clock.sleeps == []


def test_the_pause_grows_by_backoff_up_to_its_cap() -> None:
    clock, asked = FakeClock(), list[float]()
    with pytest.raises(WaitTimeout):
        wait_for(
            answers([], clock, asked),
            what="x",
            timeout=10,
            interval=0.5,
            backoff=2,
            max_interval=2,
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.sleeps == [0.5, 1, 2, 2, 2, 2, 0.5]


def test_an_exception_from_the_condition_ends_the_wait_early() -> None:
    clock = FakeClock()

    def broken() -> bool:
        raise RuntimeError("the VM's console says it panicked")

    with pytest.raises(RuntimeError, match="panicked"):
        wait_for(broken, what="x", timeout=600, interval=1, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_real_clock_and_sleep_by_default() -> None:
    calls: list[int] = []

    def second_call() -> bool:
        calls.append(1)
        return len(calls) > 1

    assert wait_for(second_call, what="x", timeout=5, interval=0.01)
    assert len(calls) == 2
