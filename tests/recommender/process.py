"""A real `python -m recommender` process for tests, its log read line by line."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest


class RecommenderProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recommender"],
            # A line per event consumed, which tests count.
            env={**os.environ, "EVENTS_LOG_EACH": "true", **env},
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None  # started with stderr=PIPE
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.log.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.log)}")

    def output(self) -> str:
        """Every line logged until now."""
        while True:
            try:
                self.log.append(self.lines.get_nowait())
            except queue.Empty:
                return "".join(self.log)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def recommender_process(tmp_path) -> Iterator:
    """Starts `python -m recommender` on a free port: ``start(**env) -> (process, target)``."""
    started: list[RecommenderProcess] = []

    def start(**env: str) -> tuple[RecommenderProcess, str]:
        env.setdefault("RECOMMENDER_DB", str(tmp_path / "recommender.sqlite3"))
        # Events have tests of their own, each in its own namespace.
        env.setdefault("RECOMMENDER_CONSUME_EVENTS", "false")
        process = RecommenderProcess({"RECOMMENDER_LISTEN": "127.0.0.1:0", **env})
        started.append(process)
        port = process.wait_for(r"serving on 127\.0\.0\.1:(\d+)").group(1)
        process.wait_for(r" ready$")
        return process, f"127.0.0.1:{port}"

    yield start
    for process in started:
        process.stop()
