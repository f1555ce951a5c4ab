"""`make run`'s supervisor: the Procfile's processes under supervisord.

A process that dies is logged and started again while the others keep
running, so what the README promises when the recommender dies (pages keep
their best sellers, recommendations come back) can be seen locally. One
that dies within STARTSECS of its start (a setting it refuses, say, which
it names in one line) waits longer before each next try: supervisord's
backoff, one more second per try, STARTRETRIES times. Ctrl-C stops every
process, each given STOPWAITSECS to finish what it holds.

Every line a process writes is printed as "HH:MM:SS name | line", as honcho
did: supervisord hands each chunk of output to an event listener (this file,
run with --prefix-output), the documented way to relay it.

    python scripts/supervise.py [Procfile]
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

REPO_ROOT = Path(__file__).resolve().parents[1]
PROCFILE = REPO_ROOT / "Procfile"
# A process must live this long to count as started; dying sooner is a failed
# start, retried after 1, 2, 3... seconds, STARTRETRIES times.
STARTSECS = 3
STARTRETRIES = 30
STOPWAITSECS = 5
# Output events supervisord holds for the listener while it prints (default 10).
OUTPUT_BUFFER_EVENTS = 100_000
COLOURS = (32, 33, 34, 35, 36, 31)
# What this process receives -> what it sends supervisord: each stops everything.
STOP_SIGNALS = {
    signal.SIGINT: signal.SIGINT,
    signal.SIGTERM: signal.SIGTERM,
    signal.SIGHUP: signal.SIGTERM,
}


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    """The Procfile's processes, name -> shell command, in their order."""
    processes: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, command = line.partition(":")
        if not colon or not name.strip() or not command.strip():
            raise ValueError(f"{path}:{number}: expected 'name: command', got {line!r}")
        processes[name.strip()] = command.strip()
    return processes


def supervisord_conf(processes: Mapping[str, str], run_dir: Path, *, colour: bool) -> str:
    """supervisord's configuration: one program per Procfile line, and the listener."""

    user, password = "bookstore", secrets.token_hex(16)

    def value(text: str) -> str:
        # supervisord expands %(name)s in values: a literal % is %%.
        return text.replace("%", "%%")

    lines = [
        "[supervisord]",
        "nodaemon = true",
        # Its warnings (a process exited unexpectedly, Ctrl-C received), not
        # every start of every process.
        "loglevel = warn",
        # In the foreground it prints its own lines ("spawned", "exited: ... not
        # expected") beside the processes'; a log file would only repeat them.
        "logfile = /dev/null",
        "logfile_maxbytes = 0",
        f"pidfile = {value(str(run_dir / 'supervisord.pid'))}",
        f"childlogdir = {value(str(run_dir))}",
        f"directory = {value(str(REPO_ROOT))}",
        # supervisorctl -c <this file> talks to it over a Unix socket: no TCP port to take.
        # As whoever runs it; said out loud for root, or supervisord warns.
        *(["user = root"] if os.getuid() == 0 else []),
        "[unix_http_server]",
        f"file = {value(str(run_dir / 'supervisor.sock'))}",
        # Only the owner may use the socket; a password as well, or supervisord warns.
        "chmod = 0700",
        f"username = {user}",
        f"password = {password}",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "[supervisorctl]",
        f"serverurl = unix://{value(str(run_dir / 'supervisor.sock'))}",
        f"username = {user}",
        f"password = {password}",
    ]
    for name, command in processes.items():
        lines += [
            f"[program:{name}]",
            # The line as the Procfile means it: one shell command.
            f"command = /bin/sh -c {value(shlex.quote(command))}",
            "autorestart = true",
            f"startsecs = {STARTSECS}",
            f"startretries = {STARTRETRIES}",
            f"stopwaitsecs = {STOPWAITSECS}",
            # The shell and whatever it started stop together.
            "stopasgroup = true",
            "killasgroup = true",
            "redirect_stderr = true",
            "stdout_logfile = NONE",
            "stdout_events_enabled = true",
        ]
    width = max(map(len, processes))
    lines += [
        "[eventlistener:_output]",
        f"command = {shlex.quote(sys.executable)} {shlex.quote(__file__)} --prefix-output"
        f" {'colour' if colour else 'plain'} {width} {' '.join(map(shlex.quote, processes))}",
        "events = PROCESS_LOG",
        f"buffer_size = {OUTPUT_BUFFER_EVENTS}",
        # What it prints goes to its stderr, which supervisord copies to its own stdout.
        "stderr_logfile = /dev/stdout",
        "stderr_logfile_maxbytes = 0",
        "autorestart = true",
    ]
    return "\n".join(lines) + "\n"


class OutputPrefixer:
    """supervisord's PROCESS_LOG events, printed as "HH:MM:SS name | line".

    An event carries one chunk of a process' output, which need not end at
    a line: the unfinished end waits for the rest of its process' output.
    """

    def __init__(self, names: list[str], width: int, out: TextIO, *, colour: bool) -> None:
        self.labels = {
            name: (f"\033[{COLOURS[n % len(COLOURS)]}m" if colour else "")
            + f"{{time}} {name:<{width}} |"
            + ("\033[0m" if colour else "")
            for n, name in enumerate(names)
        }
        self.out = out
        self.unfinished: dict[str, str] = {}

    def write(self, name: str, chunk: str) -> None:
        *lines, self.unfinished[name] = (self.unfinished.get(name, "") + chunk).split("\n")
        if lines:
            label = self.labels.get(name, f"{{time}} {name} |").format(
                time=datetime.now().strftime("%H:%M:%S")
            )
            self.out.write("".join(f"{label} {line}\n" for line in lines))
            self.out.flush()

    def serve(self, events: BinaryIO, replies: BinaryIO) -> None:
        """The event listener protocol: READY, a header line, a payload, RESULT."""
        while True:
            replies.write(b"READY\n")
            replies.flush()
            header_line = events.readline()
            if not header_line:
                return
            header = dict(token.split(":", 1) for token in header_line.decode().split())
            payload = events.read(int(header["len"]))
            first, _, data = payload.partition(b"\n")
            about = dict(token.split(":", 1) for token in first.decode().split())
            self.write(about.get("processname", "?"), data.decode(errors="replace"))
            replies.write(b"RESULT 2\nOK")
            replies.flush()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--prefix-output"]:
        colour, width, *names = argv[1:]
        prefixer = OutputPrefixer(names, int(width), sys.stderr, colour=colour == "colour")
        prefixer.serve(sys.stdin.buffer, sys.stdout.buffer)
        return 0
    processes = procfile(Path(argv[0]) if argv else PROCFILE)
    # Its socket and pid file: a directory of this run's own, gone after it.
    with tempfile.TemporaryDirectory(prefix="bookstore-supervisor-") as run_dir:
        conf = Path(run_dir) / "supervisord.conf"
        conf.write_text(supervisord_conf(processes, Path(run_dir), colour=sys.stdout.isatty()))
        # In a session of its own, so every signal reaches it once, from here:
        # Ctrl-C goes to the terminal's process group, but an IDE or a script
        # may signal this process alone. A closed terminal (HUP) stops it too:
        # supervisord would take HUP as "restart everything".
        supervisord = subprocess.Popen(
            [Path(sys.executable).with_name("supervisord"), "--configuration", conf],
            start_new_session=True,
        )
        for signum, passed_on in STOP_SIGNALS.items():
            signal.signal(signum, lambda *_, sent=passed_on: supervisord.send_signal(sent))
        return supervisord.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
