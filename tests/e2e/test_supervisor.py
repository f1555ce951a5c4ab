"""`make run` supervises: a process that dies is started again, the rest keep serving.

The recommender of the running stack is killed (SIGKILL, as a crash): every
page asked for meanwhile answers, with best sellers standing in; the
supervisor starts it again within 10 seconds and recommendations return.
"""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

import psutil

from tests.events.broker import wait_until

# The Fantasy page's recommendations: the recommender's when it answers.
SOURCE = re.compile(r'id="recommendations"[^>]*data-source="([^"]+)"')
# The recommender's line when it serves, as the supervisor prints it.
READY = re.compile(r"^\S+ recommender +\| .* ready$", re.M)


def _recommendations(base: str, category: str) -> tuple[int, str]:
    """A category page's status and where its recommendations came from."""
    with urllib.request.urlopen(f"{base}/?category={category}", timeout=5) as response:
        match = SOURCE.search(response.read().decode())
        return response.status, match.group(1) if match else ""


def _recommender(home: Path) -> psutil.Process:
    """The stack's recommender: `python -m recommender` with this stack's store."""
    store = str(home / "recommender.sqlite3")
    for process in psutil.process_iter(["cmdline"]):
        try:
            if process.info["cmdline"][-2:] == ["-m", "recommender"] and (
                process.environ().get("RECOMMENDER_DB") == store
            ):
                return process
        except (psutil.Error, TypeError):
            continue
    raise AssertionError(f"no recommender with the store {store} runs")


def test_a_killed_recommender_is_started_again_and_pages_keep_answering(
    stack: str, stack_home: Path
) -> None:
    wait_until(
        lambda: _recommendations(stack, "fantasy") == (200, "recommender"),
        timeout=30,
        interval=0.5,
        what="recommendations on the Fantasy page",
    )
    log = stack_home / "stack.log"
    readies = len(READY.findall(log.read_text()))
    killed = _recommender(stack_home)
    killed.kill()
    killed.wait(5)
    started = time.monotonic()

    # Pages asked for while it is down, until it says it is ready again.
    answers = []
    while len(READY.findall(log.read_text())) == readies and time.monotonic() - started < 10:
        answers.append(_recommendations(stack, "fantasy"))
        time.sleep(0.2)
    back_after = time.monotonic() - started
    assert len(READY.findall(log.read_text())) > readies, "not started again within 10 s"
    assert _recommender(stack_home).pid != killed.pid
    assert "exited: recommender (terminated by SIGKILL; not expected)" in log.read_text()

    assert answers, "the recommender was back before a page was asked for"
    assert {status for status, _ in answers} == {200}, answers
    # Its answers or best sellers: no page went without.
    assert {source for _, source in answers} <= {"recommender", "best-sellers"}, answers
    # A page not asked for before: a new call, answered by the restarted recommender
    # (once the site's breaker lets calls through again).
    wait_until(
        lambda: _recommendations(stack, "history") == (200, "recommender"),
        timeout=10,
        interval=0.5,
        what="recommendations from the restarted recommender",
    )
    print(f"the recommender was ready again {back_after:.1f} s after the kill")


def test_the_first_screen_of_make_run_is_readable(stack: str, stack_home: Path) -> None:
    """A first run (empty database and store): no traceback, no warning from the
    libraries' set-up, and the catalog's 338 events in a few lines, not one each."""
    log = (stack_home / "stack.log").read_text()
    first = log[: log.index("/readyz")] if "/readyz" in log else log
    assert "Traceback" not in log
    assert "WARNING opentelemetry" not in log  # set up once per process
    catalog = [line for line in log.splitlines() if "catalog.book_upserted" in line]
    assert 0 < len(catalog) < 40, len(catalog)
    assert "demo staff account: staff / bookstore-staff" in first
