"""Prometheus metrics of the site: request latency, recommender calls, breaker state.

Served at /metrics to METRICS_ALLOWED_NETWORKS only (the host itself by
default), never through a proxy: to anyone else it does not exist. Under
gunicorn each worker is a process of its own: set PROMETHEUS_MULTIPROC_DIR
(prometheus-client's multiprocess mode) and /metrics aggregates every
worker's figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from ipaddress import ip_address

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

REQUEST_LATENCY = Histogram(
    "marketplace_request_seconds",
    "Time to answer an HTTP request, by view and status class.",
    ["view", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RECOMMENDER_CALLS = Counter(
    "marketplace_recommender_calls",
    "Calls to the recommender by outcome (ok, or why the fallback was shown).",
    ["outcome"],
)
BREAKER_OPEN = Gauge(
    "marketplace_recommender_breaker_open",
    "1 while the circuit breaker to the recommender is open (or half-open), else 0.",
    multiprocess_mode="max",
)


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # The route name, never the raw path: ids in paths would explode the label set.
        view = (match.view_name if match else "") or "unmatched"
        REQUEST_LATENCY.labels(view=view, status=f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        return response


# Headers a proxy adds: such a request is a visitor's, whatever address it comes from.
PROXY_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_FORWARDED",
    "HTTP_X_REAL_IP",
)


def metrics_allowed(request: HttpRequest) -> bool:
    if any(header in request.META for header in PROXY_HEADERS):
        return False
    try:
        client = ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(client in network for network in settings.METRICS_ALLOWED_NETWORKS)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        raise Http404
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = DEFAULT_REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
