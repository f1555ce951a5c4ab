"""Make sure the backing services a command needs answer, starting local ones.

    python scripts/ensure_services.py postgres [rabbitmq ...]

For each service: if its port answers, done; else, if this machine has the
service installed, start it and wait; else stop with a message saying how to
get one. Never carries on silently without it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Service:
    name: str
    url_variable: str
    default_url: str
    start_commands: tuple[tuple[str, ...], ...]
    how_to_get: str

    def address(self) -> tuple[str, int]:
        url = urlsplit(os.environ.get(self.url_variable) or self.default_url)
        return url.hostname or "127.0.0.1", url.port or 0


def _pg_start_commands() -> tuple[tuple[str, ...], ...]:
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    return tuple(
        ("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start")
        for version in versions[-1:]
    )


SERVICES = {
    "postgres": Service(
        "PostgreSQL",
        "TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/bookstore",
        _pg_start_commands(),
        "install it (apt-get install postgresql) or point TEST_DATABASE_URL at one",
    ),
    "rabbitmq": Service(
        "RabbitMQ",
        "AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/",
        (("rabbitmq-server", "-detached"),),
        "install it (apt-get install rabbitmq-server) or run "
        "`docker compose -f compose/docker-compose.yml up -d rabbitmq` "
        "(compose/README.md lists the variables it needs)",
    ),
}


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ensure(service: Service, wait_seconds: float = 60) -> None:
    host, port = service.address()
    if answers(host, port):
        return
    local = host in ("127.0.0.1", "localhost", "::1")
    startable = [c for c in service.start_commands if shutil.which(c[0])]
    if not (local and startable):
        sys.exit(
            f"{service.name} does not answer at {host}:{port} and cannot be started here: "
            f"{service.how_to_get}."
        )
    print(f"{service.name} is not running; starting it: {' '.join(startable[0])}", flush=True)
    subprocess.run(startable[0], check=False)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if answers(host, port):
            return
        time.sleep(0.5)
    sys.exit(f"{service.name} was started but does not answer at {host}:{port}.")


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        sys.exit(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    for name in names:
        ensure(SERVICES[name])


if __name__ == "__main__":
    main(sys.argv[1:])
