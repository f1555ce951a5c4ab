"""The standard OTEL_* variables decide where a process's spans go, what it
is called in a trace, whatever the process's own default name, and whether
it traces at all."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from events.environment import ConfigError
from events.tracing import TracingEnv, service_resource
from tests.processes import REPO_ROOT, child_env


def test_OTEL_SERVICE_NAME_names_the_process_in_its_traces():
    env = TracingEnv.from_env({"OTEL_SERVICE_NAME": "recommender-eu-1"})
    assert service_resource("recommender", env).attributes["service.name"] == "recommender-eu-1"


def test_without_OTEL_SERVICE_NAME_each_process_has_its_own_name():
    env = TracingEnv.from_env({"OTEL_SERVICE_NAME": " "})
    assert service_resource("relay", env).attributes["service.name"] == "relay"


def test_an_exporter_the_shop_does_not_have_is_refused_naming_the_variable():
    refused = "OTEL_TRACES_EXPORTER must be one of none, otlp, console"
    with pytest.raises(ConfigError, match=refused):
        TracingEnv.from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


@pytest.mark.parametrize(("value", "disabled"), [("true", True), ("TRUE", True), ("false", False)])
def test_OTEL_SDK_DISABLED_reads_as_OpenTelemetry_reads_it(value, disabled):
    assert TracingEnv.from_env({"OTEL_SDK_DISABLED": value}).otel_sdk_disabled is disabled
    assert TracingEnv.from_env({}).otel_sdk_disabled is False


@pytest.mark.parametrize("value", ["1", "yes", "on"])
def test_an_OTEL_SDK_DISABLED_the_SDK_would_read_as_false_is_refused(value):
    # The SDK itself reads only "true" as true: 1 would leave it on while the
    # shop's own tracing were off.
    with pytest.raises(ConfigError, match=f"OTEL_SDK_DISABLED must be true or false.*'{value}'"):
        TracingEnv.from_env({"OTEL_SDK_DISABLED": value})


# What gunicorn loads (the relay and the workers start alike), then what is traced.
SITE_PROBE = """
import json
import marketplace_site.wsgi
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
libraries = (
    DjangoInstrumentor, GrpcInstrumentorClient, PsycopgInstrumentor, SQLite3Instrumentor,
    CeleryInstrumentor,
)
print(json.dumps({
    "provider": type(trace.get_tracer_provider()).__name__,
    "instrumented": [c.__name__ for c in libraries if c().is_instrumented_by_opentelemetry],
}))
"""


@pytest.mark.parametrize(
    ("env", "provider", "instrumented"),
    [
        # Off: requests and calls carry their trace on; statements and tasks not traced.
        ({}, "TracerProvider", ["DjangoInstrumentor", "GrpcInstrumentorClient"]),
        ({"OTEL_SDK_DISABLED": "true"}, "ProxyTracerProvider", []),
    ],
)
def test_with_OTEL_SDK_DISABLED_a_site_process_sets_up_and_instruments_nothing(
    env, provider, instrumented
):
    done = subprocess.run(
        [sys.executable, "-c", SITE_PROBE],
        env=child_env(OTEL_TRACES_EXPORTER="none", **env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"provider": provider, "instrumented": instrumented}
