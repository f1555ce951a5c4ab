"""Child processes of the benchmark: started, read, measured and always stopped."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VAR = REPO_ROOT / "var" / "bench"
PYTHON = sys.executable


class HarnessError(RuntimeError):
    """The benchmark itself could not run (a process died, a port never opened)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB; NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def base_env(**extra: str) -> dict[str, str]:
    """The harness's environment for a child; tracing off (the default), as
    every row but the baseline of that cost measures it, whatever .env says."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO_ROOT)}
    env.pop("OTEL_SDK_DISABLED", None)
    env["OTEL_TRACES_EXPORTER"] = "none"
    env.update(extra)
    return env


class Child:
    """A child whose output goes to a log file under var/bench/logs."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        logs = VAR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            args, env=env, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if needle in text:
                return text
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise HarnessError(f"{self.name} never printed {needle!r}:\n{self.text()[-3000:]}")

    def pids(self) -> list[int]:
        """This process and its children (gunicorn's workers)."""
        return [self.pid, *children_of(self.pid)]

    def peak_rss_mb(self) -> float:
        """The largest peak RSS among this process and its children."""
        return max(peak_rss_mb(p) for p in self.pids())

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


class Driver:
    """A load generator in its own process, told what to run one JSON line at a time."""

    def __init__(self, name: str, module: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [PYTHON, "-m", module],
            env=env or base_env(),
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None  # started with stderr=PIPE
        for line in self.proc.stderr:
            self._stderr.append(line)

    def run(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise HarnessError(f"{self.name} died:\n{''.join(self._stderr)[-3000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise HarnessError(f"{self.name}: {answer['error']}")
        return answer

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def serve_commands(handle: Any) -> None:
    """The driver's side: answer each JSON line on stdin with one on stdout."""
    # Whatever else the handler prints goes to stderr, not into the answers.
    answers, sys.stdout = sys.stdout, sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = handle(json.loads(line))
        except Exception as exc:  # reported to the harness, which stops
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


async def until_terminated() -> None:
    """The child's side: return once SIGTERM or SIGINT arrives (Child.stop sends one)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
