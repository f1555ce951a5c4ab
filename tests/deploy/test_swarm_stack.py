"""deploy/swarm/stack.yml, read offline and kept in step with compose.

No Docker: the stack file is read as `docker stack deploy` reads it (YAML
with its anchors and merge keys, then ${VARIABLE} interpolation from the
environment), and compared with compose/docker-compose.yml as Compose v2
resolves it (tests/test_compose.py). tests/deploy/test_swarm.py deploys it
for real.
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.compose import REPO_ROOT
from tests.test_compose import SECRET_NAME, example_config, looks_like_a_secret

SWARM_DIR = REPO_ROOT / "deploy" / "swarm"
STACK_FILE = SWARM_DIR / "stack.yml"
# What `docker stack deploy` needs from the shell (deploy/swarm/stack.env.example).
REQUIRED = {
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "SITE_URL": "https://shop.example.com",
    "DJANGO_EMAIL_HOST": "smtp.example.com",
}
# Compose services and the stack service that runs each.
COUNTERPARTS = {
    "recommender-1": "recommender",
    "recommender-2": "recommender",
}
# The stack's own: the front door that balances the site's tasks.
STACK_ONLY = {"proxy"}
# Compose variables the stack leaves out, and why: TLS between the site and
# the recommenders is optional (certificate files); on a swarm, give them
# as secrets and set these to /run/secrets/... (README). The token is set.
LEFT_OUT = {
    "RECOMMENDER_TLS_CA",
    "RECOMMENDER_TLS_CLIENT_CERT",
    "RECOMMENDER_TLS_CLIENT_KEY",
    "RECOMMENDER_TLS_SERVER_NAME",
    "RECOMMENDER_TLS_CERT",
    "RECOMMENDER_TLS_KEY",
    "RECOMMENDER_TLS_CLIENT_CA",
}
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")
# Replaced one task at a time, the new one first, where two may run at once.
START_FIRST = {"site", "relay", "worker"}
# What must never run twice at once: a slot's queue and store, one beat, a node.
STOP_FIRST = {
    "recommender",
    "beat",
    "postgres",
    "redis",
    "rabbitmq-1",
    "rabbitmq-2",
    "rabbitmq-3",
    "proxy",
}
# The replica counts (one host's compose has the same for its services).
REPLICAS = {"site": 2, "recommender": 2, "worker": 2, "relay": 2, "beat": 1}


def interpolate(value: Any, environ: dict[str, str]) -> Any:
    """${...} as docker stack deploy fills it in ($$ is a $)."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if not isinstance(value, str):
        return value

    def fill(match: re.Match[str]) -> str:
        name, kind, text = match.groups()
        given = environ.get(name)
        if kind in (":-", "-"):
            return given if given or (kind == "-" and given is not None) else text
        if kind in (":?", "?") and not given:
            raise AssertionError(f"{name} is required: {text}")
        return given or ""

    return VARIABLE.sub(fill, value.replace("$$", "\0")).replace("\0", "$")


@functools.cache
def stack() -> dict[str, Any]:
    return interpolate(yaml.safe_load(STACK_FILE.read_text()), REQUIRED)


def stack_services() -> dict[str, dict[str, Any]]:
    return stack()["services"]


def compose_services() -> dict[str, dict[str, Any]]:
    return example_config()["services"]


def counterpart(compose_service: str) -> dict[str, Any]:
    return stack_services()[COUNTERPARTS.get(compose_service, compose_service)]


def variables(service: dict[str, Any]) -> set[str]:
    """The variables a process reads: X for an X_FILE, as the settings do."""
    return {name.removesuffix("_FILE") for name in service.get("environment") or {}}


# The command a backing service's image runs when compose gives none.
IMAGE_COMMANDS = {"bookstore/rabbitmq": ["rabbitmq-server"]}


def command(service: str, config: dict[str, Any]) -> list[str] | None:
    """The process a service runs: after its waits, the one its shell execs."""
    run = config.get("command")
    if run and run[:2] in (["sh", "-ec"], ["bash", "-ec"]) and "\nexec " in f"\n{run[2]}":
        return shlex.split(run[2].rsplit("exec ", 1)[1])
    return run or IMAGE_COMMANDS.get(config["image"].rsplit(":", 1)[0])


def test_every_compose_service_has_a_place_in_the_stack():
    placed = {COUNTERPARTS.get(s, s) for s in compose_services()}
    assert placed | STACK_ONLY == set(stack_services())


def test_the_same_images_commands_and_health_checks_as_compose():
    for name, config in compose_services().items():
        service = counterpart(name)
        assert service["image"].rsplit(":", 1)[0] == config["image"].rsplit(":", 1)[0], name
        assert command(name, service) == command(name, config), name
        if "healthcheck" in config:
            # compose config leaves a $$ as written; the stack's is read as a $.
            test = [part.replace("$$", "$") for part in config["healthcheck"]["test"]]
            assert service["healthcheck"]["test"] == test, name


def test_the_same_variables_per_process_as_compose():
    for name, config in compose_services().items():
        expected = set(config.get("environment") or {}) - LEFT_OUT
        # A RabbitMQ node or PostgreSQL reads its password from the file the
        # variable names (their images' entrypoints): the variable's own name.
        assert variables(counterpart(name)) == expected, name


def test_every_password_key_and_cookie_is_a_secret_file():
    declared = stack()["secrets"]
    assert all(secret == {"external": True} for secret in declared.values()), declared
    for name, service in stack_services().items():
        given = {s if isinstance(s, str) else s["source"] for s in service.get("secrets") or ()}
        for variable, value in (service.get("environment") or {}).items():
            assert not looks_like_a_secret(str(value)), (name, variable)
            assert "://" not in str(value) or "@" not in str(value), (name, variable)
            if (
                SECRET_NAME.search(variable.removesuffix("_FILE"))
                and variable != "DJANGO_EMAIL_HOST_USER"
            ):
                assert variable.endswith("_FILE"), (name, variable)
                folder, _, secret = str(value).rpartition("/")
                assert folder == "/run/secrets", (name, variable)
                assert secret in given, f"{name} reads {secret} without being given it"
        for variable in ("DATABASE_URL", "AMQP_URL"):
            assert variable not in (service.get("environment") or {}), name
    # The nodes' cookie: the entrypoint reads /run/secrets/rabbitmq_cookie.
    for node in ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3"):
        assert "rabbitmq_cookie" in stack_services()[node]["secrets"]


def test_replicas_restarts_limits_and_health_gated_updates():
    for name, service in stack_services().items():
        deploy = service["deploy"]
        assert deploy["restart_policy"]["condition"] in ("any", "on-failure"), name
        if name == "migrate":  # one-shot: done once it exits 0
            assert deploy["restart_policy"]["condition"] == "on-failure"
            continue
        limits = deploy["resources"]["limits"]
        assert {"cpus", "memory"} <= set(limits), name
        assert "healthcheck" in service, name
        update = deploy["update_config"]
        assert update["order"] == ("start-first" if name in START_FIRST else "stop-first"), name
        assert name in START_FIRST | STOP_FIRST, name
        # A task that is not healthy in time rolls the update back.
        assert update["failure_action"] == "rollback", name
        assert update["parallelism"] == 1, name
    replicas = {name: stack_services()[name]["deploy"]["replicas"] for name in REPLICAS}
    assert replicas == REPLICAS
    compose = {n: (c.get("deploy") or {}).get("replicas", 1) for n, c in compose_services().items()}
    assert compose["worker"] == replicas["worker"]
    assert compose["beat"] == replicas["beat"]
    assert len([s for s in compose if COUNTERPARTS.get(s) == "recommender"]) == 2


def test_each_recommender_slot_keeps_its_name_queue_and_store():
    recommender = stack_services()["recommender"]
    slot = "{{.Task.Slot}}"
    assert recommender["hostname"] == f"recommender-{slot}"
    assert recommender["environment"]["RECOMMENDER_INSTANCE"] == f"recommender-{slot}"
    [store] = [v for v in recommender["volumes"] if v.endswith(":/app/var/recommender")]
    assert stack()["volumes"][store.split(":")[0]]["name"].endswith(f"-{slot}")
    # Its clients balance over every task's address: dnsrr, and the same target as compose.
    assert recommender["deploy"]["endpoint_mode"] == "dnsrr"
    site = stack_services()["site"]["environment"]
    assert (
        site["RECOMMENDER_TARGET"]
        == compose_services()["site"]["environment"]["RECOMMENDER_TARGET"]
    )


def test_the_rabbitmq_nodes_join_the_first_on_their_first_start():
    """Compose's start order, which Swarm has not: else each would be a cluster."""
    assert "command" not in stack_services()["rabbitmq-1"]
    for node in ("rabbitmq-2", "rabbitmq-3"):
        script = stack_services()[node]["command"][2]
        assert '$(ls -A "/var/lib/rabbitmq/mnesia/rabbit@$HOSTNAME"' in script
        assert "/dev/tcp/rabbitmq-1/5672" in script


def test_each_rabbitmq_node_keeps_its_name_data_and_configuration():
    for node in ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3"):
        service = stack_services()[node]
        # Erlang distribution: rabbit@<host name>, resolved to the task itself.
        assert service["hostname"] == node
        assert service["deploy"]["endpoint_mode"] == "dnsrr"
        assert service["deploy"]["replicas"] == 1
        assert service["deploy"]["placement"]["constraints"] == [
            f"node.labels.bookstore.{node} == true"
        ]
        assert service["volumes"] == [f"{node}-data:/var/lib/rabbitmq"]
        configs = {c["target"]: stack()["configs"][c["source"]]["file"] for c in service["configs"]}
        compose_mounts = {
            v["target"]: v["source"]
            for v in compose_services()[node]["volumes"]
            if v["type"] == "bind"
        }
        assert {t: (SWARM_DIR / f).resolve() for t, f in configs.items()} == {
            t: Path(s).resolve() for t, s in compose_mounts.items()
        }


def test_the_proxy_balances_the_sites_tasks_by_name_and_health():
    config = (SWARM_DIR / "haproxy.cfg").read_text()
    site = stack_services()["site"]
    [bind] = [a for a in site["command"] if a.startswith("--bind=")]
    port = bind.rsplit(":", 1)[1]
    # Every task of the site by DNS (dnsrr), each checked on /healthz.
    assert re.search(rf"^\s*server-template site- \d+ site:{port}\b", config, re.MULTILINE)
    assert site["deploy"]["endpoint_mode"] == "dnsrr"
    assert "uri /healthz" in config
    assert "retry-on conn-failure" in config
    # The node's port (host mode: no routing mesh) is HAProxy's.
    proxy = stack_services()["proxy"]
    [published] = proxy["ports"]
    assert published["mode"] == "host"
    assert re.search(rf"^\s*bind :{published['target']}$", config, re.MULTILINE)
    assert proxy["deploy"]["mode"] == "global"
    assert {c["target"] for c in proxy["configs"]} == {"/etc/haproxy/haproxy.cfg"}
