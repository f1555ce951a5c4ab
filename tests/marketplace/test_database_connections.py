"""The site, served as `make run` serves it, holds a bounded number of
PostgreSQL connections however many requests come at once.

runserver takes each request on a thread of its own; with persistent
connections every thread left one open behind it, until PostgreSQL refused
new clients and the site answered 500.
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.events.broker import wait_until
from tests.faults.test_site_killed import Shopper, answers
from tests.processes import Process, child_env, database_url, free_port, procfile_process

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

POOL_SIZE = 4
CLIENTS = 20  # at once, more than any bound below
GUNICORN_WORKERS = 2


def backends(application_name: str) -> int:
    """The server's connections opened under ``application_name``."""
    admin = urlunsplit(urlsplit(database_url())._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        row = conn.execute(query, [application_name]).fetchone()
        assert row is not None  # count(*) is always one row
        return row[0]


def get(url: str) -> int:
    # A connection of its own each time: runserver answers it on a new thread.
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
        return response.status


@pytest.fixture(params=["runserver", "gunicorn"])
def site(request, make_book):
    """`make run`'s site (the Procfile's runserver), or gunicorn as in the
    containers, with threads (compose's sync workers have one each)."""
    for _ in range(3):
        make_book()
    name = f"site-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = child_env(
        DATABASE_URL=f"{database_url()}?application_name={name}",
        DATABASE_POOL_SIZE=str(POOL_SIZE),
        MARKETPLACE_PORT=str(port),
        RECOMMENDATIONS_ENABLED="false",
    )
    if request.param == "runserver":
        process, bound = procfile_process("web", env, name="site"), POOL_SIZE
    else:
        gunicorn = [sys.executable, "-m", "gunicorn", "marketplace_site.wsgi:application"]
        options = [f"--bind=127.0.0.1:{port}", f"--workers={GUNICORN_WORKERS}", "--threads=8"]
        process, bound = Process([*gunicorn, *options], env, "site"), GUNICORN_WORKERS * POOL_SIZE
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{base}/healthz"), timeout=60, what="the site to answer")
        yield base, name, process, bound
    finally:
        process.stop()


def test_a_burst_of_requests_holds_a_bounded_number_of_connections(site):
    base, name, process, bound = site
    most = 0
    loading = threading.Event()
    loading.set()

    def watch() -> None:
        nonlocal most
        while loading.is_set():
            most = max(most, backends(name))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as clients:
            statuses = list(clients.map(get, [f"{base}/"] * CLIENTS * 2))
    finally:
        loading.clear()
        watcher.join()

    assert statuses == [200] * CLIENTS * 2, process.text()[-3000:]
    assert 1 <= most <= bound
    assert backends(name) <= bound
    # And the site still serves what needs the database: a customer signs up.
    shopper = Shopper(base)
    assert shopper.request("/accounts/signup/").status == 200
    password = "a long enough pass phrase"
    signed_up = shopper.request(
        "/accounts/signup/",
        {
            "username": "newcomer",
            "email": "newcomer@example.com",
            "password1": password,
            "password2": password,
        },
    )
    assert signed_up.status == 302, signed_up.read()[-2000:]
    assert backends(name) <= bound
