"""Starting the project's own processes (relay, worker, ...) from tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

from scripts.supervise import procfile

REPO_ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(REPO_ROOT / "marketplace_site" / "manage.py")


def database_url() -> str:
    """The URL of the database the running test uses, for child processes."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    return f"postgres://{db['USER']}{password}@{host}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marketplace_site.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
        # A line per event consumed, which tests count (the batch's line is the default).
        "EVENTS_LOG_EACH": "true",
    }
    env.update(extra)
    return env


class Process:
    """A child process whose output is collected, and which is always stopped."""

    def __init__(self, args: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # started with stdout=PIPE
        for line in self.proc.stdout:
            self.output.append(line)

    def text(self) -> str:
        return "".join(self.output)

    def wait_for_output(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} never printed {needle!r}:\n{self.text()[-5000:]}")

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile_process(process: str, env: dict[str, str], name: str = "") -> Process:
    """The Procfile's ``process`` (say "worker"), run as `make run` runs it:
    the line in a shell, with the virtualenv's commands on the PATH."""
    try:
        command = procfile()[process]
    except KeyError:
        raise KeyError(f"no process {process!r} in the Procfile") from None
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return Process(["sh", "-c", command.strip()], {**env, "PATH": path}, name or process)


def manage(command: str, *args: str, env: dict[str, str], name: str = "") -> Process:
    return Process([sys.executable, MANAGE, command, *args], env, name or command)


def crashing_relay(env: dict[str, str], name: str = "crashing-relay") -> Process:
    """run_relay, killed after the broker's confirms and before it marks a row
    sent (tests/crashing_relay.py)."""
    return Process([sys.executable, "-m", "tests.crashing_relay"], env, name)


def celery_worker(env: dict[str, str], name: str = "worker") -> Process:
    return Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "events.celery_app",
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            # Unique: a second worker named alike (another test run, or a killed
            # one not yet noticed by the broker) would hold its pidbox queue.
            f"--hostname={name}-{uuid.uuid4().hex[:8]}@%h",
        ],
        env,
        name,
    )


@dataclass
class Pipeline:
    """The recommender, the relay and a Celery worker, as `make run` starts them."""

    recommender: Process
    relay: Process
    worker: Process
    target: str  # the recommender's address

    @property
    def processes(self) -> list[Process]:
        return [self.recommender, self.relay, self.worker]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.text()[-2500:]}" for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def start_pipeline(tmp_path: Path, **extra: str) -> Pipeline:
    """Every process of the pipeline but the site, ready; e-mails as files in tmp_path/mail."""
    env = child_env(
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        DJANGO_EMAIL_FILE_PATH=str(tmp_path / "mail"),
        RECOMMENDER_LISTEN="127.0.0.1:0",
        RECOMMENDER_DB=str(tmp_path / "recommender.sqlite3"),
        RECOMMENDER_INSTANCE="e2e",
        **extra,
    )
    recommender = Process([sys.executable, "-m", "recommender"], env, "recommender")
    relay = manage("run_relay", env=env, name="relay")
    worker = celery_worker(env)
    pipeline = Pipeline(recommender, relay, worker, target="")
    try:
        recommender.wait_for_output(" ready", timeout=60)
        port = recommender.text().split("serving on 127.0.0.1:")[1].split()[0]
        pipeline.target = f"127.0.0.1:{port}"
        worker.wait_for_output(" ready.", timeout=60)
    except BaseException:
        pipeline.stop()
        raise
    return pipeline
