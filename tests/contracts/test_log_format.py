"""Log lines: plain or JSON, always with the correlation id."""

from __future__ import annotations

import json
import logging

import pytest

from events.correlation import CorrelationIdFilter, correlation
from events.environment import ConfigError
from events.log_format import log_formatter
from recommender.config import Settings


def render(kind: str, message: str) -> str:
    record = logging.LogRecord("shop", logging.INFO, __file__, 1, message, (), None)
    with correlation("order-77"):
        CorrelationIdFilter().filter(record)
    return log_formatter(kind).format(record)


def test_json_lines_parse_and_carry_the_correlation_id():
    line = json.loads(render("json", 'a "quoted" message'))
    assert line["message"] == 'a "quoted" message'
    assert line["correlation_id"] == "order-77"
    assert line["level"] == "INFO"
    assert line["name"] == "shop"


def test_plain_lines_carry_the_correlation_id():
    assert "INFO shop [order-77] hello" in render("plain", "hello")


def test_an_unknown_format_is_refused():
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of plain, json, got 'xml'"):
        Settings.from_env({"LOG_FORMAT": "xml"})
    with pytest.raises(ValueError, match="LOG_FORMAT must be plain or json, got 'xml'"):
        log_formatter("xml")
