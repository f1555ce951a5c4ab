"""An order's status as staff move it on in the admin (placed, shipped,
delivered; forward only) and as the customer then sees it: each change is an
OrderStatusChanged in the outbox, in the change's transaction."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from bookstore.events.v1 import events_pb2
from events.contracts import ORDER_STATUS_CHANGED, payload_as, unwrap
from marketplace_site.orders.models import Order
from marketplace_site.orders.services import OrderError, order_checkout, order_status_change
from marketplace_site.outbox.models import OutboxMessage
from tests.marketplace.test_views import Page, page

pytestmark = pytest.mark.django_db


def status_events() -> list[events_pb2.OrderStatusChanged]:
    rows = OutboxMessage.objects.filter(event_type=ORDER_STATUS_CHANGED).order_by("id")
    return [payload_as(unwrap(bytes(row.envelope)), events_pb2.OrderStatusChanged) for row in rows]


def as_the_browser_posts(html: str, **changes: str) -> dict[str, str]:
    """The admin change form's fields as its page holds them, with ``changes``."""
    form = Page(html)
    data = {
        e.attrs["name"]: e.attrs.get("value", "")
        for e in form.find("input")
        if e.attrs.get("name") and e.attrs.get("type") not in ("submit", "checkbox")
    }
    for select in form.find("select"):
        chosen = [
            o.attrs["value"]
            for o in form.find("option")
            if "selected" in o.attrs and any(a is select for a in o.ancestors)
        ]
        data[select.attrs["name"]] = chosen[0] if chosen else ""
    return {**data, "_save": "Save", **changes}


@pytest.fixture
def order(customer, make_book) -> Order:
    return order_checkout(user=customer, items={make_book("9.99", title="Dune").pk: 2})


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def test_staff_ship_an_order_and_the_customer_sees_it(staff_client, customer, order):
    url = reverse("admin:orders_order_change", args=[order.pk])
    form = staff_client.get(url)
    offered = [o.attrs["value"] for o in page(form).find("option")]
    assert offered == ["placed", "shipped", "delivered"]

    response = staff_client.post(url, as_the_browser_posts(form.content.decode(), status="shipped"))

    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == Order.Status.SHIPPED
    [event] = status_events()
    assert (event.order_id, event.user_id) == (order.pk, customer.pk)
    assert (event.status, event.previous_status) == (
        events_pb2.ORDER_STATUS_SHIPPED,
        events_pb2.ORDER_STATUS_PLACED,
    )
    shopper = Client()
    shopper.force_login(customer)
    for path in ("/account/", "/orders/"):
        html = page(shopper.get(path))
        [row] = [e for e in html.find("tr") if "data-order-id" in e.attrs]
        assert html.cells(row)["order-status"] == "Shipped"


def test_a_shipped_order_is_offered_only_what_comes_next(staff_client, order):
    order_status_change(order_id=order.pk, status=Order.Status.SHIPPED)
    url = reverse("admin:orders_order_change", args=[order.pk])
    form = staff_client.get(url)

    assert [o.attrs["value"] for o in page(form).find("option")] == ["shipped", "delivered"]
    # Moving it back, posted anyway, is refused by the form.
    response = staff_client.post(url, as_the_browser_posts(form.content.decode(), status="placed"))
    assert response.status_code == 200
    assert Order.objects.get(pk=order.pk).status == Order.Status.SHIPPED
    assert len(status_events()) == 1


def test_saving_the_page_without_a_new_status_records_nothing(staff_client, order):
    url = reverse("admin:orders_order_change", args=[order.pk])
    form = staff_client.get(url)

    response = staff_client.post(url, as_the_browser_posts(form.content.decode(), total="0.01"))

    assert response.status_code == 302
    saved = Order.objects.get(pk=order.pk)
    assert (saved.status, str(saved.total)) == (Order.Status.PLACED, "19.98")
    assert status_events() == []


def test_an_order_moves_only_forward_one_event_per_change(order):
    order_status_change(order_id=order.pk, status=Order.Status.SHIPPED)
    for backward_or_same in (Order.Status.PLACED, Order.Status.SHIPPED):
        with pytest.raises(OrderError, match="is shipped: it cannot become"):
            order_status_change(order_id=order.pk, status=backward_or_same)
    order_status_change(order_id=order.pk, status=Order.Status.DELIVERED)
    with pytest.raises(OrderError, match="is delivered"):
        order_status_change(order_id=order.pk, status=Order.Status.DELIVERED)

    assert [(e.previous_status, e.status) for e in status_events()] == [
        (events_pb2.ORDER_STATUS_PLACED, events_pb2.ORDER_STATUS_SHIPPED),
        (events_pb2.ORDER_STATUS_SHIPPED, events_pb2.ORDER_STATUS_DELIVERED),
    ]
    assert Order.objects.get(pk=order.pk).status == Order.Status.DELIVERED


def test_an_order_may_be_delivered_straight_from_placed(order):
    order_status_change(order_id=order.pk, status=Order.Status.DELIVERED)
    [event] = status_events()
    assert (event.previous_status, event.status) == (
        events_pb2.ORDER_STATUS_PLACED,
        events_pb2.ORDER_STATUS_DELIVERED,
    )
