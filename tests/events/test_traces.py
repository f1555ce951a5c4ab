"""One W3C trace follows a customer: the page to the recommender, and the
checkout through its outbox rows, the relay and RabbitMQ to every consumer.

The site runs in this process (Django's test client), its spans kept by the
SDK's in-memory exporter (tests/tracing.py). The recommender, the relay and
the Celery worker are real processes, started as `make run` starts them,
exporting over OTLP/HTTP as OTEL_TRACES_EXPORTER=otlp and
OTEL_EXPORTER_OTLP_ENDPOINT tell them, to a collector this test runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.trace import format_span_id, format_trace_id

from events.contracts import PROMOTION_APPLIED, PURCHASE_COMPLETED
from marketplace_site.catalog.services import book_publish_all
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.orders.models import Order
from marketplace_site.recommendations.selectors import reset_recommender_client
from tests.events.broker import wait_until
from tests.processes import start_pipeline
from tests.tracing import SPANS

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WORKER_CONSUMERS = ("worker.promotions", "worker.campaigns", "worker.emails", "worker.vouchers")


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: str  # "server", "client", "producer", "consumer", "internal"
    trace_id: str
    span_id: str
    parent_id: str  # "" for a trace's root
    attributes: dict[str, object]


class Collector(ThreadingHTTPServer):
    """Just enough of an OpenTelemetry collector: OTLP/HTTP protobuf in, spans kept."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Receiver(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest.FromString(
            self.rfile.read(int(self.headers["Content-Length"]))
        )
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                with self.server.lock:
                    self.server.spans += [_span(resource["service.name"], s) for s in scope.spans]
        body = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _span(service: str, span) -> Span:
    kinds = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
    return Span(
        service=service,
        name=span.name,
        kind=kinds.get(span.kind, "?"),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        attributes={a.key: a.value.string_value for a in span.attributes},
    )


def _local_spans() -> list[Span]:
    """This process's spans (the site's), in the collector's terms."""
    return [
        Span(
            service="marketplace-site",
            name=s.name,
            kind=s.kind.name.lower(),
            trace_id=format_trace_id(s.context.trace_id),
            span_id=format_span_id(s.context.span_id),
            parent_id=format_span_id(s.parent.span_id) if s.parent else "",
            attributes=dict(s.attributes or {}),
        )
        for s in SPANS.get_finished_spans()
    ]


def tree(spans: list[Span]) -> str:
    """A trace as text, one span a line under its parent, a span's database
    statements counted on its line (as the README shows it)."""
    statements = {"BEGIN", "SELECT", "INSERT", "UPDATE", "DELETE", "SAVEPOINT", "RELEASE"}
    children: dict[str, list[Span]] = {}
    for span in spans:
        children.setdefault(span.parent_id, []).append(span)
    lines: list[str] = []

    def add(span: Span, depth: int) -> None:
        below = children.get(span.span_id, [])
        counted = sum(child.name in statements for child in below)
        group = span.attributes.get("messaging.consumer.group.name")
        lines.append(
            f"{'  ' * depth}{span.name}  [{span.service}{f' {group}' if group else ''}]"
            + (f"  ({counted} SQL statements)" if counted else "")
        )
        for child in below:
            if child.name not in statements:
                add(child, depth + 1)

    ids = {span.span_id for span in spans}
    for root in (s for s in spans if s.parent_id not in ids and s.name not in statements):
        add(root, 0)
    return "\n".join(lines) + "\n"


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_one_trace_runs_from_the_page_and_the_checkout_to_every_consumer(
    client, settings, topology, collector, tmp_path, make_book, make_user, make_promotion
):
    books = [make_book(price, category="fantasy") for price in ("12.00", "15.00", "9.00")]
    make_promotion()  # buy two, get the cheapest free: the checkout has both events
    alice = make_user("alice")
    pipeline = start_pipeline(
        tmp_path,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        # Sent every 0.1 s instead of every 5 s.
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    try:
        settings.RECOMMENDER_TARGET = pipeline.target
        reset_recommender_client()
        book_publish_all()

        client.force_login(alice)
        SPANS.clear()
        assert client.get("/?category=fantasy").status_code == 200
        [page] = [s for s in _local_spans() if s.kind == "server"]
        [call] = [s for s in _local_spans() if s.name.endswith("/Recommend")]
        assert (call.kind, call.trace_id, call.parent_id) == ("client", page.trace_id, page.span_id)
        wait_until(
            lambda: [s for s in collector.spans if s.parent_id == call.span_id],
            what="the recommender's span of the call",
        )
        [answered] = [s for s in collector.spans if s.parent_id == call.span_id]
        assert (answered.service, answered.kind, answered.trace_id) == (
            "recommender",
            "server",
            page.trace_id,
        )

        for book in books:
            client.post(f"/cart/add/{book.pk}/", {"quantity": 1})
        SPANS.clear()
        response = client.post("/checkout/", {"expected_total": "27.00"})
        assert response.status_code == 302, response.content
        [checkout] = [s for s in _local_spans() if s.kind == "server"]
        order = Order.objects.get(user=alice)
        assert order.discount == Decimal("9.00")
        # The order keeps its trace's id, as its events do.
        assert order.correlation_id == checkout.trace_id

        def in_the_checkout() -> list[Span]:
            with collector.lock:
                return [s for s in collector.spans if s.trace_id == checkout.trace_id]

        def processed() -> set[tuple[str, str]]:
            return {
                (str(s.attributes["messaging.consumer.group.name"]), s.name)
                for s in in_the_checkout()
                if s.kind == "consumer"
            }

        wanted = {
            ("worker.promotions", f"process {PROMOTION_APPLIED}"),
            ("worker.campaigns", f"process {PURCHASE_COMPLETED}"),
            ("worker.emails", f"process {PURCHASE_COMPLETED}"),
            ("worker.vouchers", f"process {PURCHASE_COMPLETED}"),
            ("recommender", f"process {PURCHASE_COMPLETED}"),
        }

        def published() -> set[str]:
            return {s.name for s in in_the_checkout() if s.kind == "producer"}

        wait_until(lambda: processed() >= wanted, timeout=60, what="every consumer's span")
        # The relay ends its publish span after the broker's confirm, so a
        # consumer can export its span first: wait for the relay's too.
        wait_until(lambda: len(published()) >= 2, timeout=30, what="the relay's publish spans")
        assert set(InboxEvent.objects.values_list("consumer", flat=True)) >= set(WORKER_CONSUMERS)

        spans = in_the_checkout()
        publishes = {s.name: s for s in spans if s.kind == "producer"}
        assert set(publishes) == {f"publish {PURCHASE_COMPLETED}", f"publish {PROMOTION_APPLIED}"}
        for publish in publishes.values():
            # Published by the relay, as part of the checkout's request.
            assert (publish.service, publish.parent_id) == ("relay", checkout.span_id)
        for span in (s for s in spans if s.kind == "consumer"):
            # Each consumer's processing, under the publish of its event.
            event_type = span.name.removeprefix("process ")
            assert span.parent_id == publishes[f"publish {event_type}"].span_id, span
            assert span.service == (
                "recommender"
                if span.attributes["messaging.consumer.group.name"] == "recommender"
                else "worker"
            )
            assert span.attributes["bookstore.event.result"] == "applied"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "checkout-trace.txt").write_text(tree([*_local_spans(), *spans]))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{pipeline.logs()}") from None
    finally:
        pipeline.stop()
