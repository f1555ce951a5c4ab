"""E-mails: the order confirmation (an event handler) and the weekly digest over one stream."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser

import pytest
from django.conf import settings as django_settings

from events.contracts import ORDER_STATUS_CHANGED, PURCHASE_COMPLETED, Event, unwrap
from marketplace_site.emails import mail_server_up
from marketplace_site.event_handlers import dependencies_up
from marketplace_site.inbox.services import inbox_apply_batch
from marketplace_site.notifications import services as notification_services
from marketplace_site.notifications.models import DigestDelivery
from marketplace_site.notifications.services import (
    digest_send_all,
    digest_week,
    order_confirmation_send,
    order_status_send,
)
from marketplace_site.notifications.tasks import send_weekly_digest
from marketplace_site.orders.models import Order
from marketplace_site.orders.services import order_checkout, order_status_change
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.recommendations.client import RecommendedBook, RecommenderUnavailable
from recommender.engine import Book as IndexBook
from recommender.engine import Category, Purchase, RecommendationIndex
from recommender.server import start_server
from recommender.servicer import RecommendationsServicer
from tests.grpc_server import ServerThread
from tests.inbox import inbox_apply
from tests.mail_servers import GreetingSmtpServer
from tests.payloads import republished

pytestmark = pytest.mark.django_db

CONSUMER = "worker.emails"


def purchase_event(order: Order) -> Event:
    for row in OutboxMessage.objects.filter(event_type=PURCHASE_COMPLETED).order_by("id"):
        event = unwrap(bytes(row.envelope))
        if event.payload.order_id == order.pk:
            return event
    raise AssertionError(f"no PurchaseCompleted for order {order.pk}")


def confirm(order: Order) -> bool:
    return inbox_apply(
        consumer=CONSUMER, event=purchase_event(order), handler=order_confirmation_send
    )


# --- the order confirmation ------------------------------------------------------


def test_the_confirmation_lists_the_order(
    customer, make_book, make_promotion, mailoutbox, settings
):
    settings.SITE_URL = "https://shop.example/"
    settings.DEFAULT_FROM_EMAIL = "orders@shop.example"
    make_promotion(name="Three for two")
    dune = make_book("15.00", title="Dune")
    emma = make_book("6.00", title="Emma & Friends")
    order = order_checkout(user=customer, items={dune.pk: 2, emma.pk: 1})

    assert confirm(order) is True
    [email] = mailoutbox
    assert email.to == ["alice@example.com"]
    assert email.from_email == "orders@shop.example"
    assert f"#{order.pk}" in email.subject
    body = email.body
    assert "2 x Dune at 15.00: 30.00 USD" in body
    # Plain text is not HTML-escaped.
    assert "1 x Emma & Friends at 6.00: 6.00 USD" in body
    assert "Subtotal: 36.00 USD" in body
    assert "Promotion discount: -6.00 USD" in body
    assert "Voucher" not in body
    assert "Total: 30.00 USD" in body
    assert f"https://shop.example/orders/{order.pk}/" in body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html"
    assert "Emma &amp; Friends" in html
    assert "<strong>30.00 USD</strong>" in html
    assert f'href="https://shop.example/orders/{order.pk}/"' in html


def test_the_confirmation_reads_back_as_the_mail_server_receives_it(
    customer, make_book, mailoutbox
):
    """Written as the SMTP backend writes it, then parsed: both parts come
    back whole, each message with a boundary of its own that is not in its text."""
    first = order_checkout(user=customer, items={make_book("12.00", title="Dune").pk: 1})
    second = order_checkout(user=customer, items={make_book("7.00", title="Emma").pk: 2})
    confirm(first)
    confirm(second)

    boundaries = set()
    for email, title in zip(mailoutbox, ["Dune", "Emma"], strict=True):
        raw = email.message().as_bytes(linesep="\r\n")
        parsed = BytesParser(policy=policy.SMTP).parsebytes(raw)
        assert parsed.get_content_type() == "multipart/alternative"
        plain, html = parsed.iter_parts()
        assert plain.get_content_type() == "text/plain"
        assert f"x {title} at" in plain.get_content()
        assert html.get_content_type() == "text/html"
        assert f"<td>{title}</td>" in html.get_content()
        boundary = parsed.get_boundary()
        assert boundary.encode() not in raw.split(b"\r\n\r\n", 1)[1].replace(
            b"--" + boundary.encode(), b""
        )
        boundaries.add(boundary)
    assert len(boundaries) == 2


def test_the_confirmation_shows_the_voucher(customer, make_book, mailoutbox, make_voucher):
    voucher = make_voucher(customer, percent_off="25")
    order = order_checkout(
        user=customer, items={make_book("10.00").pk: 3}, voucher_code=voucher.code
    )

    confirm(order)
    [email] = mailoutbox
    assert f"Voucher {voucher.code}: -7.50 USD" in email.body
    assert "Promotion discount" not in email.body
    assert "Total: 22.50 USD" in email.body


def test_a_redelivered_purchase_sends_no_second_email(customer, make_book, mailoutbox):
    order = order_checkout(user=customer, items={make_book().pk: 1})
    assert confirm(order) is True
    assert confirm(order) is False
    assert len(mailoutbox) == 1


def test_an_order_published_again_under_another_event_id_sends_no_second_email(
    customer, make_book, mailoutbox
):
    event = purchase_event(order_checkout(user=customer, items={make_book().pk: 1}))
    assert inbox_apply(consumer=CONSUMER, event=event, handler=order_confirmation_send)
    again = republished(event)
    assert not inbox_apply(consumer=CONSUMER, event=again, handler=order_confirmation_send)
    # In one batch too: the first of an order's events is the one applied.
    other = purchase_event(order_checkout(user=customer, items={make_book().pk: 1}))
    applied = inbox_apply_batch(
        consumer=CONSUMER,
        events=[other, republished(other), again],
        handler=order_confirmation_send,
    )
    assert applied == {other.event_id}
    assert len(mailoutbox) == 2


def test_a_customer_without_an_address_gets_no_email(make_user, make_book, mailoutbox):
    order = order_checkout(user=make_user("no-mail", email=""), items={make_book().pk: 1})
    assert confirm(order) is True
    assert mailoutbox == []


# --- the order's status ----------------------------------------------------------


def status_events(order: Order) -> list[Event]:
    rows = OutboxMessage.objects.filter(event_type=ORDER_STATUS_CHANGED).order_by("id")
    events = [unwrap(bytes(row.envelope)) for row in rows]
    return [event for event in events if event.payload.order_id == order.pk]


def tell(event: Event) -> bool:
    return inbox_apply(consumer=CONSUMER, event=event, handler=order_status_send)


def test_the_customer_is_emailed_when_their_order_ships_and_when_it_arrives(
    customer, make_book, mailoutbox, settings
):
    settings.SITE_URL = "https://shop.example/"
    order = order_checkout(user=customer, items={make_book().pk: 1})
    order_status_change(order_id=order.pk, status=Order.Status.SHIPPED)
    order_status_change(order_id=order.pk, status=Order.Status.DELIVERED)
    shipped, delivered = status_events(order)

    assert tell(shipped) is True
    assert tell(delivered) is True

    assert [m.subject for m in mailoutbox] == [
        f"Your order #{order.pk} is on its way",
        f"Your order #{order.pk} was delivered",
    ]
    first = mailoutbox[0]
    assert first.to == ["alice@example.com"]
    assert f"your order #{order.pk} has shipped." in first.body
    assert f"https://shop.example/orders/{order.pk}/" in first.body
    html, mimetype = first.alternatives[0]
    assert mimetype == "text/html"
    assert f'href="https://shop.example/orders/{order.pk}/"' in html
    assert f"your order #{order.pk} was delivered." in mailoutbox[1].body


def test_a_status_change_published_again_sends_no_second_email(customer, make_book, mailoutbox):
    order = order_checkout(user=customer, items={make_book().pk: 1})
    order_status_change(order_id=order.pk, status=Order.Status.SHIPPED)
    [shipped] = status_events(order)

    assert tell(shipped) is True
    assert tell(shipped) is False  # redelivered
    assert tell(republished(shipped)) is False  # the same fact under another id
    assert len(mailoutbox) == 1


def test_a_customer_without_an_address_gets_no_status_email(make_user, make_book, mailoutbox):
    order = order_checkout(user=make_user("no-mail", email=""), items={make_book().pk: 1})
    order_status_change(order_id=order.pk, status=Order.Status.SHIPPED)
    [shipped] = status_events(order)

    assert tell(shipped) is True
    assert mailoutbox == []


# --- the weekly digest -------------------------------------------------------------


@pytest.fixture
def recommender(monkeypatch):
    """Start a real recommender on port 0 over a given index; counts the
    calls it serves and the deadline each stream carried."""
    calls: Counter[str] = Counter()
    deadlines: list[float | None] = []
    real_stream = RecommendationsServicer.RecommendStream
    real_unary = RecommendationsServicer.Recommend

    async def counting_stream(self, request_iterator, context):
        calls["stream"] += 1
        deadlines.append(context.time_remaining())

        async def counted():
            async for request in request_iterator:
                calls["stream requests"] += 1
                yield request

        async for response in real_stream(self, counted(), context):
            yield response

    async def counting_unary(self, request, context):
        calls["unary"] += 1
        return await real_unary(self, request, context)

    monkeypatch.setattr(RecommendationsServicer, "RecommendStream", counting_stream)
    monkeypatch.setattr(RecommendationsServicer, "Recommend", counting_unary)
    thread = ServerThread()
    servers = []

    def start(index: RecommendationIndex | None) -> str:
        running = thread.run(start_server(listen="127.0.0.1:0", index=index))
        servers.append(running)
        return f"127.0.0.1:{running.port}"

    start.calls = calls
    start.deadlines = deadlines
    yield start
    for running in servers:
        thread.run(running.server.stop(None))
    thread.close()


def index_book(book) -> IndexBook:
    return IndexBook(book.pk, book.title, book.author, Category(book.category.code))


def test_the_digest_asks_once_over_one_stream_and_emails_everyone_their_books(
    make_user, make_book, recommender, mailoutbox, settings
):
    settings.SITE_URL = "https://shop.example"
    settings.RECOMMENDER_DIGEST_TIMEOUT = 30.0
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    make_user("no-mail", email="")
    make_user("gone", is_active=False)
    sf = [make_book(category="science-fiction", title=f"SF {i}") for i in range(4)]
    mystery = [make_book(category="mystery", title=f"Mystery {i}") for i in range(7)]
    # Latest purchases in the shop: alice science fiction (after a mystery
    # earlier), bob a mystery, carol nothing.
    order_checkout(user=alice, items={mystery[0].pk: 1})
    order_checkout(user=alice, items={sf[0].pk: 1})
    order_checkout(user=bob, items={mystery[1].pk: 1})

    # The recommender's own history: others bought sf[0] with sf[2], and
    # mystery[5] is its best seller.
    index = RecommendationIndex.build(
        [index_book(b) for b in sf + mystery],
        [
            Purchase(1, alice.pk, sf[0].pk),
            Purchase(2, bob.pk, mystery[1].pk),
            Purchase(3, 999, sf[0].pk),
            Purchase(3, 999, sf[2].pk),
            Purchase(4, 998, mystery[5].pk, quantity=3),
        ],
    )
    settings.RECOMMENDER_TARGET = recommender(index)

    assert digest_send_all() == 3

    assert recommender.calls == {"stream": 1, "stream requests": 3}
    [deadline] = recommender.deadlines
    assert deadline is not None
    # The server reckons the deadline from its own clock when the call
    # arrives, so it may read a little over the 30 s the client gave (30.1 s
    # was seen under load); what matters is that this deadline, not the
    # default 0.25 s of a page's call, was sent.
    assert 29.0 < deadline <= 31.0
    emails = {email.to[0]: email for email in mailoutbox}
    assert sorted(emails) == ["alice@example.com", "bob@example.com", "carol@example.com"]
    asked = {alice: (Category.SCIENCE_FICTION, 3), bob: (Category.MYSTERY, 5), carol: (0, 5)}
    for user, (category, count) in asked.items():
        expected = index.recommend(user_id=user.pk, category=category, max_results=5)
        assert len(expected) == count
        email = emails[user.email]
        titles = [line.strip() for line in email.body.splitlines() if line.startswith("  ")]
        assert titles[::2] == [f"{r.book.title} by An Author" for r in expected]
        assert titles[1::2] == [f"https://shop.example/books/{r.book.id}/" for r in expected]
        html, _ = email.alternatives[0]
        for r in expected:
            assert f'<a href="https://shop.example/books/{r.book.id}/">{r.book.title}</a>' in html
    # Each got their own: alice the book bought with hers, not the one she has.
    assert "SF 2" in emails["alice@example.com"].body
    assert "SF 0" not in emails["alice@example.com"].body
    assert "Mystery 1" not in emails["bob@example.com"].body
    assert emails["carol@example.com"].body.index("Mystery 5") < emails[
        "carol@example.com"
    ].body.index("Mystery 0")


@pytest.mark.parametrize("state", ["nothing listening", "still loading"])
def test_the_digest_fails_loudly_when_the_recommender_is_down(
    customer, recommender, mailoutbox, settings, state
):
    settings.RECOMMENDER_TARGET = (
        "127.0.0.1:1" if state == "nothing listening" else recommender(None)
    )
    with pytest.raises(RecommenderUnavailable, match="unavailable"):
        digest_send_all()
    # The Celery task lets it through, so the failure is recorded, not swallowed.
    with pytest.raises(RecommenderUnavailable):
        send_weekly_digest()
    assert mailoutbox == []


class SameBookForEveryone:
    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    def recommend_many(self, requests):
        self.asked.append([r.user_id for r in requests])
        return [[RecommendedBook(1, "Dune", "Frank Herbert")] for _ in requests]


def test_the_digest_reaches_each_customer_once_a_week_even_when_the_task_reruns(
    make_user, mailoutbox, monkeypatch
):
    """A worker lost mid-run: Celery runs the task again, which goes on where
    the first run stopped instead of e-mailing everyone twice."""
    users = [make_user(f"reader{i}") for i in range(5)]
    ids = [u.pk for u in users]
    monday = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    recommender = SameBookForEveryone()
    monkeypatch.setattr(notification_services, "DIGEST_CHUNK", 2)
    real_connection = notification_services.get_connection

    class LostAfterTwo:
        """The first chunk (two e-mails) goes out, then the worker is gone."""

        def __init__(self) -> None:
            self.inner = real_connection()
            self.sent = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send_messages(self, messages):
            if self.sent >= 2:
                raise ConnectionResetError("worker lost")
            self.sent += len(messages)
            return self.inner.send_messages(messages)

    monkeypatch.setattr(notification_services, "get_connection", LostAfterTwo)
    with pytest.raises(ConnectionResetError):
        digest_send_all(client_factory=lambda: recommender, now=monday)
    assert sorted(m.to[0] for m in mailoutbox) == ["reader0@example.com", "reader1@example.com"]

    monkeypatch.setattr(notification_services, "get_connection", real_connection)
    assert digest_send_all(client_factory=lambda: recommender, now=monday + timedelta(hours=1)) == 3
    assert recommender.asked[-1] == ids[2:]  # only those still due were asked for
    assert sorted(m.to[0] for m in mailoutbox) == [f"reader{i}@example.com" for i in range(5)]

    # Again the same week: nobody; the next week: everyone.
    assert digest_send_all(client_factory=lambda: recommender, now=monday + timedelta(days=6)) == 0
    assert len(recommender.asked) == 2
    assert digest_send_all(client_factory=lambda: recommender, now=monday + timedelta(days=7)) == 5
    assert DigestDelivery.objects.filter(week="2026-W49").count() == 5
    assert digest_week(monday) == "2026-W48"


def test_the_digest_is_scheduled_for_monday_morning():
    entry = django_settings.CELERY_BEAT_SCHEDULE["weekly-digest"]
    assert entry["task"] == send_weekly_digest.name
    schedule = entry["schedule"]
    assert (schedule.day_of_week, schedule.hour, schedule.minute) == ({1}, {8}, {0})


def test_e_mails_wait_while_the_mail_server_refuses_connections(settings):
    """The worker holds the e-mails and vouchers queues' batches while this
    says down (events.celery_consumer); the others need only the database."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = "127.0.0.1", False, 5
    server = GreetingSmtpServer()
    try:
        settings.EMAIL_PORT = server.port
        assert mail_server_up()
        assert dependencies_up(CONSUMER)
    finally:
        server.close()
    # Nothing listens there any more.
    assert not mail_server_up()
    assert not dependencies_up(CONSUMER)
    # Vouchers are e-mailed as they are granted: that queue waits too.
    assert not dependencies_up("worker.vouchers")
    assert dependencies_up("worker.campaigns")

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert mail_server_up()  # nothing to connect to: always up


def test_a_refused_address_sends_the_batchs_other_confirmations_once(
    make_user, make_book, mail_server
):
    """One customer's address is refused: the others' confirmations go out
    once, and no event is retried for it (a retry would not deliver it)."""
    server = mail_server(refused=["gone@example.com"])
    book = make_book(stock=10)
    customers = [make_user("alice"), make_user("gone", email="gone@example.com"), make_user("bob")]
    events = [
        purchase_event(order_checkout(user=customer, items={book.pk: 1})) for customer in customers
    ]

    applied = inbox_apply_batch(consumer=CONSUMER, events=events, handler=order_confirmation_send)

    assert applied == {event.event_id for event in events}
    assert server.received == [["alice@example.com"], ["bob@example.com"]]


def test_a_refused_address_does_not_stop_the_digest_for_those_after_it(make_user, mail_server):
    server = mail_server(refused=["reader1@example.com"])
    users = [make_user(f"reader{i}") for i in range(3)]
    monday = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    sent = digest_send_all(client_factory=SameBookForEveryone, now=monday)

    assert sent == 2
    assert server.received == [["reader0@example.com"], ["reader2@example.com"]]
    # Done for the week, the refused one too: a rerun sends nothing again.
    assert DigestDelivery.objects.filter(week="2026-W48").count() == len(users)
    assert digest_send_all(client_factory=SameBookForEveryone, now=monday) == 0
