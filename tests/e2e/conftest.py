"""The whole shop, started the way `make run` starts it, once per test session.

Every end-to-end test uses the same stack: a sandbox of its own (database,
recommender store, queues, ports), its log kept in test-artifacts/stack.log.
The load test runs last, so the other tests see the shop as a customer
finds it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.topology import Topology
from tests.e2e.test_supervisor import READY
from tests.events.broker import delete_topology
from tests.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stable sort: the load test after every other end-to-end test.
    items.sort(key=lambda item: item.path.name == "test_load.py")


@pytest.fixture(scope="session")
def stack(stack_home: Path) -> str:
    """The site's base URL."""
    return (stack_home / "url").read_text()


@pytest.fixture(scope="session")
def stack_mail(stack_home: Path) -> Path:
    """Where the stack's e-mails are written, one file each."""
    return stack_home / "mail"


@pytest.fixture(scope="session")
def stack_home(tmp_path_factory) -> Iterator[Path]:
    """`make run` in a sandbox (this folder); its "url" file says where the site is."""
    home = tmp_path_factory.mktemp("stack")
    port = free_port()
    recommender = f"127.0.0.1:{free_port()}"
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{home / 'marketplace.sqlite3'}",
        "MARKETPLACE_PORT": str(port),
        "RECOMMENDER_LISTEN": recommender,
        "RECOMMENDER_TARGET": recommender,
        "RECOMMENDER_DB": str(home / "recommender.sqlite3"),
        "RECOMMENDER_INSTANCE": "browser-test",
        "EVENTS_NAMESPACE": namespace,
        "RECOMMENDER_METRICS_PORT": str(free_port()),
        "RELAY_METRICS_PORT": str(free_port()),
        "WORKER_METRICS_PORT": str(free_port()),
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "DJANGO_EMAIL_FILE_PATH": str(home / "mail"),
        # A page must not wait on a slow first gRPC connection in this test.
        "RECOMMENDER_TIMEOUT": "1.0",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (home / "stack.log").open("w")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    (home / "url").write_text(base)
    try:
        _wait_for(lambda: _answers(f"{base}/readyz"), 120, "the site", home)
        _wait_for(lambda: _recommender_ready(home), 60, "the recommender", home)
        yield home
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(home / "stack.log", ARTIFACTS / "stack.log")
        # The stack's queues and exchanges would outlive it on this broker.
        delete_topology(Topology(namespace=namespace), instances=("browser-test",))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _recommender_ready(home: Path) -> bool:
    return READY.search((home / "stack.log").read_text()) is not None


def _wait_for(condition, timeout: float, what: str, home: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not come up:\n{(home / 'stack.log').read_text()[-5000:]}")
