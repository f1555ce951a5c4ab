"""Settings: the production checklist passes, and bad configuration is refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from events.environment import ConfigError
from marketplace_site.env import SiteEnv
from recommender.config import REPO_ROOT

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "marketplace_site.settings.production",
    "DJANGO_SECRET_KEY": "k" * 20 + "a-long-random-production-secret-for-the-check-only",
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    # Production refuses RabbitMQ's guest account (tests/marketplace/test_secure_links.py).
    "AMQP_URL": "amqp://bookstore:not-the-guest-password@rabbitmq:5672/bookstore",
}


def manage(
    *args: str, env: dict[str, str], unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """manage.py in a process of its own: this environment, with ``env``, without ``unset``."""
    inherited = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "marketplace_site" / "manage.py"), *args],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_the_deployment_checklist():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_serves_metrics_only_to_the_host_itself():
    asked = (
        "from django.test import Client\n"
        "for remote_addr in ('127.0.0.1', '203.0.113.7', '172.17.0.1'):\n"
        "    response = Client().get('/metrics', REMOTE_ADDR=remote_addr, secure=True,"
        " headers={'Host': 'shop.example.com'})\n"
        "    print(remote_addr, response.status_code)\n"
    )
    result = manage("shell", "-c", asked, env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-3:] == [
        "127.0.0.1 200",
        "203.0.113.7 404",
        "172.17.0.1 404",
    ], result.stdout + result.stderr


def test_an_allowed_network_that_is_not_one_is_refused():
    result = manage(
        "check", env={**PRODUCTION_ENV, "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,prometheus"}
    )
    assert result.returncode != 0
    assert "METRICS_ALLOWED_NETWORKS must be IP addresses or networks, got 'prometheus'" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"DJANGO_SECRET_KEY": ""}, "set the environment variable DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY must be a random string"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "set DJANGO_ALLOWED_HOSTS"),
        # Every event carries it, and every consumer parks one with another.
        ({"SHOP_CURRENCY": "usd"}, "SHOP_CURRENCY must be a three-letter code like USD"),
    ],
)
def test_production_refuses_to_start_without_its_secrets(override, message):
    result = manage("check", env={**PRODUCTION_ENV, **override})
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("DATABASE_POOL_SIZE", "DATABASE_POOL_SIZE must be a whole number, got 'many'"),
        ("RECOMMENDER_TIMEOUT", "RECOMMENDER_TIMEOUT must be a number, got 'many'"),
        ("RECOMMENDATIONS_ENABLED", "RECOMMENDATIONS_ENABLED must be true or false"),
    ],
)
def test_typed_reader_names_the_variable_and_the_bad_value(variable, message):
    with pytest.raises(ConfigError, match=message):
        SiteEnv.from_env({variable: "many"})


def test_typed_reader_reads_values_and_defaults():
    env = SiteEnv.from_env(
        {
            "DATABASE_POOL_SIZE": " 7 ",
            "RECOMMENDATIONS_ENABLED": "no",
            "DJANGO_ALLOWED_HOSTS": "a, b,,c",
        }
    )
    assert env.database_pool_size == 7
    assert env.recommendations_enabled is False
    assert env.django_allowed_hosts == ["a", "b", "c"]
    assert env.low_stock_threshold == 3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"DATABASE_POOL_SIZE": "0"}, "DATABASE_POOL_SIZE must be a whole number >= 1, got '0'"),
        (
            {"DATABASE_URL": "postgres://shop@db/shop?connect_timeout=soon"},
            "DATABASE_URL: connect_timeout must be a number of seconds, got 'soon'",
        ),
    ],
)
def test_a_bad_postgresql_pool_setting_is_refused_by_name(override, message):
    env = {"DATABASE_URL": "postgres://shop@db/shop", **override}
    result = manage(
        "check", env={"DJANGO_SETTINGS_MODULE": "marketplace_site.settings.local", **env}
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_a_history_stream_without_room_is_refused_by_name():
    result = manage(
        "check",
        env={
            "DJANGO_SETTINGS_MODULE": "marketplace_site.settings.local",
            "EVENTS_HISTORY_MAX_BYTES": "0",
        },
    )
    assert result.returncode != 0
    assert "EVENTS_HISTORY_MAX_BYTES must be a whole number >= 1, got '0'" in result.stderr


@pytest.mark.parametrize(
    ("debug", "page"),
    [
        # `make run` as it comes: a customer's 404 is the shop's own page.
        (None, "We could not find that page"),
        # A developer who asks for it gets Django's debug page.
        ("true", "Using the URLconf defined in"),
    ],
)
def test_the_local_run_shows_the_shops_own_pages_unless_debug_is_asked_for(tmp_path, debug, page):
    env = {
        "DJANGO_SETTINGS_MODULE": "marketplace_site.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **({"DJANGO_DEBUG": debug} if debug else {}),
    }
    asked = (
        "from django.test import Client\n"
        "response = Client().get('/no-such-page/', headers={'Host': '127.0.0.1'})\n"
        "print('status', response.status_code, response.content.decode())\n"
    )
    result = manage("shell", "-c", asked, env=env, unset=("DJANGO_DEBUG",))
    assert result.returncode == 0, result.stderr
    assert "status 404 " in result.stdout
    assert page in result.stdout
