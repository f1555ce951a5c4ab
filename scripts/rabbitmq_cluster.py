"""A local 3-node RabbitMQ cluster beside the machine's own broker, for tests.

    python scripts/rabbitmq_cluster.py up [--dir var/rabbitmq-cluster]   # prints AMQP_URL
    python scripts/rabbitmq_cluster.py down [--dir var/rabbitmq-cluster]

Each node has its own name, ports, data and log directories under ``--dir``
and a cookie of its own, so the machine's broker (rabbit@<host>, 5672) is
never touched. The nodes find each other by classic config peer discovery,
as the compose deployment's do. Uses the installed RabbitMQ (Debian's
rabbitmq-server package); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
STATE_FILE = "cluster.json"
# A frozen node keeps its sockets open: its peers hold every call to it until
# Erlang's tick declares it down (60 s by default, up to 75). 10 s, as
# compose's nodes: a node frozen that long is treated as lost.
ADVANCED_CONFIG = "[{kernel, [{net_ticktime, 10}]}].\n"


class ClusterError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    name: str
    port: int
    dist_port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def pid_file(self) -> Path:
        return self.directory / "pid"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None


@dataclass
class LocalCluster:
    """Three RabbitMQ nodes under ``root``; ``up()`` starts them and waits for the cluster."""

    root: Path
    size: int = 3
    nodes: list[Node] = field(default_factory=list)

    @property
    def home(self) -> Path:
        # The Erlang cookie lives in $HOME: ours, shared by our nodes and CLI calls only.
        return self.root / "home"

    @property
    def amqp_url(self) -> str:
        """Every node, in AMQP_URL's failover form."""
        return ";".join(node.url for node in self.nodes)

    def _env(self, node: Node) -> dict[str, str]:
        d = node.directory
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(node.pid_file),
        }

    def ctl(self, *args: str, node: Node | None = None, timeout: float = 60) -> str:
        node = node or self.nodes[0]
        result = subprocess.run(
            [CTL, "-n", node.name, *args],
            env={**os.environ, "HOME": str(self.home)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise ClusterError(f"rabbitmqctl {' '.join(args)} on {node.name}: {result.stderr}")
        return result.stdout

    def up(self, timeout: float = 120) -> LocalCluster:
        if not Path(SERVER).exists():
            raise ClusterError(
                f"{SERVER} is missing: install RabbitMQ (apt-get install rabbitmq-server)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20))
            cookie.chmod(0o400)
        tag = secrets.token_hex(3)
        self.nodes = [
            Node(
                name=f"bookstore-{tag}-{n}@localhost",
                port=free_port(),
                dist_port=free_port(),
                directory=self.root / f"node-{n}",
            )
            for n in range(1, self.size + 1)
        ]
        peers = "".join(
            f"cluster_formation.classic_config.nodes.{n} = {node.name}\n"
            for n, node in enumerate(self.nodes, 1)
        )
        for node in self.nodes:
            node.directory.mkdir(parents=True, exist_ok=True)
            (node.directory / "rabbitmq.conf").write_text(
                f"listeners.tcp.default = 127.0.0.1:{node.port}\n"
                "loopback_users = none\n"
                # A node cut off (or frozen) past the tick comes back as a
                # partition: autoheal restarts the losing side, and the
                # cluster is whole again in seconds. (pause_minority left a
                # thawed node paused for good here.)
                "cluster_partition_handling = autoheal\n"
                "cluster_formation.peer_discovery_backend = classic_config\n" + peers
            )
            (node.directory / "enabled_plugins").write_text("[].\n")
            (node.directory / "advanced.config").write_text(ADVANCED_CONFIG)
        self._save()
        for node in self.nodes:
            self.start(node)
        self.wait_until_clustered(timeout)
        return self

    def start(self, node: Node) -> None:
        """Starts ``node`` (again: it rejoins the cluster with the data it had)."""
        node.pid_file.unlink(missing_ok=True)
        log = (node.directory / "server.log").open("a")
        subprocess.Popen(
            [SERVER],
            env=self._env(node),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a test's Ctrl-C must not reach the broker first
        )

    def running_nodes(self, via: Node | None = None) -> list[str]:
        status = json.loads(self.ctl("cluster_status", "--formatter", "json", node=via))
        return sorted(status.get("running_nodes", []))

    def wait_until_clustered(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        expected = sorted(node.name for node in self.nodes)
        last = ""
        while time.monotonic() < deadline:
            try:
                if all(self.running_nodes(via=node) == expected for node in self.nodes):
                    return
            except (ClusterError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                last = str(exc)
            time.sleep(1)
        logs = "\n".join(
            f"--- {node.name} ---\n{_tail(node.directory / 'server.log')}" for node in self.nodes
        )
        raise ClusterError(f"the cluster did not form in {timeout:.0f}s: {last}\n{logs}")

    def make_whole(self) -> None:
        """Every node running, none frozen, all in one cluster again."""
        for node in self.nodes:
            if node.pid() is None:
                self.start(node)
            else:
                self.thaw(node)
        self.wait_until_clustered()

    def wait_until_running(self, node: Node, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                # Refused at once until the node has registered with epmd.
                self.ctl("await_startup", "--timeout", "30", node=node, timeout=40)
                return
            except (ClusterError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def signal(self, node: Node, signum: int) -> None:
        pid = node.pid()
        if pid is None:
            raise ClusterError(f"{node.name} has no pid file: not running")
        os.kill(pid, signum)

    def kill(self, node: Node) -> None:
        """SIGKILL: the node dies without a word to its peers or clients."""
        pid = node.pid()
        self.signal(node, signal.SIGKILL)
        _wait_gone(pid)
        node.pid_file.unlink(missing_ok=True)

    def stop(self, node: Node) -> None:
        """A clean shutdown, as an operator's restart does."""
        self.ctl("stop", node=node, timeout=120)
        node.pid_file.unlink(missing_ok=True)

    def freeze(self, node: Node) -> None:
        self.signal(node, signal.SIGSTOP)

    def thaw(self, node: Node) -> None:
        self.signal(node, signal.SIGCONT)

    def leader(self, queue: str) -> Node:
        """The node leading quorum queue ``queue``."""
        rows = json.loads(self.ctl("list_queues", "name", "leader", "--formatter", "json"))
        leaders = {row["name"]: row.get("leader") for row in rows}
        if not leaders.get(queue):
            raise ClusterError(f"no leader known for {queue!r}")
        return next(node for node in self.nodes if node.name == leaders[queue])

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def down(self) -> None:
        """Stops every node (thawed first), whatever state it is in, and deletes ``root``."""
        self._load()
        for node in self.nodes:
            pid = node.pid()
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            _wait_gone(pid)
        shutil.rmtree(self.root, ignore_errors=True)

    def _save(self) -> None:
        state = [
            {
                "name": n.name,
                "port": n.port,
                "dist_port": n.dist_port,
                "directory": str(n.directory),
            }
            for n in self.nodes
        ]
        (self.root / STATE_FILE).write_text(json.dumps(state))

    def _load(self) -> None:
        if self.nodes or not (self.root / STATE_FILE).exists():
            return
        state = json.loads((self.root / STATE_FILE).read_text())
        self.nodes = [Node(**{**n, "directory": Path(n["directory"])}) for n in state]


def _wait_gone(pid: int | None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "down"))
    parser.add_argument("--dir", type=Path, default=Path("var/rabbitmq-cluster"))
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.dir.resolve())
    if args.command == "down":
        cluster.down()
        return 0
    try:
        cluster.up()
    except ClusterError as exc:
        print(exc, file=sys.stderr)
        cluster.down()
        return 1
    print(f"AMQP_URL='{cluster.amqp_url}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
