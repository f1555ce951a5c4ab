"""`make run`'s supervisor: its Procfile reading, its prefixed output, and stopping."""

from __future__ import annotations

import configparser
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from scripts.supervise import REPO_ROOT, OutputPrefixer, procfile, supervisord_conf


def test_the_procfile_is_read_in_order_and_a_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_text(
        "# the shop\nweb: exec python serve.py --port ${PORT:-8000}\n\nworker: celery\n"
    )
    assert procfile(path) == {
        "web": "exec python serve.py --port ${PORT:-8000}",
        "worker": "celery",
    }

    path.write_text("web: serve\nno command here\n")
    with pytest.raises(ValueError, match=r"Procfile:2: expected 'name: command'"):
        procfile(path)


def test_a_line_split_across_chunks_is_printed_whole_with_its_process_name() -> None:
    out = io.StringIO()
    prefixer = OutputPrefixer(["web", "recommender"], 11, out, colour=False)
    prefixer.write("web", "GET / 200\nGET /ca")
    prefixer.write("recommender", "ready\n")
    prefixer.write("web", "rt 200\n")
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "web         | GET / 200",
        "recommender | ready",
        "web         | GET /cart 200",
    ]


def test_the_listener_answers_supervisords_protocol_for_each_event() -> None:
    payload = b"processname:web groupname:web pid:7 channel:stdout\nhello\n"
    header = (
        "ver:3.0 server:supervisor serial:1 pool:_output poolserial:1"
        f" eventname:PROCESS_LOG_STDOUT len:{len(payload)}\n"
    )
    events = io.BytesIO(header.encode() + payload)
    replies, out = io.BytesIO(), io.StringIO()
    OutputPrefixer(["web"], 3, out, colour=False).serve(events, replies)
    assert replies.getvalue() == b"READY\nRESULT 2\nOKREADY\n"
    assert out.getvalue().endswith(" web | hello\n")


def test_every_procfile_line_becomes_a_program_run_by_the_shell_with_percent_kept(
    tmp_path: Path,
) -> None:
    conf = supervisord_conf({"worker": "celery worker --hostname=w.$$@%h"}, tmp_path, colour=False)
    parser = configparser.ConfigParser(interpolation=configparser.BasicInterpolation())
    parser.read_string(conf)
    # supervisord expands %(...)s: a literal % survives as one.
    assert parser["program:worker"]["command"] == "/bin/sh -c 'celery worker --hostname=w.$$@%h'"
    assert parser["program:worker"]["autorestart"] == "true"


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_a_signal_to_the_supervisor_alone_stops_every_process(tmp_path: Path, signum) -> None:
    """Ctrl-C reaches the terminal's whole process group; an IDE, a script or a
    closed terminal may signal the supervisor alone. Either way nothing is left
    running."""
    pid_file = tmp_path / "pid"
    (tmp_path / "Procfile").write_text(f"sleeper: echo $$ > {pid_file}; exec sleep 600\n")
    supervisor = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "supervise.py"), str(tmp_path / "Procfile")],
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the process did not start"
            time.sleep(0.1)
        sleeper = psutil.Process(int(pid_file.read_text()))
        supervisor.send_signal(signum)
        output, _ = supervisor.communicate(timeout=30)
    finally:
        if supervisor.poll() is None:  # not stopped: stop it as before, not leave it
            supervisor.terminate()
            supervisor.wait(30)
    assert not psutil.pid_exists(sleeper.pid) or sleeper.status() == psutil.STATUS_ZOMBIE, output
    assert "stopped: sleeper" in output, output
