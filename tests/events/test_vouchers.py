"""Event-driven vouchers: granted by the worker on the Nth purchase, redeemed once at checkout."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import ClassVar

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from events.contracts import PURCHASE_COMPLETED, Event, unwrap
from marketplace_site.accounts.selectors import UnknownCustomer
from marketplace_site.catalog.models import Book
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.inbox.services import inbox_apply_batch
from marketplace_site.orders.models import Order
from marketplace_site.orders.services import OrderError, order_checkout
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.pricing import PricedLine, percent_of, quote, with_voucher
from marketplace_site.vouchers.models import PurchaseCount, Voucher, VoucherRule
from marketplace_site.vouchers.selectors import VoucherInvalid, voucher_usable
from marketplace_site.vouchers.services import (
    CODE_ALPHABET,
    CODE_LENGTH,
    voucher_code_for,
    voucher_grant_if_due,
    voucher_redeem,
)
from tests.inbox import inbox_apply
from tests.payloads import republished

pytestmark = pytest.mark.django_db

CONSUMER = "worker.vouchers"


def purchase_event(order: Order) -> Event:
    """The PurchaseCompleted the checkout recorded in the outbox for ``order``."""
    for row in OutboxMessage.objects.filter(event_type=PURCHASE_COMPLETED).order_by("id"):
        event = unwrap(bytes(row.envelope))
        if event.payload.order_id == order.pk:
            return event
    raise AssertionError(f"no PurchaseCompleted for order {order.pk}")


def buy(user, book: Book, **kwargs) -> Order:
    return order_checkout(user=user, items={book.pk: 1}, **kwargs)


def buy_and_apply(user, book: Book) -> Order:
    """Check out, then let the worker's voucher handler apply the purchase."""
    order = buy(user, book)
    assert inbox_apply(consumer=CONSUMER, event=purchase_event(order), handler=voucher_grant_if_due)
    return order


# --- granting -----------------------------------------------------------------


def test_a_voucher_is_granted_on_the_nth_purchase_only_and_emailed_with_its_code(
    customer, make_book, make_rule, mailoutbox
):
    rule = make_rule(nth_purchase=3, percent_off=Decimal("15"), valid_days=30)
    book = make_book("20.00")
    orders = [buy_and_apply(customer, book) for _ in range(2)]
    assert not Voucher.objects.exists()
    assert mailoutbox == []

    third = buy_and_apply(customer, book)
    voucher = Voucher.objects.get()
    assert (voucher.owner, voucher.rule, voucher.percent_off) == (customer, rule, Decimal("15"))
    assert voucher.granted_for_order_id == third.pk
    assert voucher.used_by_order is None
    assert voucher.expires_at == voucher.granted_at + timedelta(days=30)
    [email] = mailoutbox
    assert email.to == ["alice@example.com"]
    assert "15% off" in email.subject
    assert voucher.code in email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html"
    assert voucher.code in html

    orders.append(buy_and_apply(customer, book))
    assert Voucher.objects.count() == 1
    assert len(mailoutbox) == 1
    assert PurchaseCount.objects.get(user=customer).purchases == 4


def test_each_active_matching_rule_grants_once_per_customer(
    customer, make_user, make_book, make_rule, mailoutbox
):
    five = make_rule(nth_purchase=1, percent_off=Decimal("5"))
    twenty = make_rule(nth_purchase=1, percent_off=Decimal("20"))
    make_rule(nth_purchase=1, active=False)
    make_rule(nth_purchase=2)
    bob = make_user("bob")
    book = make_book()

    buy_and_apply(customer, book)
    buy_and_apply(bob, book)
    granted = {(v.owner.username, v.rule_id) for v in Voucher.objects.select_related("owner")}
    assert granted == {
        ("alice", five.pk),
        ("alice", twenty.pk),
        ("bob", five.pk),
        ("bob", twenty.pk),
    }
    assert (
        sorted(m.to[0] for m in mailoutbox) == ["alice@example.com"] * 2 + ["bob@example.com"] * 2
    )

    # Staff move a rule to a later purchase: its customers already have theirs.
    VoucherRule.objects.filter(pk=five.pk).update(nth_purchase=2)
    buy_and_apply(customer, book)
    assert Voucher.objects.filter(owner=customer, rule=five).count() == 1
    # The (rule, owner) pair is unique in the database too.
    with pytest.raises(IntegrityError), transaction.atomic():
        Voucher.objects.create(
            code="Z" * CODE_LENGTH,  # not the first one's: the pair is what clashes
            owner=customer,
            rule=five,
            percent_off=Decimal("5"),
            granted_for_order_id=1,
        )


def test_a_redelivered_event_counts_nothing_and_grants_nothing(
    customer, make_book, make_rule, mailoutbox
):
    make_rule(nth_purchase=1)
    event = purchase_event(buy(customer, make_book()))

    assert inbox_apply(consumer=CONSUMER, event=event, handler=voucher_grant_if_due) is True
    assert inbox_apply(consumer=CONSUMER, event=event, handler=voucher_grant_if_due) is False
    assert Voucher.objects.count() == 1
    assert len(mailoutbox) == 1
    assert PurchaseCount.objects.get(user=customer).purchases == 1


def test_an_order_published_again_under_another_event_id_counts_once(
    customer, make_book, make_rule, mailoutbox
):
    make_rule(nth_purchase=2)
    book = make_book()
    first = purchase_event(buy(customer, book))
    assert inbox_apply(consumer=CONSUMER, event=first, handler=voucher_grant_if_due)
    again = republished(first)
    assert not inbox_apply(consumer=CONSUMER, event=again, handler=voucher_grant_if_due)
    assert PurchaseCount.objects.get(user=customer).purchases == 1
    assert not Voucher.objects.exists()
    assert mailoutbox == []

    second = buy_and_apply(customer, book)
    assert Voucher.objects.get().granted_for_order_id == second.pk
    assert PurchaseCount.objects.get(user=customer).purchases == 2


def test_an_event_for_an_unknown_customer_fails_and_records_nothing(customer, make_book, make_rule):
    make_rule(nth_purchase=1)
    event = purchase_event(buy(customer, make_book()))
    event.payload.user_id = 999_999

    with pytest.raises(UnknownCustomer):
        inbox_apply(consumer=CONSUMER, event=event, handler=voucher_grant_if_due)
    assert not InboxEvent.objects.exists()
    assert not PurchaseCount.objects.exists()
    assert not Voucher.objects.exists()


def test_codes_are_one_per_rule_and_customer_typeable_and_keyed_by_the_site(settings):
    codes = {voucher_code_for(rule_id=r, owner_id=u) for r in range(1, 11) for u in range(1, 101)}
    assert len(codes) == 1000
    pattern = re.compile(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
    assert all(pattern.fullmatch(code) for code in codes)
    code = voucher_code_for(rule_id=3, owner_id=7)
    assert voucher_code_for(rule_id=3, owner_id=7) == code
    settings.SECRET_KEY = "another shop's secret key, fifty characters or more"
    assert voucher_code_for(rule_id=3, owner_id=7) != code


class MailLostAtBob:
    """A mail backend that takes every message until one is for bob: then the
    connection drops (the batch's transaction rolls back)."""

    sent: ClassVar[list] = []

    def __init__(self, **_: object) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send_messages(self, messages) -> int:
        for message in messages:
            if message.to == ["bob@example.com"]:
                raise ConnectionResetError("the mail server went away")
            self.sent.append(message)
        return len(messages)


def test_a_code_e_mailed_by_a_grant_rolled_back_is_the_one_its_retry_creates(
    make_user, make_book, make_rule, settings
):
    """The batch's first voucher is e-mailed, a later e-mail fails and the
    batch rolls back; applied again, the first grant creates the voucher
    with the code its customer already has."""
    make_rule(nth_purchase=1)
    settings.EMAIL_BACKEND = f"{__name__}.MailLostAtBob"
    MailLostAtBob.sent = []
    book = make_book(stock=10)
    ann, bob = make_user("ann"), make_user("bob")
    events = [purchase_event(buy(ann, book)), purchase_event(buy(bob, book))]

    with pytest.raises(ConnectionResetError):
        inbox_apply_batch(consumer=CONSUMER, events=events, handler=voucher_grant_if_due)
    assert not Voucher.objects.exists()
    [first_email] = MailLostAtBob.sent

    assert inbox_apply_batch(consumer=CONSUMER, events=events[:1], handler=voucher_grant_if_due)
    voucher = Voucher.objects.get(owner=ann)
    assert voucher.code in first_email.body


# --- redeeming ----------------------------------------------------------------


def test_the_owner_redeems_a_voucher_once(customer, make_book, make_voucher):
    voucher = make_voucher(customer, percent_off="10")
    book = make_book("24.99", stock=5)

    order = buy(customer, book, voucher_code=voucher.code, correlation_id="c-v")
    # 10% of 24.99 is 2.499: half-up to the cent.
    assert (order.subtotal, order.discount, order.voucher_discount, order.total) == (
        Decimal("24.99"),
        Decimal("0.00"),
        Decimal("2.50"),
        Decimal("22.49"),
    )
    assert order.voucher == voucher
    voucher.refresh_from_db()
    assert voucher.used_by_order == order
    payload = purchase_event(order).payload
    assert (payload.voucher_code, payload.total, payload.discount) == (
        voucher.code,
        "22.49",
        "0.00",
    )

    outbox_rows = OutboxMessage.objects.count()
    with pytest.raises(OrderError, match=f"already used on order #{order.pk}"):
        buy(customer, book, voucher_code=voucher.code)
    assert Order.objects.count() == 1
    assert OutboxMessage.objects.count() == outbox_rows
    assert Book.objects.get(pk=book.pk).stock == 4


def test_another_customers_voucher_is_refused_and_changes_nothing(
    customer, make_user, make_book, make_voucher
):
    voucher = make_voucher(make_user("bob"))
    book = make_book(stock=3)
    with pytest.raises(OrderError, match=f"no voucher “{voucher.code}” on your account"):
        buy(customer, book, voucher_code=voucher.code)
    assert not Order.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert Book.objects.get(pk=book.pk).stock == 3
    voucher.refresh_from_db()
    assert voucher.used_by_order is None


@pytest.mark.parametrize("code", ["NOSUCHCODE", "-"], ids=["unknown", "blank-after-normalizing"])
def test_a_made_up_code_is_refused(customer, make_book, code):
    with pytest.raises(OrderError, match="on your account"):
        buy(customer, make_book(), voucher_code=code)
    assert not Order.objects.exists()


def test_an_expired_voucher_is_refused(customer, make_book, make_voucher):
    voucher = make_voucher(customer, expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(OrderError, match=f"Voucher {voucher.code} expired on"):
        buy(customer, make_book(), voucher_code=voucher.code)
    assert not Order.objects.exists()
    voucher.refresh_from_db()
    assert voucher.used_by_order is None


def test_a_voucher_not_yet_expired_is_accepted(customer, make_book, make_voucher):
    voucher = make_voucher(customer, expires_at=timezone.now() + timedelta(days=1))
    assert buy(customer, make_book("10.00"), voucher_code=voucher.code).total == Decimal("9.00")


def test_codes_are_read_without_case_spaces_or_dashes(customer, make_book, make_voucher):
    voucher = make_voucher(customer)
    typed = "-".join(voucher.code[i : i + 4] for i in range(0, CODE_LENGTH, 4)).lower()
    order = buy(customer, make_book(), voucher_code=f" {typed} ")
    assert order.voucher == voucher


def test_the_voucher_comes_off_after_the_promotion(
    customer, make_book, make_promotion, make_voucher
):
    make_promotion()
    voucher = make_voucher(customer, percent_off="12.5")
    books = [make_book("10.00"), make_book("15.00"), make_book("6.00")]
    order = order_checkout(
        user=customer,
        items={b.pk: 1 for b in books},
        voucher_code=voucher.code,
        # What the cart page showed: 31.00 - 6.00 promotion - 3.13 voucher.
        expected_total=Decimal("21.87"),
    )
    assert (order.subtotal, order.discount, order.voucher_discount, order.total) == (
        Decimal("31.00"),
        Decimal("6.00"),
        Decimal("3.13"),
        Decimal("21.87"),
    )


def test_a_redemption_from_a_stale_read_is_refused(customer, make_book, make_voucher):
    voucher = make_voucher(customer)
    stale = Voucher.objects.get(pk=voucher.pk)
    book = make_book(stock=5)
    buy(customer, book, voucher_code=voucher.code)
    other = buy(customer, book)
    # What a second checkout holding an old copy would do: the database says no.
    with pytest.raises(VoucherInvalid, match="just used"), transaction.atomic():
        voucher_redeem(voucher=stale, order_id=other.pk)
    voucher.refresh_from_db()
    assert voucher.used_by_order_id != other.pk


def test_the_database_refuses_two_orders_with_one_voucher(customer, make_voucher):
    voucher = make_voucher(customer)
    fields = {
        "user": customer,
        "currency": "USD",
        "subtotal": Decimal("10.00"),
        "discount": Decimal("0"),
        "voucher_discount": Decimal("1.00"),
        "total": Decimal("9.00"),
        "voucher": voucher,
    }
    Order.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(**fields)


def test_the_order_total_must_include_the_voucher_discount(customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(
            user=customer,
            currency="USD",
            subtotal=Decimal("10.00"),
            voucher_discount=Decimal("1.00"),
            total=Decimal("10.00"),
        )


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        ("33.00", "15", "4.95"),
        ("9.99", "12.5", "1.25"),  # 1.24875
        ("0.05", "10", "0.01"),  # 0.005: half up, not to even
        ("0.25", "10", "0.03"),  # 0.025
        ("19.99", "100", "19.99"),
        ("0.00", "50", "0.00"),
    ],
)
def test_percent_arithmetic_rounds_half_up_to_the_cent(amount, percent, expected):
    assert percent_of(Decimal(amount), Decimal(percent)) == Decimal(expected)


def test_with_voucher_takes_the_percentage_off_the_total():
    priced = quote([PricedLine(1, "A", 0, Decimal("20.00"), 2)], [])
    discounted = with_voucher(priced, Decimal("100"))
    assert (discounted.subtotal, discounted.voucher_discount, discounted.total) == (
        Decimal("40.00"),
        Decimal("40.00"),
        Decimal("0.00"),
    )
    assert discounted.voucher_percent_off == Decimal("100")
    assert priced.total == Decimal("40.00")


def test_voucher_usable_is_a_read_that_changes_nothing(customer, make_voucher):
    voucher = make_voucher(customer)
    assert voucher_usable(user=customer, code=voucher.code) == voucher
    voucher.refresh_from_db()
    assert voucher.used_by_order is None


# --- the cart page ---------------------------------------------------------------


def test_the_cart_page_applies_a_voucher_and_checkout_uses_it(
    client, customer, make_book, make_voucher
):
    voucher = make_voucher(customer, percent_off="20")
    book = make_book("12.50", title="Dune")
    client.force_login(customer)
    client.post(reverse("cart-add", args=[book.pk]), {"quantity": 2})

    response = client.post(reverse("cart"), {"voucher_code": voucher.code.lower()})
    assert response.status_code == 302
    page = client.get(reverse("cart")).content.decode()
    assert f"Voucher {voucher.code}" in page
    assert 'id="cart-voucher-discount">\u2212$5.00<' in page
    assert 'id="cart-total">$20.00<' in page

    response = client.post(
        reverse("checkout"), {"expected_total": "20.00", "voucher_code": voucher.code}
    )
    order = Order.objects.get()
    assert response.status_code == 302
    assert response.url == order.get_absolute_url()
    assert (order.voucher, order.total) == (voucher, Decimal("20.00"))
    assert "voucher_code" not in client.session


def test_the_cart_page_shows_why_a_code_is_refused(
    client, customer, make_user, make_book, make_voucher
):
    someone_elses = make_voucher(make_user("bob"))
    book = make_book("12.50")
    client.force_login(customer)
    client.post(reverse("cart-add", args=[book.pk]), {"quantity": 1})

    response = client.post(reverse("cart"), {"voucher_code": someone_elses.code})
    assert response.status_code == 400
    page = response.content.decode()
    assert f"There is no voucher “{someone_elses.code}” on your account." in page
    assert 'id="cart-total">$12.50<' in page
    assert "voucher_code" not in client.session


def test_a_voucher_used_meanwhile_is_dropped_from_the_cart_with_a_message(
    client, customer, make_book, make_voucher
):
    voucher = make_voucher(customer)
    book = make_book("10.00", stock=5)
    client.force_login(customer)
    client.post(reverse("cart-add", args=[book.pk]), {"quantity": 1})
    client.post(reverse("cart"), {"voucher_code": voucher.code})
    # Another tab (or device) checks out with it first.
    order = buy(customer, book, voucher_code=voucher.code)

    response = client.post(
        reverse("checkout"), {"expected_total": "9.00", "voucher_code": voucher.code}
    )
    assert response.status_code == 409
    assert f"already used on order #{order.pk}" in response.content.decode()
    assert Order.objects.count() == 1
    assert 'id="cart-total">$10.00<' in client.get(reverse("cart")).content.decode()


# --- the admin ---------------------------------------------------------------------


def test_staff_configure_rules_and_read_vouchers_in_the_admin(
    client, make_user, customer, make_book, make_voucher
):
    client.force_login(make_user("staff", is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:vouchers_voucherrule_add"),
        {"name": "Fifth book", "nth_purchase": 5, "percent_off": "12.5", "active": "on"},
    )
    assert response.status_code == 302
    rule = VoucherRule.objects.get(name="Fifth book")
    assert (rule.nth_purchase, rule.percent_off, rule.valid_days) == (5, Decimal("12.5"), None)
    refused = client.post(
        reverse("admin:vouchers_voucherrule_add"),
        {"name": "Too generous", "nth_purchase": 0, "percent_off": "150"},
    )
    assert refused.status_code == 200
    assert not VoucherRule.objects.filter(name="Too generous").exists()

    voucher = make_voucher(customer)
    assert voucher.code in client.get(reverse("admin:vouchers_voucher_changelist")).content.decode()
    assert client.get(reverse("admin:vouchers_voucher_add")).status_code == 403
    change_url = reverse("admin:vouchers_voucher_change", args=[voucher.pk])
    client.post(change_url, {"code": "MINE", "percent_off": "100"})
    voucher.refresh_from_db()
    assert voucher.percent_off == Decimal("10")

    # The order shows its voucher, read-only like the rest of it.
    order = buy(customer, make_book("10.00"), voucher_code=voucher.code)
    order_url = reverse("admin:orders_order_change", args=[order.pk])
    client.post(order_url, {"voucher_discount": "0.00", "lines-TOTAL_FORMS": "0"})
    order.refresh_from_db()
    assert order.voucher_discount == Decimal("1.00")
    assert voucher.code in client.get(order_url).content.decode()
