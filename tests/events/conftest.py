from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.topology import Topology
from tests.events.broker import delete_topology
from tests.processes import Process, celery_worker, child_env


@pytest.fixture
def topology(settings, monkeypatch) -> Iterator[Topology]:
    """A namespace of queues and exchanges of this test's own, removed afterwards."""
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    settings.EVENTS_NAMESPACE = namespace
    settings.EVENTS_DELIVERY_LIMIT = 3
    monkeypatch.setenv("EVENTS_NAMESPACE", namespace)
    monkeypatch.setenv("EVENTS_DELIVERY_LIMIT", "3")
    topology = Topology(namespace=namespace, delivery_limit=3)
    yield topology
    # Recommender replicas the tests name declare queues of their own too;
    # deleting a queue that is not there is a no-op.
    delete_topology(topology, instances=("new-replica", "old-replica", "e2e"))


@pytest.fixture
def mail_dir(tmp_path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def mail_worker(topology, mail_dir) -> Iterator[Process]:
    """A real Celery worker of this test's namespace, writing its e-mails to ``mail_dir``."""
    process = celery_worker(
        child_env(
            DJANGO_EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            DJANGO_EMAIL_FILE_PATH=str(mail_dir),
        )
    )
    try:
        process.wait_for_output(" ready.", timeout=60)
        yield process
    finally:
        process.stop()
