"""Waking the relay when a checkout commits an outbox row (PostgreSQL).

A trigger on the outbox table NOTIFYs ``OUTBOX_CHANNEL`` (migration 0003);
PostgreSQL delivers it when the inserting transaction commits, once per
transaction however many rows it added. The relay listens on a connection of
its own, on a thread of its own, and sleeps between rounds until a
notification or its slow safety poll: an idle relay costs nothing, and a
checkout is published as soon as it commits.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import psycopg
from django.db import connection

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "bookstore_outbox"
# How often the listening thread looks up from the socket to see whether it
# should stop, and how long it waits before listening again after an error.
CHECK_STOP_SECONDS = 1.0
RETRY_SECONDS = 2.0


def notifications_supported() -> bool:
    return connection.vendor == "postgresql"


class OutboxWakeups:
    """Sets ``wake`` (on ``loop``) at each notification, from a thread of its own.

    A lost connection (the database restarted) is listened on again after a
    pause, and ``wake`` is set then too: a commit made meanwhile notified no one.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        self._loop = loop
        self._wake = wake
        self._stop = threading.Event()
        # Read here, on the caller's thread, where Django's connection lives.
        self._params = connection.get_connection_params()
        self._thread = threading.Thread(target=self._listen, name="outbox-wakeups", daemon=True)

    def start(self) -> OutboxWakeups:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(CHECK_STOP_SECONDS + RETRY_SECONDS + 5)

    def _set(self) -> None:
        self._loop.call_soon_threadsafe(self._wake.set)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(**self._params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    log.info("relay: woken by PostgreSQL notifications on %s", OUTBOX_CHANNEL)
                    self._set()  # whatever committed before LISTEN took effect
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=CHECK_STOP_SECONDS, stop_after=1):
                            self._set()
            except psycopg.Error as exc:
                log.warning(
                    "relay: not listening for outbox notifications (%s); again in %.0fs",
                    exc,
                    RETRY_SECONDS,
                )
                self._set()
                self._stop.wait(RETRY_SECONDS)
