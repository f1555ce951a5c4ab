"""Log lines: plain or JSON, always with the trace id of the work in hand."""

from __future__ import annotations

import json
import logging

import pytest

from events.environment import ConfigError
from events.log_format import log_formatter
from events.tracing import TraceIdFilter
from recommender.config import Settings
from tests.tracing import within

TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def render(kind: str, message: str) -> str:
    record = logging.LogRecord("shop", logging.INFO, __file__, 1, message, (), None)
    with within({"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-01"}):
        TraceIdFilter().filter(record)
    return log_formatter(kind).format(record)


def test_json_lines_parse_and_carry_the_trace_and_span_ids():
    line = json.loads(render("json", 'a "quoted" message'))
    assert line["message"] == 'a "quoted" message'
    assert (line["trace_id"], line["span_id"]) == (TRACE_ID, SPAN_ID)
    assert line["level"] == "INFO"
    assert line["name"] == "shop"


def test_plain_lines_carry_the_trace_id():
    assert f"INFO shop [{TRACE_ID}] hello" in render("plain", "hello")


def test_a_line_outside_any_trace_says_so():
    record = logging.LogRecord("shop", logging.INFO, __file__, 1, "idle", (), None)
    TraceIdFilter().filter(record)
    assert "INFO shop [-] idle" in log_formatter("plain").format(record)


def test_an_unknown_format_is_refused():
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of plain, json, got 'xml'"):
        Settings.from_env({"LOG_FORMAT": "xml"})
    with pytest.raises(ValueError, match="LOG_FORMAT must be plain or json, got 'xml'"):
        log_formatter("xml")
