"""A Docker Engine for the deployment tests: the running one, or one started here.

Where no engine answers, Debian's dockerd (package docker.io, which `make
docker` installs) is started as a child of the tests and stopped afterwards,
with what it changed on the host put back: its firewall and NAT rules, IP
forwarding and its bridges. Its image store (/var/lib/docker) stays, so the
next run builds from Docker's layer cache. Where it cannot start (no root, no
package), the tests fail saying why: they never skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
DOCKERD_LOG_TAIL = 30


def answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30)
    return probe.returncode == 0


def _links() -> set[str]:
    shown = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=False
    )
    return {line.split(":")[1].strip().split("@")[0] for line in shown.stdout.splitlines()}


def _saved_rules(tool: str) -> str | None:
    if shutil.which(tool) is None:
        return None
    return subprocess.run([tool], capture_output=True, text=True, check=False).stdout


def _restore_rules(tool: str, saved: str | None) -> None:
    """Back to the rules saved before dockerd ran. A table that held nothing
    then (iptables-save leaves it out) is emptied, chains and all."""
    if saved is None:
        return
    family = tool.removesuffix("-save")
    subprocess.run([f"{family}-restore"], input=saved, text=True, check=False)
    for table in ("filter", "nat"):
        if f"*{table}" not in saved:
            subprocess.run([family, "-t", table, "-F"], capture_output=True, check=False)
            subprocess.run([family, "-t", table, "-X"], capture_output=True, check=False)
            subprocess.run(
                [family, "-t", table, "-P", "FORWARD", "ACCEPT"], capture_output=True, check=False
            )


@contextlib.contextmanager
def docker_engine() -> Iterator[None]:
    """Yields once `docker` answers; stops what it started, leaving no trace."""
    if answers():
        yield
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        pytest.fail(
            "no Docker Engine answers and dockerd is not installed: "
            "`make docker` installs Debian's docker.io"
        )
    if os.geteuid() != 0:
        pytest.fail("no Docker Engine answers, and starting one (dockerd) needs root")

    links_before = _links()
    rules_before = {tool: _saved_rules(tool) for tool in ("iptables-save", "ip6tables-save")}
    forward_before = IP_FORWARD.read_text()
    log = tempfile.NamedTemporaryFile(prefix="dockerd-", suffix=".log", delete=False)  # noqa: SIM115
    # A process group of its own: its containerd goes with it.
    daemon = subprocess.Popen(
        [dockerd], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not answers():
            if daemon.poll() is not None or time.monotonic() > deadline:
                tail = Path(log.name).read_text(errors="replace").splitlines()[-DOCKERD_LOG_TAIL:]
                pytest.fail("dockerd did not start:\n" + "\n".join(tail))
            time.sleep(0.5)
        yield
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGKILL)  # anything of its group still there
        for tool, saved in rules_before.items():
            _restore_rules(tool, saved)
        IP_FORWARD.write_text(forward_before)
        for link in _links() - links_before:
            subprocess.run(["ip", "link", "delete", link], capture_output=True, check=False)
        Path(log.name).unlink(missing_ok=True)
