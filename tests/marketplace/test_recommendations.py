"""The marketplace's recommender client and the pages that use it, against real
gRPC servers on port 0: the real recommender, a scripted fake one, or nothing.

What a customer relies on: recommendations when the recommender answers, best
sellers in time when it does not, never an error page; what an operator
relies on: the user, category and trace context in each call, a deadline,
retries of UNAVAILABLE only, a breaker, a warning and a counted outcome.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import SimpleNamespace

import grpc
import pytest
from opentelemetry.trace import SpanKind, format_trace_id
from prometheus_client import REGISTRY

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from marketplace_site.orders.services import order_checkout
from marketplace_site.recommendations import client as client_module
from marketplace_site.recommendations.client import RecommenderClient, RecommenderUnavailable
from marketplace_site.recommendations.selectors import recommender_client, reset_recommender_client
from recommender.engine import Book as IndexedBook
from recommender.engine import Category, Purchase, RecommendationIndex
from recommender.server import start_server
from tests.grpc_server import ServerThread
from tests.marketplace.test_views import page
from tests.tracing import SPANS

SELECTORS_LOGGER = "marketplace_site.recommendations.selectors"
# A category's page: anonymous visitors are recommended from it (the home
# page without one shows them every category's best sellers instead).
MYSTERY = "/?category=mystery"
# Generous: the deadline is 250 ms, a hanging server would take 10 s.
PAGE_BOUND = 2.0


# --- reading pages and counters -------------------------------------------------


class _RecommendationsSection(HTMLParser):
    """The <ul id="recommendations">: its data-source and its items' book ids."""

    def __init__(self) -> None:
        super().__init__()
        self.found = 0
        self.source: str | None = None
        self.ids: list[int] = []
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if self._depth:
            if tag == "ul":
                self._depth += 1
            elif tag == "li" and self._depth == 1 and "data-book-id" in attributes:
                self.ids.append(int(attributes["data-book-id"]))
        elif tag == "ul" and attributes.get("id") == "recommendations":
            self.found += 1
            self._depth = 1
            self.source = attributes.get("data-source")

    def handle_endtag(self, tag):
        if self._depth and tag == "ul":
            self._depth -= 1


def recommendations_on(response) -> tuple[str | None, list[int]]:
    assert response.status_code == 200
    section = _RecommendationsSection()
    section.feed(response.content.decode())
    assert section.found == 1, "the page has one recommendations section"
    return section.source, section.ids


def reasons_on(response) -> list[tuple[int, str]]:
    """Each recommended book's id and what its card says about why ("" for nothing)."""
    html = page(response)
    cards = [li for li in html.find("li") if "data-book-id" in li.attrs]
    return [
        (
            int(card.attrs["data-book-id"]),
            " ".join(
                e.clean_text
                for e in html.find("p", **{"class": "why"})
                if any(a is card for a in e.ancestors)
            ),
        )
        for card in cards
        if card.within("recommendations")
    ]


def calls_counted(outcome: str) -> float:
    value = REGISTRY.get_sample_value("marketplace_recommender_calls_total", {"outcome": outcome})
    return value or 0.0


class Counted:
    """The recommender-call counter's values, relative to when this was made."""

    OUTCOMES = ("ok", "unavailable", "deadline_exceeded", "breaker_open", "invalid_argument")

    def __init__(self) -> None:
        self._start = {outcome: calls_counted(outcome) for outcome in self.OUTCOMES}

    def __getitem__(self, outcome: str) -> float:
        return calls_counted(outcome) - self._start[outcome]


def timed_get(client, path: str, **kwargs):
    started = time.monotonic()
    response = client.get(path, **kwargs)
    return response, time.monotonic() - started


def recommender_warnings(caplog) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == SELECTORS_LOGGER and r.levelno == logging.WARNING
    ]


# --- servers ----------------------------------------------------------------------

ANSWER = "answer"
HANG = "hang"


@dataclass
class Call:
    request: pb.RecommendationRequest
    metadata: dict[str, str]
    time_remaining: float | None


@dataclass
class FakeRecommender(pb_grpc.RecommendationsServicer):
    """Records every call; answers per ``script`` (consumed first), then ``default``.

    An action is ANSWER (``answer_ids``), HANG (10 s), or a status code to abort with.
    """

    answer_ids: list[int] = field(default_factory=list)
    # Book id -> (RecommendationReason, bought_with_title); CATALOG otherwise.
    reasons: dict[int, tuple[int, str]] = field(default_factory=dict)
    default: str | grpc.StatusCode = ANSWER
    script: list[str | grpc.StatusCode] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    target: str = ""

    async def Recommend(self, request, context):
        self.calls.append(
            Call(request, dict(context.invocation_metadata()), context.time_remaining())
        )
        action = self.script.pop(0) if self.script else self.default
        if action == HANG:
            await asyncio.sleep(10)
        elif isinstance(action, grpc.StatusCode):
            await context.abort(action, f"scripted {action.name}")
        return pb.RecommendationResponse(
            recommendations=[
                pb.BookRecommendation(
                    id=i,
                    title=f"Book {i}",
                    author="An Author",
                    reason=self.reasons.get(i, (pb.CATALOG, ""))[0],
                    bought_with_title=self.reasons.get(i, (pb.CATALOG, ""))[1],
                )
                for i in self.answer_ids
            ]
        )


async def _serve_fake(servicer: FakeRecommender) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    pb_grpc.add_RecommendationsServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@pytest.fixture
def fake(settings) -> Iterator[FakeRecommender]:
    """A scripted recommender on its own port; the site is pointed at it."""
    thread = ServerThread()
    servicer = FakeRecommender()
    server, port = thread.run(_serve_fake(servicer))
    servicer.target = f"127.0.0.1:{port}"
    settings.RECOMMENDER_TARGET = servicer.target
    yield servicer
    thread.run(server.stop(None))
    thread.close()


@pytest.fixture
def nothing_listening(settings) -> Iterator[str]:
    """A port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{sock.getsockname()[1]}"
        settings.RECOMMENDER_TARGET = target
        yield target


@pytest.fixture
def real_recommender(settings):
    """Start the real recommender over a given index; the site is pointed at it."""
    thread = ServerThread()
    started = []

    def start(index: RecommendationIndex) -> str:
        running = thread.run(start_server(listen="127.0.0.1:0", index=index))
        started.append(running)
        settings.RECOMMENDER_TARGET = f"127.0.0.1:{running.port}"
        return settings.RECOMMENDER_TARGET

    yield start
    for running in started:
        thread.run(running.server.stop(None))
    thread.close()


@pytest.fixture
def channels(monkeypatch) -> list[grpc.Channel]:
    """Every channel the client opens (the real ones, only recorded)."""
    opened: list[grpc.Channel] = []
    real = grpc.insecure_channel

    def insecure_channel(*args, **kwargs):
        channel = real(*args, **kwargs)
        opened.append(channel)
        return channel

    monkeypatch.setattr(grpc, "insecure_channel", insecure_channel)
    return opened


@pytest.fixture
def best_sellers(make_book, make_user):
    """Three mystery books whose titles sort unlike their sales, sold in real orders.

    Returns them by units sold: 3, 2, 0.
    """
    never_sold = make_book(title="Aardvark Alibi")
    top = make_book(title="Zebra Zigzag")
    second = make_book(title="Mongoose Motive")
    buyer = make_user("buyer")
    order_checkout(user=buyer, items={top.pk: 2, second.pk: 1})
    order_checkout(user=buyer, items={top.pk: 1, second.pk: 1})
    return [top, second, never_sold]


# --- the recommender answers --------------------------------------------------------


@pytest.mark.django_db
def test_pages_show_the_real_recommenders_books_in_its_order(client, make_book, real_recommender):
    # Titles sort a, b, c, d; the recommender ranks by units sold: d, b, c, a.
    a, b, c, d = (make_book(title=t) for t in ("Alpha", "Bravo", "Charlie", "Delta"))
    dune = make_book(title="Dune", category="science-fiction")
    index = RecommendationIndex.build(
        [
            *(IndexedBook(x.pk, x.title, x.author, Category.MYSTERY) for x in (a, b, c, d)),
            IndexedBook(dune.pk, dune.title, dune.author, Category.SCIENCE_FICTION),
        ],
        [
            Purchase(1, 900, d.pk, quantity=3),
            Purchase(2, 901, b.pk, quantity=2),
            Purchase(3, 902, c.pk),
            Purchase(4, 903, dune.pk, quantity=9),
        ],
    )
    real_recommender(index)
    counted = Counted()

    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [d.pk, b.pk, c.pk, a.pk])
    # The book page recommends from the book's category, never the book itself.
    assert recommendations_on(client.get(f"/books/{d.pk}/")) == (
        "recommender",
        [b.pk, c.pk, a.pk],
    )
    assert recommendations_on(client.get(f"/books/{b.pk}/")) == (
        "recommender",
        [d.pk, c.pk, a.pk],
    )
    assert recommendations_on(client.get(f"/books/{dune.pk}/")) == ("recommender", [])
    assert counted["ok"] == 4


@pytest.mark.django_db
def test_each_card_says_why_the_book_is_recommended(client, customer, make_book, fake):
    together, unnamed, seller, rest = (make_book() for _ in range(4))
    fake.answer_ids = [together.pk, unnamed.pk, seller.pk, rest.pk]
    fake.reasons = {
        together.pk: (pb.BOUGHT_TOGETHER, "Dune"),
        unnamed.pk: (pb.BOUGHT_TOGETHER, ""),
        seller.pk: (pb.BEST_SELLER, ""),
    }
    client.force_login(customer)

    response = client.get("/")

    assert reasons_on(response) == [
        (together.pk, "Bought with Dune"),
        (unnamed.pk, "Often bought together"),
        (seller.pk, "Best seller"),
        (rest.pk, ""),
    ]
    assert "Recommended for you" in response.content.decode()


@pytest.mark.django_db
def test_a_customer_sees_which_of_their_books_a_recommendation_goes_with(
    client, customer, make_book, real_recommender
):
    dune, neuromancer, foundation = (
        make_book(title=t, category="science-fiction")
        for t in ("Dune", "Neuromancer", "Foundation")
    )
    indexed = [
        IndexedBook(b.pk, b.title, b.author, Category.SCIENCE_FICTION)
        for b in (dune, neuromancer, foundation)
    ]
    others = [Purchase(1, 900, dune.pk), Purchase(1, 900, neuromancer.pk)]
    others += [Purchase(2, 901, foundation.pk, quantity=5)]
    real_recommender(
        RecommendationIndex.build(indexed, [*others, Purchase(3, customer.pk, dune.pk)])
    )
    client.force_login(customer)

    response = client.get("/?category=science-fiction")

    assert reasons_on(response) == [
        (neuromancer.pk, "Bought with Dune"),
        (foundation.pk, "Best seller"),
    ]


@pytest.mark.django_db
def test_anonymous_visitors_get_the_best_seller_of_every_category(
    client, make_book, make_user, fake
):
    mystery_top, mystery_second = make_book(category="mystery"), make_book(category="mystery")
    fantasy_top = make_book(category="fantasy")
    never_sold = make_book(category="romance", title="Aardvark Romance")
    buyer = make_user("buyer")
    order_checkout(user=buyer, items={mystery_top.pk: 3, mystery_second.pk: 1, fantasy_top.pk: 2})

    response = client.get("/")

    # The top of each category first (the better seller first), then the
    # second of each; a book that never sold is shown but not called a best seller.
    assert reasons_on(response) == [
        (mystery_top.pk, "Best seller"),
        (fantasy_top.pk, "Best seller"),
        (never_sold.pk, ""),
        (mystery_second.pk, "Best seller"),
    ]
    assert recommendations_on(response)[0] == "best-sellers"
    assert "Best sellers" in response.content.decode()
    assert fake.calls == [], "the recommender knows nothing about them to choose by"


@pytest.mark.django_db
def test_best_sellers_standing_in_for_the_recommender_say_so(client, best_sellers, fake):
    fake.default = grpc.StatusCode.UNAVAILABLE
    top, second, never_sold = best_sellers

    assert reasons_on(client.get(MYSTERY)) == [
        (top.pk, "Best seller"),
        (second.pk, "Best seller"),
        (never_sold.pk, ""),
    ]


@pytest.mark.django_db
def test_the_book_page_still_fills_its_row_after_leaving_the_book_out(client, make_book, fake):
    books = [make_book() for _ in range(8)]
    shown = books[2]
    fake.answer_ids = [b.pk for b in books]

    source, ids = recommendations_on(client.get(f"/books/{shown.pk}/"))

    assert source == "recommender"
    assert ids == [b.pk for b in books if b != shown][:6]
    # Asked for one more than the row holds, since the book itself may come back.
    assert fake.calls[-1].request.max_results == 7


@pytest.mark.django_db
def test_books_the_shop_does_not_sell_are_left_out(client, make_book, fake):
    on_sale, withdrawn = make_book(), make_book(active=False)
    fake.answer_ids = [987654, withdrawn.pk, on_sale.pk]

    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [on_sale.pk])


@pytest.mark.django_db
def test_page_loads_share_one_channel(client, make_book, fake, channels):
    fake.answer_ids = [make_book().pk]
    for _ in range(3):
        assert recommendations_on(client.get(MYSTERY))[0] == "recommender"
    assert len(fake.calls) == 3
    assert len(channels) == 1


# --- what goes into the request -------------------------------------------------------


@pytest.mark.django_db
def test_the_signed_in_user_and_the_pages_category_go_into_the_request(
    client, customer, make_book, fake
):
    client.force_login(customer)
    history = make_book(category="history")

    client.get("/?category=fantasy")
    client.get(f"/books/{history.pk}/")

    fantasy, book_page = (c.request for c in fake.calls)
    assert (fantasy.user_id, fantasy.category, fantasy.max_results) == (customer.pk, 3, 6)
    assert (book_page.user_id, book_page.category) == (customer.pk, 4)


@pytest.mark.django_db
def test_without_a_category_the_home_page_asks_for_the_latest_purchases(
    client, customer, make_book, fake
):
    client.force_login(customer)
    client.get("/")
    order_checkout(user=customer, items={make_book(category="self-help").pk: 1})
    client.get("/")

    assert [c.request.category for c in fake.calls] == [0, 2]


@pytest.mark.django_db
def test_anonymous_visitors_are_user_zero(client, categories, fake):
    assert client.get("/?category=romance").status_code == 200
    [call] = fake.calls
    assert (call.request.user_id, call.request.category) == (0, 6)


@pytest.mark.django_db
def test_the_requests_trace_goes_with_the_call(client, categories, fake):
    """The gRPC call carries the page's trace (W3C traceparent metadata)."""
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    client.get(MYSTERY, headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    [call] = fake.calls
    assert call.metadata["traceparent"].split("-")[1] == trace_id
    [call_span] = [s for s in SPANS.get_finished_spans() if s.name.endswith("/Recommend")]
    assert call_span.kind is SpanKind.CLIENT
    assert format_trace_id(call_span.context.trace_id) == trace_id


@pytest.mark.django_db
def test_every_call_carries_the_configured_deadline(client, settings, categories, fake):
    client.get(MYSTERY)
    settings.RECOMMENDER_TIMEOUT = 1.5
    reset_recommender_client()
    client.get(MYSTERY)

    # The deadline travels rounded up in the grpc-timeout header: allow a little over.
    default, configured = (c.time_remaining for c in fake.calls)
    assert default is not None
    assert 0 < default <= 0.25 + 0.05
    assert configured is not None
    assert 0.5 < configured <= 1.5 + 0.05


# --- the recommender cannot answer ------------------------------------------------------


@pytest.mark.django_db
def test_a_hanging_recommender_gives_best_sellers_in_time(client, best_sellers, fake, caplog):
    fake.default = HANG
    counted = Counted()

    response, elapsed = timed_get(client, MYSTERY)

    assert elapsed < PAGE_BOUND
    assert recommendations_on(response) == ("best-sellers", [b.pk for b in best_sellers])
    page = response.content.decode()
    assert "Popular right now" in page
    assert "unavailable" not in page.lower()
    assert len(fake.calls) == 1, "the recommender was asked, and not answering is the cause"
    assert counted["deadline_exceeded"] == 1
    assert counted["ok"] == 0
    [warning] = recommender_warnings(caplog)
    assert "deadline_exceeded" in warning.getMessage()


@pytest.mark.django_db
def test_a_hanging_recommender_does_not_break_the_book_page(client, best_sellers, fake):
    fake.default = HANG
    top, second, never_sold = best_sellers

    response, elapsed = timed_get(client, f"/books/{top.pk}/")

    assert elapsed < PAGE_BOUND
    assert recommendations_on(response) == ("best-sellers", [second.pk, never_sold.pk])


@pytest.mark.django_db
def test_a_recommender_that_is_down_gives_best_sellers(
    client, customer, best_sellers, nothing_listening, caplog
):
    top, second, never_sold = best_sellers
    counted = Counted()

    response, elapsed = timed_get(client, MYSTERY)
    assert elapsed < PAGE_BOUND
    assert recommendations_on(response) == ("best-sellers", [top.pk, second.pk, never_sold.pk])

    # A customer is not offered best sellers they already bought.
    order_checkout(user=customer, items={top.pk: 1})
    client.force_login(customer)
    assert recommendations_on(client.get("/")) == ("best-sellers", [second.pk, never_sold.pk])

    assert counted["unavailable"] == 2
    assert counted["ok"] == 0
    assert len(recommender_warnings(caplog)) == 2


# --- the circuit breaker ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_breaker_opens_after_repeated_failures_and_half_opens_later(
    client, settings, make_book, best_sellers, fake
):
    settings.RECOMMENDER_BREAKER_FAILURES = 3
    settings.RECOMMENDER_BREAKER_RESET = 30.0
    # The breaker's own clock, moved by the test: a busy machine's slow pages
    # must not count as the reset timeout passing.
    now = [1000.0]
    recommender_client().breaker.clock = lambda: now[0]
    recommended = make_book(title="Recommended")
    fake.answer_ids = [recommended.pk]
    fake.default = grpc.StatusCode.UNAVAILABLE
    counted = Counted()

    for _ in range(3):
        assert recommendations_on(client.get(MYSTERY))[0] == "best-sellers"
    assert fake.calls, "the failing calls reached the recommender"
    # Each failure is counted as what it was, the one that trips the breaker too.
    assert counted["unavailable"] == 3
    assert counted["breaker_open"] == 0

    # Open: the page is served from the shop's data without calling out.
    calls_when_opened = len(fake.calls)
    for _ in range(2):
        response, elapsed = timed_get(client, MYSTERY)
        assert elapsed < PAGE_BOUND
        assert recommendations_on(response)[0] == "best-sellers"
    assert len(fake.calls) == calls_when_opened
    assert counted["breaker_open"] == 2

    # Half-open after the reset timeout: one trial call; it fails, so open again at once.
    now[0] += 31.0
    assert recommendations_on(client.get(MYSTERY))[0] == "best-sellers"
    assert len(fake.calls) > calls_when_opened
    calls_after_trial = len(fake.calls)
    assert recommendations_on(client.get(MYSTERY))[0] == "best-sellers"
    assert len(fake.calls) == calls_after_trial
    assert counted["unavailable"] == 4
    assert counted["breaker_open"] == 3

    # The recommender recovers: the next trial succeeds and the breaker closes.
    fake.default = ANSWER
    now[0] += 31.0
    for _ in range(2):
        assert recommendations_on(client.get(MYSTERY)) == ("recommender", [recommended.pk])
    assert len(fake.calls) == calls_after_trial + 2
    assert counted["ok"] == 2


# --- the client itself: retries by service config, breaker exclusions, fork safety ----------


def test_unavailable_is_retried_by_the_service_config(fake):
    fake.answer_ids = [7, 8]
    fake.script = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    client = RecommenderClient(target=fake.target, timeout=2.0)
    try:
        books = client.recommend(user_id=1, category=0, max_results=2)
    finally:
        client.close()

    assert [(b.id, b.title) for b in books] == [(7, "Book 7"), (8, "Book 8")]
    assert len(fake.calls) == 3


def test_retries_are_bounded(fake):
    fake.default = grpc.StatusCode.UNAVAILABLE
    client = RecommenderClient(target=fake.target, timeout=2.0)
    try:
        with pytest.raises(RecommenderUnavailable) as raised:
            client.recommend(user_id=1, category=0, max_results=2)
    finally:
        client.close()

    assert raised.value.reason == "unavailable"
    assert len(fake.calls) == 3


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ],
)
def test_other_errors_are_not_retried(fake, code):
    fake.default = code
    client = RecommenderClient(target=fake.target, timeout=2.0)
    try:
        with pytest.raises(RecommenderUnavailable) as raised:
            client.recommend(user_id=1, category=0, max_results=2)
    finally:
        client.close()

    assert raised.value.reason == code.name.lower()
    assert len(fake.calls) == 1


def test_invalid_argument_does_not_open_the_breaker(fake):
    client = RecommenderClient(target=fake.target, timeout=2.0, breaker_failures=2)
    try:
        fake.default = grpc.StatusCode.INVALID_ARGUMENT
        for _ in range(3):
            with pytest.raises(RecommenderUnavailable) as raised:
                client.recommend(user_id=-1, category=0, max_results=2)
            assert raised.value.reason == "invalid_argument"
        assert len(fake.calls) == 3, "every one of them reached the recommender"

        fake.default = ANSWER
        fake.answer_ids = [5]
        assert [b.id for b in client.recommend(user_id=1, category=0, max_results=2)] == [5]
    finally:
        client.close()


def test_internal_errors_do_open_the_breaker(fake):
    # The contrast to the test above: the same breaker does open on a sick server.
    client = RecommenderClient(target=fake.target, timeout=2.0, breaker_failures=2)
    fake.default = grpc.StatusCode.INTERNAL
    try:
        reasons = []
        for _ in range(3):
            with pytest.raises(RecommenderUnavailable) as raised:
                client.recommend(user_id=1, category=0, max_results=2)
            reasons.append(raised.value.reason)
    finally:
        client.close()

    assert reasons == ["internal", "internal", "breaker_open"]
    assert len(fake.calls) == 2


def test_the_channel_is_opened_lazily_and_afresh_in_a_forked_child(fake, channels, monkeypatch):
    fake.answer_ids = [3]
    client = RecommenderClient(target=fake.target, timeout=2.0)
    assert channels == [], "nothing is opened before the first call (gunicorn forks later)"

    client.recommend(user_id=1, category=0, max_results=1)
    client.recommend(user_id=1, category=0, max_results=1)
    assert len(channels) == 1
    [parent_channel] = channels

    # A forked worker: another pid. The parent's channel is unusable there; to
    # prove it is not used, close it.
    child_pid = os.getpid() + 1
    monkeypatch.setattr(client_module, "os", SimpleNamespace(getpid=lambda: child_pid))
    parent_channel.close()
    try:
        assert [b.id for b in client.recommend(user_id=1, category=0, max_results=1)] == [3]
        assert [b.id for b in client.recommend(user_id=1, category=0, max_results=1)] == [3]
    finally:
        client.close()

    assert len(channels) == 2
    assert channels[1] is not parent_channel
    assert len(fake.calls) == 4


def test_switched_off_the_pages_show_best_sellers_without_calling(client, settings, make_book):
    settings.RECOMMENDATIONS_ENABLED = False
    settings.RECOMMENDER_TARGET = "127.0.0.1:1"
    make_book(category="mystery")
    before = REGISTRY.get_sample_value(
        "marketplace_recommender_calls_total", {"outcome": "unavailable"}
    )
    response = client.get(MYSTERY)
    assert response.status_code == 200
    assert b'data-source="best-sellers"' in response.content
    after = REGISTRY.get_sample_value(
        "marketplace_recommender_calls_total", {"outcome": "unavailable"}
    )
    assert after == before
