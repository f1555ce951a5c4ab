"""The standard OTEL_* variables decide where a process's spans go and what it
is called in a trace, whatever the process's own default name."""

from __future__ import annotations

import pytest

from events.environment import ConfigError
from events.tracing import TracingEnv, service_resource


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
