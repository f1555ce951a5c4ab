"""The site against the real recommender over mutual TLS and with the shared
token; the production settings' broker rules; no password or token in a log.

What a customer relies on: recommendations over the secured link, and best
sellers (never an error) when the site's credentials are missing or wrong.
What an operator relies on: one set of settings (RECOMMENDER_TLS_*,
RECOMMENDER_AUTH_TOKEN) secures pages, the weekly digest and /readyz alike;
production refuses RabbitMQ's guest account; logs never show a password.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from events.environment import ConfigError
from events.log_format import log_formatter, redact_url
from events.relay import Relay
from events.topology import Topology
from events.tracing import TraceIdFilter
from marketplace_site.env import SiteEnv
from marketplace_site.notifications.recommender_stream import BatchRequest
from marketplace_site.notifications.services import recommender_stream
from marketplace_site.recommendations.client import RecommenderUnavailable
from marketplace_site.recommendations.selectors import reset_recommender_client
from recommender.config import ServerTls
from recommender.engine import Book as IndexedBook
from recommender.engine import Category, Purchase, RecommendationIndex
from recommender.server import start_server
from scripts.dev_certs import DevCerts
from tests.events.broker import AMQP_URL, delete_topology
from tests.grpc_server import ServerThread
from tests.marketplace.test_recommendations import MYSTERY, Counted, recommendations_on
from tests.marketplace.test_settings import PRODUCTION_ENV, manage

TOKEN = "site-to-recommender-token-0123456789"
SELECTORS_LOGGER = "marketplace_site.recommendations.selectors"


@pytest.fixture
def shelf(make_book) -> tuple[list, RecommendationIndex]:
    """Three mystery books in the shop and in the recommender's index, ranked c, a, b."""
    books = [make_book(title=t) for t in ("Alpha", "Bravo", "Charlie")]
    a, b, c = books
    index = RecommendationIndex.build(
        [IndexedBook(x.pk, x.title, x.author, Category.MYSTERY) for x in books],
        [Purchase(1, 900, c.pk, quantity=3), Purchase(2, 901, a.pk, quantity=2)],
    )
    return [c, a, b], index


Start = Callable[..., str]


@pytest.fixture
def recommender(certs, shelf) -> Iterator[Start]:
    """Starts the real recommender over ``shelf`` with mutual TLS (and a token if given)."""
    thread = ServerThread()
    started = []

    def start(*, auth_token: str = "") -> str:
        tls = ServerTls(cert=certs.server_cert, key=certs.server_key, client_ca=certs.ca)
        running = thread.run(
            start_server(listen="127.0.0.1:0", index=shelf[1], tls=tls, auth_token=auth_token)
        )
        started.append(running)
        return f"127.0.0.1:{running.port}"

    yield start
    for running in started:
        thread.run(running.server.stop(None))
    thread.close()


def point_site_at(
    settings,
    target: str,
    *,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    server_name: str = "",
    token: str = "",
) -> None:
    settings.RECOMMENDER_TARGET = target
    settings.RECOMMENDER_TLS_CA = ca
    settings.RECOMMENDER_TLS_CLIENT_CERT = cert
    settings.RECOMMENDER_TLS_CLIENT_KEY = key
    settings.RECOMMENDER_TLS_SERVER_NAME = server_name
    settings.RECOMMENDER_AUTH_TOKEN = token
    reset_recommender_client()


def with_site_certificate(settings, target: str, certs: DevCerts, **extra) -> None:
    point_site_at(
        settings, target, ca=certs.ca, cert=certs.client_cert, key=certs.client_key, **extra
    )


def warnings_logged(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == SELECTORS_LOGGER and r.levelno == logging.WARNING
    ]


# --- the site over mutual TLS ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("server_name", ["", "recommender"])
def test_pages_show_recommendations_over_mutual_tls(
    client, settings, certs, shelf, recommender, server_name
):
    # "recommender": the DNS name compose gives every replica, as the certificate carries it.
    with_site_certificate(settings, recommender(), certs, server_name=server_name)
    counted = Counted()

    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [b.pk for b in shelf[0]])
    assert counted["ok"] == 1


@pytest.mark.django_db
def test_readyz_checks_the_recommender_with_the_same_credentials(
    client, settings, certs, recommender
):
    target = recommender()
    with_site_certificate(settings, target, certs)
    assert client.get("/readyz").json()["checks"]["recommender"]["state"] == "up"

    point_site_at(settings, target, ca=certs.ca)  # no client certificate
    body = client.get("/readyz").json()
    assert body["checks"]["recommender"]["state"] == "down"
    assert body["status"] == "degraded"


@pytest.mark.django_db
@pytest.mark.parametrize("site", ["no client certificate", "another CA's certificate", "plaintext"])
def test_without_a_valid_certificate_the_site_is_refused_and_shows_best_sellers(
    client, settings, certs, other_ca, shelf, recommender, caplog, site
):
    target = recommender()
    if site == "no client certificate":
        point_site_at(settings, target, ca=certs.ca)
    elif site == "another CA's certificate":
        point_site_at(
            settings, target, ca=certs.ca, cert=other_ca.client_cert, key=other_ca.client_key
        )
    else:
        point_site_at(settings, target)
    counted = Counted()

    response = client.get(MYSTERY)

    source, ids = recommendations_on(response)
    assert source == "best-sellers"
    assert sorted(ids) == sorted(b.pk for b in shelf[0])
    assert "unavailable" not in response.content.decode().lower()
    assert counted["ok"] == 0
    assert counted["unavailable"] == 1
    [warning] = warnings_logged(caplog)
    assert "showing best sellers" in warning


@pytest.mark.django_db
def test_a_site_that_cannot_verify_the_recommender_refuses_it(
    client, settings, certs, other_ca, recommender
):
    target = recommender()
    # A valid client identity, but it trusts another CA: the server is not believed.
    point_site_at(settings, target, ca=other_ca.ca, cert=certs.client_cert, key=certs.client_key)
    assert recommendations_on(client.get(MYSTERY))[0] == "best-sellers"
    # ...and a name the certificate does not carry.
    with_site_certificate(settings, target, certs, server_name="elsewhere.example.com")
    assert recommendations_on(client.get(MYSTERY))[0] == "best-sellers"


# --- the shared token --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_site_sends_the_token_and_without_it_gets_best_sellers(
    client, settings, certs, shelf, recommender, caplog
):
    caplog.set_level(logging.DEBUG)
    target = recommender(auth_token=TOKEN)

    with_site_certificate(settings, target, certs, token=TOKEN)
    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [b.pk for b in shelf[0]])
    assert client.get("/readyz").json()["checks"]["recommender"]["state"] == "up"

    for token in ("", "not-the-right-token-at-all"):
        with_site_certificate(settings, target, certs, token=token)
        caplog.clear()
        response = client.get(MYSTERY)
        assert recommendations_on(response)[0] == "best-sellers"
        [warning] = warnings_logged(caplog)
        assert "unauthenticated" in warning
        assert "credentials" in warning  # the recommender's reason

    assert TOKEN not in caplog.text
    assert TOKEN not in "".join(repr(r.args) for r in caplog.records)
    assert TOKEN not in repr(recommender_stream().security)


@pytest.mark.django_db
def test_the_digest_stream_uses_the_same_credentials(settings, certs, shelf, recommender):
    target = recommender(auth_token=TOKEN)
    requests = [BatchRequest(user_id=0, category=Category.MYSTERY, max_results=2)] * 2

    with_site_certificate(settings, target, certs, token=TOKEN)
    expected = [b.pk for b in shelf[0][:2]]
    assert [[b.id for b in answer] for answer in recommender_stream().recommend_many(requests)] == [
        expected,
        expected,
    ]

    with_site_certificate(settings, target, certs)  # no token
    with pytest.raises(RecommenderUnavailable) as refused:
        recommender_stream().recommend_many(requests)
    assert refused.value.reason == "unauthenticated"

    point_site_at(settings, target, ca=certs.ca, token=TOKEN)  # no client certificate
    with pytest.raises(RecommenderUnavailable) as refused:
        recommender_stream().recommend_many(requests)
    assert refused.value.reason == "unavailable"


# --- settings ----------------------------------------------------------------------------------


def test_the_sites_reader_checks_certificate_files_at_start_up(tmp_path, certs):
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    assert SiteEnv.from_env({"RECOMMENDER_TLS_CA": str(certs.ca)}).recommender_tls_ca == certs.ca
    assert SiteEnv.from_env({}).recommender_tls_ca is None
    for value, message in [
        (str(tmp_path / "gone.pem"), r"RECOMMENDER_TLS_CA: cannot read .*gone\.pem"),
        (str(tmp_path), "RECOMMENDER_TLS_CA: cannot read"),
        (str(not_pem), r"RECOMMENDER_TLS_CA: .*ca\.txt is not a PEM file"),
    ]:
        with pytest.raises(ConfigError, match=message):
            SiteEnv.from_env({"RECOMMENDER_TLS_CA": value})


def tls_production_env(certs: DevCerts, **extra: str) -> dict[str, str]:
    return {
        **PRODUCTION_ENV,
        "RECOMMENDER_TLS_CA": str(certs.ca),
        "RECOMMENDER_TLS_CLIENT_CERT": str(certs.client_cert),
        "RECOMMENDER_TLS_CLIENT_KEY": str(certs.client_key),
        "RECOMMENDER_TLS_SERVER_NAME": "recommender",
        "RECOMMENDER_AUTH_TOKEN": TOKEN,
        **extra,
    }


def test_production_with_secure_links_passes_the_deployment_checklist(certs):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=tls_production_env(certs))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"AMQP_URL": ""}, "set the environment variable AMQP_URL"),
        (
            {"AMQP_URL": "amqp://guest:guest@rabbitmq:5672/"},
            "AMQP_URL must not use RabbitMQ's guest account in production",
        ),
        # No user at all: the client libraries log in as guest.
        ({"AMQP_URL": "amqp://rabbitmq:5672/"}, "must not use RabbitMQ's guest account"),
        # Any node of a cluster's list.
        (
            {"AMQP_URL": "amqp://shop:pw@rabbitmq-1/;amqp://guest:guest@rabbitmq-2/"},
            "must not use RabbitMQ's guest account",
        ),
        (
            {"AMQP_URL": "amqp://shop:pw@rabbitmq-1/;rabbitmq-2"},
            "AMQP_URL entry 'rabbitmq-2' is not a broker URL",
        ),
        ({"RECOMMENDER_TLS_CA": "/nonexistent/ca.pem"}, "RECOMMENDER_TLS_CA: cannot read"),
        (
            {"RECOMMENDER_TLS_CLIENT_KEY": ""},
            "set both RECOMMENDER_TLS_CLIENT_CERT and RECOMMENDER_TLS_CLIENT_KEY",
        ),
        (
            {"RECOMMENDER_AUTH_TOKEN": "two halves of a token"},
            "RECOMMENDER_AUTH_TOKEN must not contain spaces",
        ),
    ],
)
def test_production_refuses_the_guest_broker_account_and_unusable_tls_files(
    certs, override, message
):
    result = manage("check", env=tls_production_env(certs, **override))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    # The refusal names the problem, never the secret.
    assert "guest:guest" not in result.stderr
    assert TOKEN not in result.stdout + result.stderr


# --- no password in a log --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (
            "amqp://bookstore:s3cret@rabbitmq:5672/bookstore",
            "amqp://bookstore:***@rabbitmq:5672/bookstore",
        ),
        ("amqps://u:p%40ss:w0rd@[::1]:5671/", "amqps://u:***@[::1]:5671/"),
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        # Nothing to hide.
        ("amqp://rabbitmq:5672/", "amqp://rabbitmq:5672/"),
        ("amqp://bookstore@rabbitmq/", "amqp://bookstore@rabbitmq/"),
        ("http://127.0.0.1:8000/books/1/", "http://127.0.0.1:8000/books/1/"),
        (
            "from postgres://shop:pw1@db/x to amqp://a:pw2@mq//",
            "from postgres://shop:***@db/x to amqp://a:***@mq//",
        ),
    ],
)
def test_redact_url_hides_every_password_and_keeps_the_rest(text, redacted):
    assert redact_url(text) == redacted


@pytest.mark.parametrize("kind", ["plain", "json"])
def test_log_lines_never_carry_a_url_password(kind):
    try:
        raise ConnectionError("cannot reach amqp://bookstore:hunter2-pass@rabbitmq:5672/")
    except ConnectionError:
        record = logging.LogRecord(
            "shop",
            logging.WARNING,
            __file__,
            1,
            "broker %s down",
            ("amqp://bookstore:hunter2-pass@rabbitmq:5672/",),
            sys.exc_info(),
        )
    TraceIdFilter().filter(record)
    line = log_formatter(kind).format(record)
    assert "hunter2-pass" not in line
    # In the message, and in the traceback (its source line and its exception).
    assert line.count("amqp://bookstore:***@rabbitmq:5672/") >= 2
    if kind == "json":
        assert json.loads(line)["message"] == "broker amqp://bookstore:***@rabbitmq:5672/ down"


def test_the_relay_names_its_broker_without_the_password(caplog):
    caplog.set_level(logging.INFO, logger="events.relay")
    topology = Topology(namespace=f"test-{uuid.uuid4().hex[:10]}")
    # Connecting is all this needs: no outbox, nothing published.
    relay = Relay(source_factory=lambda: None, amqp_url=AMQP_URL, topology=topology)

    async def connect() -> None:
        await relay._ensure_connected()
        await relay.close()

    try:
        asyncio.run(connect())
    finally:
        delete_topology(topology)
    [line] = [r.getMessage() for r in caplog.records if "relay connected" in r.getMessage()]
    assert redact_url(AMQP_URL) in line
    password = AMQP_URL.split("@")[0].rsplit(":", 1)[1]
    assert f":{password}@" not in line
