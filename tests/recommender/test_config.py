"""Reading the recommender's settings from the environment."""

from __future__ import annotations

import socket

import pytest

from events.amqp import DEFAULT_AMQP_URL
from events.topology import Topology
from recommender.config import ConfigError, Settings


def test_events_are_consumed_by_default_on_a_queue_named_after_the_host():
    settings = Settings.from_env({})
    assert settings.consume_events
    assert settings.amqp_url == DEFAULT_AMQP_URL
    assert settings.instance == socket.gethostname()
    assert settings.topology == Topology()


def test_event_settings_come_from_the_environment():
    settings = Settings.from_env(
        {
            "RECOMMENDER_CONSUME_EVENTS": "off",
            "AMQP_URL": "amqp://u:p@broker:5672/shop",
            "RECOMMENDER_INSTANCE": " replica-2 ",
            "EVENTS_NAMESPACE": "staging",
            "EVENTS_DELIVERY_LIMIT": "7",
        }
    )
    assert not settings.consume_events
    assert settings.amqp_url == "amqp://u:p@broker:5672/shop"
    assert settings.topology == Topology(namespace="staging", delivery_limit=7)
    assert settings.topology.recommender_queue(settings.instance).name == (
        "staging.recommender.replica-2"
    )
    assert "u:p@" not in repr(settings)


def test_the_broker_may_be_a_cluster_of_nodes():
    nodes = "amqp://u:p@node-1:5672/shop; amqp://u:p@node-2:5672/shop"
    assert Settings.from_env({"AMQP_URL": nodes}).amqp_url == nodes


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"RECOMMENDER_CONSUME_EVENTS": "maybe"},
            "RECOMMENDER_CONSUME_EVENTS must be true or false",
        ),
        ({"EVENTS_DELIVERY_LIMIT": "0"}, "EVENTS_DELIVERY_LIMIT must be a whole number >= 1"),
        # A cluster's nodes, one of them mistyped: named, its password hidden.
        (
            {"AMQP_URL": "amqp://u:secret@node-1:5672/;amqp://u:secret@node-2:56x2/"},
            r"AMQP_URL entry 'amqp://u:\*\*\*@node-2:56x2/' is not a broker URL \(Port",
        ),
        ({"AMQP_URL": "amqp://u:p@node-1/;"}, r"AMQP_URL entry '' is not a broker URL \(empty"),
        ({"AMQP_URL": "http://node-1/"}, r"is not a broker URL \(scheme 'http'"),
    ],
)
def test_bad_event_settings_are_a_configuration_error(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # float() reads both; nan passes every comparison, and sleeping inf never ends.
        ({"RECOMMENDER_GRACE_SECONDS": "nan"}, "RECOMMENDER_GRACE_SECONDS must be a finite"),
        ({"RECOMMENDER_DRAIN_DELAY_SECONDS": "inf"}, "DRAIN_DELAY_SECONDS must be a finite"),
        ({"RECOMMENDER_GRACE_SECONDS": "-1"}, "RECOMMENDER_GRACE_SECONDS must be >= 0"),
        ({"RECOMMENDER_LOG_LEVEL": "chatty"}, "RECOMMENDER_LOG_LEVEL must be one of DEBUG, INFO"),
        (
            {"RECOMMENDER_MAX_CONNECTION_AGE_SECONDS": "-5"},
            "RECOMMENDER_MAX_CONNECTION_AGE_SECONDS must be >= 0",
        ),
        (
            {"RECOMMENDER_MAX_CONNECTION_AGE_GRACE_SECONDS": "soon"},
            "RECOMMENDER_MAX_CONNECTION_AGE_GRACE_SECONDS must be a number",
        ),
        # gRPC would bind 34463 for this one, and fail only later for the others.
        ({"RECOMMENDER_LISTEN": "127.0.0.1:99999"}, "RECOMMENDER_LISTEN must be host:port"),
        ({"RECOMMENDER_LISTEN": "localhost"}, "RECOMMENDER_LISTEN must be host:port"),
        ({"RECOMMENDER_LISTEN": "[::]:port"}, "RECOMMENDER_LISTEN must be host:port"),
    ],
)
def test_bad_server_settings_are_a_configuration_error(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "0.0.0.0:50051", "[::]:65535", ":50051"])
def test_a_listen_address_is_a_host_and_a_port(listen):
    assert Settings.from_env({"RECOMMENDER_LISTEN": listen}).listen == listen


def test_the_log_level_is_read_in_any_case():
    assert Settings.from_env({"RECOMMENDER_LOG_LEVEL": " warning "}).log_level == "WARNING"


def test_connections_are_retired_every_30_seconds_unless_set_otherwise():
    """Clients find replicas added since they connected within about that long;
    the grace covers the digest's stream (60 s by default)."""
    defaults = Settings.from_env({})
    assert defaults.max_connection_age_seconds == 30
    assert defaults.max_connection_age_grace_seconds == 60
    settings = Settings.from_env(
        {
            "RECOMMENDER_MAX_CONNECTION_AGE_SECONDS": "0.5",
            "RECOMMENDER_MAX_CONNECTION_AGE_GRACE_SECONDS": "120",
        }
    )
    assert settings.max_connection_age_seconds == 0.5
    assert settings.max_connection_age_grace_seconds == 120
