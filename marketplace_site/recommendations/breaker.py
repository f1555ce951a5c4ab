"""A circuit breaker that never holds its lock while the guarded call runs.

pybreaker, used before, holds one lock for the whole call: under threaded
workers (gunicorn gthread, runserver) every recommender call of a process
waited for the one in flight, and with the recommender hung each waited a
full deadline in turn. Here the lock only covers deciding whether to call
and recording how the call went.

Closed: calls go through; ``fail_max`` failures in a row open it. Open:
calls fail at once with BreakerOpen until ``reset_timeout`` has passed, then
one trial call is let through (half-open) while the others still fail at
once; its success closes the breaker, its failure opens it again. A call's
result counts only if the breaker has not changed state since the call
began: a slow call that started while closed cannot close an open breaker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

P = ParamSpec("P")
T = TypeVar("T")


class BreakerOpen(RuntimeError):
    """The breaker is open (or half-open with its trial call in flight): not called."""


class CircuitBreaker:
    def __init__(
        self,
        *,
        fail_max: int,
        reset_timeout: float,
        is_failure: Callable[[BaseException], bool] = lambda exc: True,
        on_change: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fail_max < 1 or reset_timeout < 0:
            raise ValueError(
                f"fail_max ({fail_max}) must be at least 1, reset_timeout ({reset_timeout}) >= 0"
            )
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self._is_failure = is_failure
        self._on_change = on_change
        self.clock = clock  # seconds, only ever compared: a test may move its own
        self._lock = threading.Lock()
        self._state = CLOSED
        # Bumped at every change of state: results of calls begun before are ignored.
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        return self._state

    def call(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        generation = self._before()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self._after(generation, failed=self._is_failure(exc))
            raise
        self._after(generation, failed=False)
        return result

    def _before(self) -> int:
        with self._lock:
            if self._state == OPEN:
                if self.clock() - self._opened_at < self.reset_timeout:
                    raise BreakerOpen("the recommender failed repeatedly; not calling it")
                self._change(HALF_OPEN)
            if self._state == HALF_OPEN:
                if self._trial_in_flight:
                    raise BreakerOpen("a trial call is in flight")
                self._trial_in_flight = True
            return self._generation

    def _after(self, generation: int, *, failed: bool) -> None:
        with self._lock:
            if generation != self._generation:
                return
            if self._state == HALF_OPEN:
                self._trial_in_flight = False
                self._change(OPEN if failed else CLOSED)
            elif failed:
                self._failures += 1
                if self._failures >= self.fail_max:
                    self._change(OPEN)
            else:
                self._failures = 0

    def _change(self, state: str) -> None:
        old, self._state = self._state, state
        self._generation += 1
        self._failures = 0
        if state == OPEN:
            self._opened_at = self.clock()
        if self._on_change is not None:
            self._on_change(old, state)
