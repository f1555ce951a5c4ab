"""The recommender client's circuit breaker: states, and no lock held during a call."""

from __future__ import annotations

import threading

import pytest

from marketplace_site.recommendations.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerOpen,
    CircuitBreaker,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail() -> None:
    raise ConnectionError("refused")


def ok() -> str:
    return "answer"


@pytest.fixture
def breaker():
    clock = Clock()
    changes: list[tuple[str, str]] = []
    b = CircuitBreaker(
        fail_max=3,
        reset_timeout=30,
        is_failure=lambda exc: not isinstance(exc, ValueError),
        on_change=lambda old, new: changes.append((old, new)),
        clock=clock,
    )
    b.clock, b.changes = clock, changes
    return b


def calls(breaker: CircuitBreaker, func, n: int) -> list[str]:
    results = []
    for _ in range(n):
        try:
            results.append(breaker.call(func))
        except BreakerOpen:
            results.append("not called")
        except ConnectionError:
            results.append("failed")
    return results


def test_failures_in_a_row_open_it_and_a_success_resets_the_count(breaker):
    assert calls(breaker, fail, 2) == ["failed"] * 2
    assert breaker.call(ok) == "answer"
    assert calls(breaker, fail, 2) == ["failed"] * 2
    assert breaker.state == CLOSED
    # The third in a row trips it, and raises its own error.
    assert calls(breaker, fail, 1) == ["failed"]
    assert breaker.state == OPEN
    assert calls(breaker, ok, 2) == ["not called"] * 2
    assert breaker.changes == [(CLOSED, OPEN)]


def test_after_the_reset_timeout_one_trial_call_decides(breaker):
    calls(breaker, fail, 3)
    breaker.clock.now += 29.9
    assert calls(breaker, ok, 1) == ["not called"]

    breaker.clock.now += 0.2
    assert calls(breaker, fail, 1) == ["failed"]  # the trial fails: open again, for 30 s more
    assert breaker.state == OPEN
    breaker.clock.now += 29
    assert calls(breaker, ok, 1) == ["not called"]
    breaker.clock.now += 1.1
    assert breaker.call(ok) == "answer"  # the trial succeeds: closed
    assert breaker.state == CLOSED
    assert breaker.changes == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def test_a_client_error_is_not_a_failure(breaker):
    def bad_request() -> None:
        raise ValueError("invalid argument")

    for _ in range(5):
        with pytest.raises(ValueError, match="invalid argument"):
            breaker.call(bad_request)
    assert breaker.state == CLOSED


class SlowCall:
    """A call through the breaker, on a thread of its own, that returns when released."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.results: list[str] = []
        self.thread = threading.Thread(target=lambda: self.results.append(breaker.call(self.run)))
        self.thread.start()
        assert self.started.wait(5)

    def run(self) -> str:
        self.started.set()
        assert self.release.wait(5)
        return "slow answer"

    def finish(self) -> list[str]:
        self.release.set()
        self.thread.join(5)
        return self.results


def test_a_call_in_flight_holds_no_lock_and_only_one_trial_runs(breaker):
    """The reason for this module: pybreaker held its lock for the whole call."""
    slow = SlowCall(breaker)
    assert breaker.call(ok) == "answer"  # not stuck behind the slow call
    assert slow.finish() == ["slow answer"]

    # Half-open: while the trial is in flight, others are not let through.
    calls(breaker, fail, 3)
    breaker.clock.now += 31
    trial = SlowCall(breaker)
    assert breaker.state == HALF_OPEN
    assert calls(breaker, ok, 1) == ["not called"]
    assert trial.finish() == ["slow answer"]
    assert breaker.state == CLOSED


def test_a_slow_call_from_before_it_opened_does_not_close_it(breaker):
    slow = SlowCall(breaker)
    calls(breaker, fail, 3)  # opened while the slow call is out
    assert slow.finish() == ["slow answer"]
    assert breaker.state == OPEN
