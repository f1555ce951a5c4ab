"""The compose deployment brought up for real: images from a Debian mirror,
a 3-node RabbitMQ cluster, orders through the site, and containers killed.

`make test` runs this where Docker Engine can run (tests/deploy/engine.py
starts one if none answers, and removes every trace of it afterwards). The
images come from `scripts/images.py`, as `make images` builds them. Order
e-mails go to an SMTP server run by the test on this host.

What the customer and the shop rely on, checked here:
- every service becomes healthy; the RabbitMQ nodes form one cluster, and
  every queue holding events or tasks is a quorum queue on all three nodes;
- an order with the promotion is confirmed by e-mail and both recommender
  replicas learn it (bought-together answers);
- a RabbitMQ node, a recommender replica and a worker are each killed while
  orders continue: every order is confirmed, every consumer applies every
  event once, no dead letter, and pages keep their recommendations;
- the images hold what runs and nothing else.
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

from tests.deploy.compose import COMPOSE_FILE, compose_binary
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
    place_order,
    python_command,
    start_promotion,
    waited,
)
from tests.processes import free_port
from tests.shopper import Shopper

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

OVERRIDE = Path(__file__).with_name("compose.test.yml")
TAG = "local"
APP_IMAGES = {"app": f"bookstore/app:{TAG}"}
SERVICE_IMAGES = {
    name: f"bookstore/{name}:{TAG}" for name in ("rabbitmq", "postgres", "redis", "haproxy")
}


# --- the deployment ------------------------------------------------------------


@dataclass
class Deployment:
    project: str
    env_file: Path
    site: str
    mailbox: Mailbox
    log: list[str] = field(default_factory=list)

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        command = [
            str(compose_binary()),
            *("-p", self.project, "-f", str(COMPOSE_FILE), "-f", str(OVERRIDE)),
            *("--env-file", str(self.env_file), *args),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode:
            pytest.fail(f"docker compose {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def exec(self, service: str, *command: str) -> str:
        return self.compose("exec", "-T", service, *command, timeout=60)

    def python(self, service: str, code: str) -> Any:
        """Runs code in a service's container; returns what it prints as JSON."""
        return json.loads(self.exec(service, *python_command(service, code)).splitlines()[-1])

    def container(self, service: str, index: int = 1) -> str:
        return f"{self.project}-{service}-{index}"

    def crash(self, service: str, index: int = 1) -> None:
        """SIGKILL the container's first process from the host: a crash, which
        its restart policy answers (`docker kill` would count as a stop)."""
        pid = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Pid}}", self.container(service, index)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        os.kill(int(pid), 9)
        self.log.append(f"{time.strftime('%H:%M:%S')} killed {service}-{index}")

    def wait_healthy(self, service: str, index: int = 1, timeout: float = 180) -> None:
        name = self.container(service, index)
        waited(lambda: inspect_health(name) == "healthy", timeout, f"{name} to be healthy again")


def inspect_health(container: str) -> str:
    shown = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Health.Status}}", container],
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout.strip()


@pytest.fixture(scope="module")
def deployment(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="0.0.0.0", port=smtp_port)
    smtp.start()
    site_port = free_port()
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    env_file.write_text(
        "\n".join(
            f"{name}={value}"
            for name, value in {
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
                "RABBITMQ_PASSWORD": secrets.token_urlsafe(24),
                "RABBITMQ_ERLANG_COOKIE": secrets.token_urlsafe(32),
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "SITE_URL": f"http://127.0.0.1:{site_port}",
                "DJANGO_SECURE_SSL_REDIRECT": "false",
                "DJANGO_EMAIL_HOST": "host.docker.internal",
                "DJANGO_EMAIL_PORT": str(smtp_port),
                "DJANGO_EMAIL_USE_TLS": "false",
                "SITE_PORT": str(site_port),
                "RABBITMQ_PORT": str(free_port()),
                "RABBITMQ_MANAGEMENT_PORT": str(free_port()),
                "IMAGE_TAG": TAG,
            }.items()
        )
        + "\n"
    )
    deployment = Deployment(
        project=f"bookstore-test-{os.getpid()}",
        env_file=env_file,
        site=f"http://127.0.0.1:{site_port}",
        mailbox=mailbox,
    )
    try:
        started = time.monotonic()
        deployment.compose("up", "--detach", "--wait", "--wait-timeout", "420", timeout=480)
        deployment.log.append(f"every service healthy after {time.monotonic() - started:.0f} s")
        start_promotion(deployment)
        yield deployment
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "compose-up.log").write_text(
            "\n".join(deployment.log)
            + "\n\n"
            + deployment.compose("logs", "--no-color", "--timestamps", check=False, timeout=120)
        )
        # Nothing is kept: killed, not stopped in each service's grace time.
        deployment.compose("kill", check=False)
        deployment.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)
        smtp.stop()


def user_id(deployment: Deployment, shopper: Shopper) -> int:
    session = next(c.value for c in shopper.cookies if c.name == "sessionid")
    return deployment.python(
        "site",
        "import json; from django.contrib.sessions.backends.db import SessionStore;"
        f"print(json.dumps(int(SessionStore('{session}').load()['_auth_user_id'])))",
    )


RECOMMEND = """
import json, grpc
from bookstore.recommendations.v1 import recommendations_pb2 as pb, recommendations_pb2_grpc as rpc
with grpc.insecure_channel("127.0.0.1:50051") as channel:
    answer = rpc.RecommendationsStub(channel).Recommend(
        pb.RecommendationRequest(user_id={user}, category={category}, max_results=10), timeout=5)
print(json.dumps([[b.id, pb.RecommendationReason.Name(b.reason)] for b in answer.recommendations]))
"""


def bought_together(deployment: Deployment, replica: str, user: int, category: int) -> set[int]:
    answer = deployment.python(replica, RECOMMEND.format(user=user, category=category))
    return {book for book, reason in answer if reason == "BOUGHT_TOGETHER"}


# --- the tests ------------------------------------------------------------------


def test_the_rabbitmq_nodes_form_one_cluster_with_every_queue_on_all_three(deployment):
    status = json.loads(
        deployment.compose(
            "exec", "-T", "rabbitmq-2", "rabbitmqctl", "-q", "cluster_status", "--formatter", "json"
        )
    )
    assert sorted(status["running_nodes"]) == [f"rabbit@rabbitmq-{n}" for n in (1, 2, 3)]
    queues = json.loads(
        deployment.compose(
            "exec",
            "-T",
            "rabbitmq-1",
            "rabbitmqctl",
            "-q",
            "list_queues",
            "name",
            "type",
            "members",
            "--formatter",
            "json",
        )
    )
    durable = [q for q in queues if not re.search(r"pidbox|celeryev", q["name"])]
    names = {q["name"] for q in durable}
    assert {
        "bookstore.celery.tasks",
        "bookstore.worker.emails",
        "bookstore.worker.emails.dead",
        "bookstore.recommender.recommender-1",
        "bookstore.recommender.recommender-2",
    } <= names
    # The history a new recommender replica reads is a stream, on all three too.
    assert {q["type"] for q in durable if q["name"] == "bookstore.history"} == {"stream"}
    for queue in durable:
        assert queue["type"] == ("stream" if queue["name"].endswith(".history") else "quorum"), (
            queue
        )
        assert len(queue["members"]) == 3, queue


def test_an_order_with_the_promotion_is_mailed_and_learned_by_both_replicas(deployment):
    first, second = customer(deployment, "ada"), customer(deployment, "bo")
    a, b, c = books_in(deployment, FANTASY, 3)
    order = place_order(first, [a, b, c])
    page = first.request(f"/orders/{order}/").read().decode()
    assert "Buy 2, get a 3rd free" in page  # the promotion applied to this order
    place_order(second, [a])
    waited(lambda: deployment.mailbox.confirmations()[order] == 1, 60, "the confirmation")

    second_id = user_id(deployment, second)
    for replica in ("recommender-1", "recommender-2"):
        waited(
            lambda r=replica: {b, c} <= bought_together(deployment, r, second_id, FANTASY),
            60,
            f"{replica} to learn what was bought with book {a}",
        )


def test_losing_a_node_a_recommender_and_a_worker_loses_no_order(deployment):
    shoppers = [customer(deployment, f"load{n}") for n in range(3)]
    books = books_in(deployment, FANTASY, 40)
    load = Load(shoppers, books)
    load.start()
    try:
        time.sleep(3)
        deployment.crash("rabbitmq-1")
        time.sleep(10)
        deployment.wait_healthy("rabbitmq-1")
        recommender_killed = time.monotonic()
        deployment.crash("recommender-1")
        time.sleep(12)
        deployment.crash("worker", 1)
        time.sleep(8)
    finally:
        load.stop()

    orders = load.orders
    assert not load.failures, load.failures[:5]
    assert len(orders) >= 10, f"only {len(orders)} orders placed in a minute"
    assert all(status == 200 for _, status, _ in load.pages), Counter(s for _, s, _ in load.pages)
    # The other replica answers while the killed one is down: pages go back
    # to the recommender's answers within seconds, not the breaker's 30 s.
    after = [source for at, _, source in load.pages if at > recommender_killed + 10]
    assert after, "no page after the recommender was killed"
    assert set(after) == {"recommender"}, Counter(after)

    waited(
        lambda: set(orders) <= set(deployment.mailbox.confirmations()), 120, "every confirmation"
    )
    assert_every_event_applied_once(deployment)
    assert_no_dead_letters(deployment, "rabbitmq-2")
    # The killed replica, restarted by its policy, takes up its queue where it
    # left it: both learn every order once (two lines each).
    everything = {"orders": len(orders), "lines": 2 * len(orders)}
    for replica in ("recommender-1", "recommender-2"):
        waited(
            lambda r=replica: learned(deployment, r, orders) == everything,
            120,
            f"{replica} to learn every order",
        )


def in_image(image: str, script: str) -> list[str]:
    shown = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout.split()


def test_the_images_hold_what_runs_and_nothing_else(engine):
    app = APP_IMAGES["app"]
    assert in_image(app, "id -u") == ["10001"]  # not root
    assert {"marketplace_site", "recommender", "events", "protos", "data"} <= set(
        in_image(app, "ls -A /app")
    )
    # Nothing of the repository that is not run: no history, tests, local
    # settings, keys or certificates (the virtualenv's own test data aside).
    leftovers = in_image(
        app,
        "find /app \\( -name .git -o -name tests -o -name bench -o -name '.env*'"
        " -o -name '*.pem' -o -name '*.key' -o -name '*.sqlite3' -o -name .venv \\) -print",
    )
    assert leftovers == []
    for image in [app, *SERVICE_IMAGES.values()]:
        extra_ca = in_image(image, "ls -A /usr/local/share/ca-certificates")
        assert extra_ca == [], f"{image} holds the build's CA certificates: {extra_ca}"
