"""A metrics port something else has taken stops a process with one line that
names the variable to change: not a 40-line traceback from deep inside its
start (as the first `make run` of a new user met, port 9101 being busy)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.processes import child_env, procfile_process

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize(
    ("process", "variable"),
    [
        ("recommender", "RECOMMENDER_METRICS_PORT"),
        ("relay", "RELAY_METRICS_PORT"),
        ("worker", "WORKER_METRICS_PORT"),
    ],
)
def test_a_taken_metrics_port_stops_the_process_with_one_line_naming_its_variable(
    process, variable, busy_port, topology, tmp_path
):
    env = child_env(**{variable: str(busy_port)}, RECOMMENDER_DB=str(tmp_path / "store.sqlite3"))
    # As `make run` starts it: the Procfile's line.
    started = procfile_process(process, env)
    try:
        code = started.proc.wait(60)
    finally:
        started.stop()
    output = started.text()
    assert code != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    [said] = [line for line in output.splitlines() if variable in line]
    assert f"{busy_port}" in said
    assert "free port" in said
