"""The swarm stack (deploy/swarm/stack.yml) deployed for real on a one-node
swarm, and every app service updated, one after another, under load.

`make test` runs this after the compose test, on the same Docker Engine and
images (tests/deploy/conftest.py). The test makes the swarm (`docker swarm
init`), labels its node for the stateful services, makes the secrets, and
removes all of it afterwards: the stack, its volumes, the secrets, and the
swarm (`docker swarm leave --force`).

What an operator relies on, checked here:
- no password, key or cookie is in a service's definition (what `docker
  service inspect` shows): each is a Docker secret;
- the three RabbitMQ services, started at once, form one cluster;
- while customers browse and buy with the promotion, the site, the
  recommender, the relay and the worker are updated to a new image
  (`docker service update --image`), then the recommender is scaled 2 -> 3
  -> 2: no request fails, every event is applied once by every consumer,
  every order is mailed and learned by both replicas, and no page goes
  without its recommendations for as long as the breaker's window;
- the third recommender replica serves the site's calls soon after it is
  added (the replicas move their clients to new connections, which look
  the name up again).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.deploy.compose import REPO_ROOT
from tests.deploy.shop import (
    ARTIFACTS,
    FANTASY,
    Load,
    Mailbox,
    assert_every_event_applied_once,
    assert_no_dead_letters,
    books_in,
    customer,
    learned,
    python_command,
    redemptions,
    start_promotion,
    waited,
)
from tests.processes import free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

STACK_FILE = REPO_ROOT / "deploy" / "swarm" / "stack.yml"
OVERRIDE = Path(__file__).with_name("stack.test.yml")
STACK = "bookstore"
TAG = "local"
# The "new release" the updates roll out: the same image under another tag,
# which is a change of each service's spec.
NEXT_APP_IMAGE = "bookstore/app:update-test"
UPDATED = ("site", "recommender", "relay", "worker")
# The site's breaker (RECOMMENDER_BREAKER_RESET's default): pages may show
# best sellers for a moment, never as long as a breaker that opened.
BREAKER_WINDOW = 30.0
# How an update ends: done, or stopped or rolled back after a failure.
ENDED = ("completed", "paused", "rollback_completed", "rollback_paused")
LABELS = ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3", "postgres")
# A replica's access log line for a Recommend call (RECOMMENDER_ACCESS_LOG=every).
RECOMMEND_CALL = re.compile(r"/bookstore\.recommendations\.v1\.Recommendations/Recommend\b")


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode:
        pytest.fail(f"docker {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class Swarm:
    site: str
    mailbox: Mailbox
    secrets: dict[str, str]
    log: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {line}")

    def tasks(self, service: str) -> dict[str, str]:
        """The running containers of a service: their id by slot ("1", "2", ...)."""
        shown = docker(
            "ps",
            "--filter",
            f"label=com.docker.swarm.service.name={STACK}_{service}",
            "--format",
            '{{.ID}} {{.Label "com.docker.swarm.task.name"}}',
        )
        running = {}
        for line in shown.splitlines():
            container, task = line.split()
            running[task.split(".")[1]] = container
        return running

    def container(self, service: str) -> str:
        """A container of the service; "recommender-2" is slot 2's."""
        name, _, slot = service.rpartition("-")
        if name == "recommender":
            tasks = self.tasks(name)
            if slot not in tasks:
                pytest.fail(f"no running task in slot {slot} of {name}")
            return tasks[slot]
        tasks = self.tasks(service)
        if not tasks:
            pytest.fail(f"no running task of {service}")
        return next(iter(tasks.values()))

    def exec(self, service: str, *command: str) -> str:
        return docker("exec", self.container(service), *command, timeout=60)

    def python(self, service: str, code: str) -> Any:
        return json.loads(self.exec(service, *python_command(service, code)).splitlines()[-1])

    def replicas(self) -> dict[str, str]:
        shown = docker(
            "service",
            "ls",
            "--filter",
            f"label=com.docker.stack.namespace={STACK}",
            "--format",
            "{{.Name}} {{.Replicas}}",
        )
        return dict(line.split(" ", 1) for line in shown.splitlines())

    def converged(self) -> bool:
        """Every service has its replicas running, healthy where it has a check
        (a task is "running" only once healthy), and the migrations are done."""
        migrated = docker("service", "ps", f"{STACK}_migrate", "--format", "{{.CurrentState}}")
        for name, replicas in self.replicas().items():
            running, wanted = replicas.split(" ")[0].split("/")  # "1/2", "1/1 (max 1 per node)"
            if name != f"{STACK}_migrate" and running != wanted:
                return False
        return migrated.startswith("Complete")

    def images(self, service: str) -> set[str]:
        shown = docker(
            "service",
            "ps",
            f"{STACK}_{service}",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Image}}",
        )
        return set(shown.split())

    def update_state(self, service: str) -> str:
        """How the service's last update stands ("" before its first)."""
        shown = docker(
            "service",
            "inspect",
            f"{STACK}_{service}",
            "--format",
            "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
        )
        return shown.strip()

    def update(self, service: str, image: str) -> float:
        """Rolls the service onto ``image`` (its update_config); the seconds it
        took, to the end of its monitor window."""
        started = time.monotonic()
        docker(
            "service",
            "update",
            "--detach",
            "--quiet",
            "--no-resolve-image",
            "--image",
            image,
            f"{STACK}_{service}",
        )
        # Each service is updated once here: no earlier update's state to mistake.
        waited(
            lambda: self.update_state(service) in ENDED,
            600,
            f"the update of {service} to end",
        )
        took = time.monotonic() - started
        state = self.update_state(service)
        assert state == "completed", f"{service}: the update ended {state!r}"
        assert self.images(service) == {image}, self.images(service)
        self.note(f"updated {service} to {image} in {took:.0f} s")
        return took

    def scale(self, service: str, replicas: int) -> float:
        started = time.monotonic()
        docker("service", "scale", "--detach", f"{STACK}_{service}={replicas}")
        waited(
            lambda: (
                self.replicas()[f"{STACK}_{service}"].split(" ")[0] == f"{replicas}/{replicas}"
                and len(self.tasks(service)) == replicas
            ),
            600,
            f"{service} to run {replicas} tasks",
        )
        took = time.monotonic() - started
        self.note(f"scaled {service} to {replicas} in {took:.0f} s")
        return took

    def calls_served(self, slot: str) -> int:
        """The Recommend calls the recommender of that slot has logged."""
        shown = subprocess.run(
            ["docker", "logs", self.tasks("recommender")[slot]],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        return len(RECOMMEND_CALL.findall(shown.stdout + shown.stderr))


def make_secrets() -> dict[str, str]:
    postgres, rabbitmq = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    nodes = ";".join(f"amqp://bookstore:{rabbitmq}@rabbitmq-{n}:5672/" for n in (1, 2, 3))
    return {
        "django_secret_key": secrets.token_urlsafe(50),
        "postgres_password": postgres,
        "database_url": f"postgres://bookstore:{postgres}@postgres:5432/bookstore",
        "rabbitmq_password": rabbitmq,
        "amqp_url": nodes,
        "rabbitmq_cookie": secrets.token_urlsafe(32),
        "recommender_auth_token": secrets.token_urlsafe(24),
        # The test's SMTP server wants no login: a blank secret is unset.
        "smtp_password": "\n",
    }


@pytest.fixture(scope="module")
def swarm(engine: None) -> Iterator[Swarm]:
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    if state != "inactive":
        pytest.fail(f"this Docker Engine is already in a swarm ({state}): the test makes its own")
    networks_before = set(docker("network", "ls", "--format", "{{.Name}}").split())
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="0.0.0.0", port=smtp_port)
    smtp.start()
    site_port = free_port()
    values = make_secrets()
    swarm = Swarm(site=f"http://127.0.0.1:{site_port}", mailbox=mailbox, secrets=values)
    try:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        node = docker("info", "--format", "{{.Swarm.NodeID}}").strip()
        for label in LABELS:  # every stateful service on this one node
            docker("node", "update", "--label-add", f"bookstore.{label}=true", node)
        for name, value in values.items():
            created = subprocess.run(
                ["docker", "secret", "create", name, "-"],
                input=value,
                text=True,
                capture_output=True,
                check=False,
            )
            assert created.returncode == 0, created.stderr
        environment = {
            **os.environ,
            "IMAGE_TAG": TAG,
            "SITE_PORT": str(site_port),
            "SITE_URL": swarm.site,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_EMAIL_HOST": "host.docker.internal",
            "DJANGO_EMAIL_PORT": str(smtp_port),
            "DJANGO_EMAIL_USE_TLS": "false",
        }
        started = time.monotonic()
        deployed = subprocess.run(
            [
                "docker",
                "stack",
                "deploy",
                "--resolve-image",
                "never",
                "-c",
                str(STACK_FILE),
                "-c",
                str(OVERRIDE),
                STACK,
            ],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert deployed.returncode == 0, deployed.stderr
        waited(swarm.converged, 420, "every service of the stack to run (docker service ls)")
        swarm.note(f"every service running and healthy after {time.monotonic() - started:.0f} s")
        # Every order of the load gets it (three books each, no limit reached).
        start_promotion(swarm, per_customer_limit=10_000)
        yield swarm
    finally:
        try:
            save_logs(swarm)
        finally:
            remove_everything(networks_before)
            smtp.stop()


def save_logs(swarm: Swarm) -> None:
    """test-artifacts/swarm.log: what the test did, then every container's output
    (the replaced ones' too: Swarm keeps a few tasks of each slot)."""
    ARTIFACTS.mkdir(exist_ok=True)
    containers = docker(
        "ps",
        "-a",
        "--filter",
        f"label=com.docker.stack.namespace={STACK}",
        "--format",
        '{{.ID}} {{.Label "com.docker.swarm.task.name"}}',
        check=False,
    )
    parts = ["\n".join(swarm.log)]
    for line in containers.splitlines():
        container, task = line.split()
        shown = subprocess.run(
            ["docker", "logs", "--timestamps", container],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        parts.append(f"--- {task} ---\n{shown.stdout}{shown.stderr}")
    (ARTIFACTS / "swarm.log").write_text("\n\n".join(parts))


def remove_everything(networks_before: set[str]) -> None:
    """The stack, its containers and volumes, the secrets, the swarm; each
    step tried whatever the one before it did."""
    docker("stack", "rm", STACK, check=False)

    def containers(*which: str) -> list[str]:
        """The stack's containers: running ones, or with "-a" all of them."""
        listed = docker(
            "ps", "-q", *which, "--filter", f"label=com.docker.stack.namespace={STACK}", check=False
        )
        return listed.split()

    try:
        # Removing a stack returns at once, and its containers would stop in
        # their grace time (up to 60 s): nothing here is kept, so they are killed.
        running = containers()
        if running:
            docker("kill", *running, check=False)
        waited(lambda: not containers("-a"), 120, "the stack's containers to go")
    finally:
        # A container still there is removed with its volume.
        left = containers("-a")
        if left:
            docker("rm", "--force", "--volumes", *left, check=False)
        volumes = docker("volume", "ls", "--format", "{{.Name}}", check=False).split()
        ours = [v for v in volumes if v.startswith((f"{STACK}_", f"{STACK}-recommender-store-"))]
        if ours:
            docker("volume", "rm", *ours, check=False)
        docker("swarm", "leave", "--force", check=False)  # its secrets and configs go with it
        networks = docker("network", "ls", "--format", "{{.Name}}", check=False).split()
        for network in set(networks) - networks_before:
            docker("network", "rm", network, check=False)  # docker_gwbridge
        docker("image", "rm", NEXT_APP_IMAGE, check=False)


# --- the tests ------------------------------------------------------------------


def test_no_secret_is_in_any_service_definition(swarm):
    services = docker(
        "service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}"
    )
    inspected = docker("service", "inspect", *services.split())
    for name, value in swarm.secrets.items():
        if value.strip():
            assert value not in inspected, f"the {name} secret is in a service's definition"
    # Each process reads its secrets from files (<VARIABLE>_FILE).
    site = json.loads(docker("service", "inspect", f"{STACK}_site"))[0]
    variables = dict(v.split("=", 1) for v in site["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"])
    assert variables["DATABASE_URL_FILE"] == "/run/secrets/database_url"
    assert "DATABASE_URL" not in variables
    assert "DJANGO_SECRET_KEY" not in variables


def test_the_rabbitmq_nodes_form_one_cluster(swarm):
    status = json.loads(
        swarm.exec("rabbitmq-3", "rabbitmqctl", "-q", "cluster_status", "--formatter", "json")
    )
    assert sorted(status["running_nodes"]) == [f"rabbit@rabbitmq-{n}" for n in (1, 2, 3)]


def test_rolling_updates_and_scaling_under_load_lose_nothing(swarm):
    shoppers = [customer(swarm, f"load{n}") for n in range(3)]
    books = books_in(swarm, FANTASY, 40)
    docker("tag", f"bookstore/app:{TAG}", NEXT_APP_IMAGE)
    figures: dict[str, Any] = {}
    load = Load(shoppers, books, books_per_order=3)
    load.start()
    try:
        time.sleep(5)
        for service in UPDATED:
            figures[f"update {service}"] = round(swarm.update(service, NEXT_APP_IMAGE))
        figures["scale recommender 2 -> 3"] = round(swarm.scale("recommender", 3))
        # The replicas end each client's connection after 30 s (max connection
        # age): the site's channels look the name up again and find the third.
        added = time.monotonic()
        waited(lambda: swarm.calls_served("3") > 0, 120, "the third replica to serve a call")
        figures["third replica's first call after (s)"] = round(time.monotonic() - added)
        time.sleep(10)
        figures["calls served by slot"] = {s: swarm.calls_served(s) for s in ("1", "2", "3")}
        figures["scale recommender 3 -> 2"] = round(swarm.scale("recommender", 2))
        time.sleep(5)
    finally:
        load.stop()

    statuses = Counter(status for _, status, _ in load.pages)
    figures.update(
        requests=load.requests,
        orders=len(load.orders),
        failures=len(load.failures),
        pages=dict(statuses),
        sources=dict(Counter(source for _, _, source in load.pages)),
        longest_without_recommendations=round(load.longest_without_recommendations(), 1),
    )
    swarm.note(f"figures: {json.dumps(figures)}")
    (ARTIFACTS / "swarm-update.json").write_text(json.dumps(figures, indent=2) + "\n")

    assert not load.failures, load.failures[:5]
    assert len(load.orders) >= 10, figures
    assert set(statuses) == {200}, figures
    assert load.longest_without_recommendations() < BREAKER_WINDOW, figures
    waited(
        lambda: set(load.orders) <= set(swarm.mailbox.confirmations()), 120, "every confirmation"
    )
    # Every checkout had the promotion, and every event was applied once.
    assert redemptions(swarm) == len(load.orders)
    assert_every_event_applied_once(swarm)
    assert_no_dead_letters(swarm, "rabbitmq-2")
    everything = {"orders": len(load.orders), "lines": 3 * len(load.orders)}
    for replica in ("recommender-1", "recommender-2"):
        waited(
            lambda r=replica: learned(swarm, r, load.orders) == everything,
            120,
            f"{replica} to learn every order",
        )
