"""Health, readiness, metrics and correlation ids on the site."""

from __future__ import annotations

import logging
from ipaddress import ip_network

import pytest
from django.views.debug import get_exception_reporter_filter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from marketplace_site import health
from recommender.engine import RecommendationIndex
from recommender.server import start_server
from tests.grpc_server import ServerThread
from tests.tracing import SPANS

pytestmark = pytest.mark.django_db


@pytest.fixture
def recommender(settings):
    thread = ServerThread()
    running = thread.run(start_server(listen="127.0.0.1:0", index=RecommendationIndex()))
    settings.RECOMMENDER_TARGET = f"127.0.0.1:{running.port}"
    yield running
    thread.run(running.server.stop(None))
    thread.close()


def test_healthz_says_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency_up(client, recommender):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert {name: c["state"] for name, c in body["checks"].items()} == {
        "database": "up",
        "broker": "up",
        "recommender": "up",
    }


def test_readyz_stays_ready_but_degraded_without_the_recommender(client, settings):
    settings.RECOMMENDER_TARGET = "127.0.0.1:1"
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["recommender"]["state"] == "down"
    assert body["checks"]["recommender"]["error"]


def test_readyz_is_503_without_the_database(client, monkeypatch, caplog):
    def broken() -> None:
        raise ConnectionError("connection refused by db.internal:5432")

    monkeypatch.setitem(health.CHECKS, "database", (broken, True))
    response = client.get("/readyz")
    assert response.status_code == 503
    # The kind of failure for whoever asks; the details, host names, only in the log.
    assert response.json()["checks"]["database"] == {
        "state": "down",
        "error": "ConnectionError",
        "ms": response.json()["checks"]["database"]["ms"],
    }
    assert "db.internal" not in response.content.decode()
    assert "database is down: ConnectionError: connection refused by db.internal:5432" in (
        caplog.text
    )


def test_error_reports_hide_passwords_inside_urls(settings, rf):
    settings.AMQP_URL = "amqp://shop:s3cret@broker.internal:5672/"
    settings.CELERY_BROKER_URL = settings.AMQP_URL
    settings.SITE_URL = "https://books.example.com"
    request = rf.get("/")
    shown = get_exception_reporter_filter(request).get_safe_settings()
    assert "s3cret" not in shown["AMQP_URL"]
    assert "s3cret" not in shown["CELERY_BROKER_URL"]
    assert "broker.internal" in shown["AMQP_URL"]  # still says where it points
    assert shown["SITE_URL"] == "https://books.example.com"
    # What Django hid by name stays hidden.
    assert shown["SECRET_KEY"] != settings.SECRET_KEY


def test_metrics_count_requests_by_view_and_recommender_fallbacks(client, settings, customer):
    settings.RECOMMENDER_TARGET = "127.0.0.1:1"
    # A customer's page asks the recommender (a visitor's shows best sellers at once).
    client.force_login(customer)
    client.get("/")
    text = client.get("/metrics").content.decode()
    assert 'marketplace_request_seconds_count{status="2xx",view="home"}' in text
    assert 'marketplace_recommender_calls_total{outcome="unavailable"}' in text
    assert "marketplace_recommender_breaker_open" in text


@pytest.mark.parametrize(
    ("remote_addr", "headers"),
    [
        ("203.0.113.7", {}),  # anyone on the internet
        ("10.0.0.9", {}),  # a neighbour not on the list
        # Through a proxy on the same host: the address is loopback, the client is not.
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.7"}),
        ("127.0.0.1", {"X-Forwarded-Proto": "https"}),
        ("127.0.0.1", {"Forwarded": "for=203.0.113.7"}),
        ("::1", {"X-Real-IP": "203.0.113.7"}),
    ],
)
def test_metrics_are_not_served_to_other_hosts_or_through_a_proxy(client, remote_addr, headers):
    response = client.get("/metrics", REMOTE_ADDR=remote_addr, headers=headers)
    assert response.status_code == 404
    assert "marketplace_request_seconds" not in response.content.decode()


@pytest.mark.parametrize("remote_addr", ["127.0.0.1", "::1", "10.1.2.3"])
def test_metrics_are_served_to_the_allowed_networks(client, settings, remote_addr):
    settings.METRICS_ALLOWED_NETWORKS = [
        ip_network("127.0.0.0/8"),
        ip_network("::1/128"),
        ip_network("10.1.0.0/16"),  # a Prometheus in the cluster, say
    ]
    response = client.get("/metrics", REMOTE_ADDR=remote_addr)
    assert response.status_code == 200
    assert "marketplace_request_seconds" in response.content.decode()


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_request_continues_its_callers_trace_or_starts_one(client, settings, customer, caplog):
    """W3C traceparent in: the request's span and its log lines are in that trace."""
    caplog.set_level(logging.INFO)
    settings.RECOMMENDER_TARGET = "127.0.0.1:1"  # down: the page says so in the log
    client.force_login(customer)
    client.get("/", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
    [span] = [s for s in SPANS.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert format_trace_id(span.context.trace_id) == TRACE_ID
    assert format_span_id(span.parent.span_id) == "00f067aa0ba902b7"
    [line] = [r for r in caplog.records if "showing best sellers" in r.getMessage()]
    assert line.trace_id == TRACE_ID

    SPANS.clear()
    for hostile in ("bad id\nInjected: yes", f"00-{'0' * 32}-00f067aa0ba902b7-01"):
        client.get("/healthz", headers={"traceparent": hostile})
    started = [s for s in SPANS.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.parent for s in started] == [None, None]  # a trace of their own
    assert len({s.context.trace_id for s in started}) == 2
