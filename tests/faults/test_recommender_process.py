"""A real `python -m recommender` hung (SIGSTOP), resumed, killed and restarted
on the same port, while the site serves pages.

What a customer sees: every page 200 within the deadline plus a small margin,
best sellers while the recommender cannot answer; what the operator sees: the
breaker opening after the configured failures, so pages stop waiting at all,
and closing again once the recommender is back and the reset time has passed.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest
from prometheus_client import REGISTRY

from marketplace_site.recommendations.client import RecommenderClient, RecommenderUnavailable
from tests.marketplace.test_recommendations import (
    MYSTERY,
    Counted,
    recommendations_on,
    timed_get,
)
from tests.processes import Process, free_port

pytestmark = pytest.mark.django_db

TIMEOUT = 0.25
FAILURES = 3
RESET = 1.0
# A page waits for one deadline at most, plus rendering it.
PAGE_BOUND = TIMEOUT + 0.5


def breaker_open() -> float | None:
    return REGISTRY.get_sample_value("marketplace_recommender_breaker_open")


@pytest.fixture
def mysteries(make_book):
    """Titles sort against ids: the recommender's order (ids, nothing sold yet)
    and the fallback's (best sellers: units, then title) are told apart."""
    return [make_book(title=title) for title in ("Zodiac", "Yesterday", "Xanadu", "Wolves")]


@pytest.fixture
def recommender(tmp_path, mysteries, settings):
    """Starts `python -m recommender` on one port, as often as asked; the site points at it."""
    port = free_port()
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "id,title,author,category\n"
        + "".join(f"{b.pk},{b.title},{b.author},MYSTERY\n" for b in mysteries)
    )
    env = {
        **os.environ,
        "RECOMMENDER_LISTEN": f"127.0.0.1:{port}",
        "RECOMMENDER_DB": str(tmp_path / "recommender.sqlite3"),
        "RECOMMENDER_DEMO_CATALOG": str(catalog),
        "RECOMMENDER_CONSUME_EVENTS": "false",
        "RECOMMENDER_GRACE_SECONDS": "0",
        # A line per call: the tests count the calls the server saw.
        "RECOMMENDER_ACCESS_LOG": "every",
        "PYTHONUNBUFFERED": "1",
    }
    settings.RECOMMENDER_TARGET = f"127.0.0.1:{port}"
    settings.RECOMMENDER_TIMEOUT = TIMEOUT
    settings.RECOMMENDER_BREAKER_FAILURES = FAILURES
    settings.RECOMMENDER_BREAKER_RESET = RESET
    started: list[Process] = []

    def start() -> Process:
        process = Process([sys.executable, "-m", "recommender"], env, f"recommender-{len(started)}")
        started.append(process)
        process.wait_for_output(" ready", timeout=30)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            os.kill(process.proc.pid, signal.SIGCONT)
        process.stop()
        print(f"--- {process.name} ---\n{process.text()[-3000:]}")


def page(client) -> tuple[str | None, list[int], float]:
    response, elapsed = timed_get(client, MYSTERY)
    source, ids = recommendations_on(response)
    assert elapsed < PAGE_BOUND, f"the page took {elapsed:.2f}s"
    return source, ids, elapsed


def until_recommended(client, expected: list[int], timeout: float) -> float:
    """Loads pages (each in bounds) until the recommender's answer is back; how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        source, ids, _ = page(client)
        if source == "recommender":
            assert ids == expected
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"recommendations did not come back within {timeout}s")


def test_a_hung_then_dead_recommender_never_breaks_a_page(client, mysteries, recommender):
    by_id = [b.pk for b in mysteries]
    by_title = [b.pk for b in sorted(mysteries, key=lambda b: b.title)]
    process = recommender()
    assert page(client)[:2] == ("recommender", by_id)

    # Hung: connected, never answering. Each call waits out its deadline, then
    # the breaker opens and pages stop calling.
    os.kill(process.proc.pid, signal.SIGSTOP)
    counted = Counted()
    for _ in range(FAILURES):
        source, ids, elapsed = page(client)
        assert (source, ids) == ("best-sellers", by_title)
        assert elapsed >= TIMEOUT * 0.9, "the deadline was waited for"
    assert counted["deadline_exceeded"] == FAILURES
    assert breaker_open() == 1
    for _ in range(3):
        source, _, elapsed = page(client)
        assert source == "best-sellers"
        assert elapsed < TIMEOUT, "an open breaker does not wait for the recommender"
    assert counted["breaker_open"] == 3

    os.kill(process.proc.pid, signal.SIGCONT)
    took = until_recommended(client, by_id, timeout=RESET + 5)
    assert took >= RESET * 0.5, "the breaker waited for its reset before trying again"
    assert breaker_open() == 0

    # Dead: refused at once. The breaker opens again after as many failures.
    process.kill()
    counted = Counted()
    for _ in range(FAILURES):
        assert page(client)[:2] == ("best-sellers", by_title)
    assert counted["unavailable"] == FAILURES
    assert breaker_open() == 1
    assert page(client)[0] == "best-sellers"
    assert counted["breaker_open"] == 1

    # Back on the same port: after the reset, the next trial call closes the breaker.
    recommender()
    until_recommended(client, by_id, timeout=RESET + 10)
    assert breaker_open() == 0
    assert counted["ok"] >= 1


def test_a_bad_request_to_the_real_process_is_answered_once_not_retried(settings, recommender):
    process = recommender()
    client = RecommenderClient(target=settings.RECOMMENDER_TARGET, timeout=2.0)
    try:
        with pytest.raises(RecommenderUnavailable) as refused:
            client.recommend(user_id=-1, category=0, max_results=3)
        assert refused.value.reason == "invalid_argument"
        assert [b.id for b in client.recommend(user_id=0, category=0, max_results=1)]
    finally:
        client.close()
    # The access log has one line per call the server saw: one each, no retries.
    time.sleep(0.2)
    assert process.text().count("code=INVALID_ARGUMENT") == 1
    assert process.text().count("Recommend code=OK") == 1
