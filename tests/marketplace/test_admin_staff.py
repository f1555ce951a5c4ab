"""The admin as the shop's staff meet it: its name, the dashboard on its
index, lists that fit, and records that read as records."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from marketplace_site.orders.models import Order
from marketplace_site.orders.services import order_checkout

pytestmark = pytest.mark.django_db


def text_of(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)<', page, re.S)
    assert found is not None, f"no #{element_id}"
    return found.group(1).strip()


def test_the_admin_wears_the_shops_name(client, staff):
    client.force_login(staff)
    page = client.get(reverse("admin:index")).content.decode()
    assert "<title>Dashboard | Bookstore admin</title>" in page
    assert re.search(r'<div id="site-name"><a [^>]*>Bookstore admin</a></div>', page)
    assert "Django administration" not in page
    # Its lists have the whole width: no navigation sidebar beside them.
    books = client.get(reverse("admin:catalog_book_changelist")).content.decode()
    assert 'id="nav-sidebar"' not in books
    assert "<title>Select book to change | Bookstore admin</title>" in books


def test_the_dashboard_shows_todays_orders_and_what_customers_paid(
    client, staff, make_user, make_book, make_promotion, make_voucher
):
    make_promotion()
    dune, emma, free = make_book("12.00"), make_book("10.00"), make_book("8.00")
    alice, bob = make_user("alice"), make_user("bob")
    # 30.00 at list price, Free Fall free, 10% off the 22.00 left: 19.80.
    voucher = make_voucher(alice, percent_off="10")
    order_checkout(
        user=alice, items={dune.pk: 1, emma.pk: 1, free.pk: 1}, voucher_code=voucher.code
    )
    order_checkout(user=bob, items={dune.pk: 1})
    yesterday = order_checkout(user=bob, items={emma.pk: 1})
    Order.objects.filter(pk=yesterday.pk).update(created_at=timezone.now() - timedelta(days=1))

    client.force_login(staff)
    page = client.get(reverse("admin:index")).content.decode()
    assert text_of(page, "today-orders") == "2"
    assert text_of(page, "today-revenue") == "31.80"
    assert text_of(page, "today-discounts") == "10.20"


def test_the_dashboard_lists_running_promotions_with_redemptions_and_their_reports(
    client, staff, customer, make_book, make_promotion
):
    running = make_promotion(name="Spring three for two", global_limit=1)
    now = timezone.now()
    ended = make_promotion(name="Last winter", starts_at=now - timedelta(days=9), ends_at=now)
    off = make_promotion(name="Switched off", active=False)
    books = [make_book("5.00") for _ in range(3)]
    order_checkout(user=customer, items={b.pk: 1 for b in books})

    client.force_login(staff)
    page = client.get(reverse("admin:index")).content.decode()
    row = re.search(rf'<tr data-promotion-id="{running.pk}">(.*?)</tr>', page, re.S).group(1)
    assert "Spring three for two" in row
    # Used up, it is no longer offered; it still runs, and the dashboard says so.
    assert re.search(r'<td class="num">\s*1 of 1\s*</td>', row)
    report = reverse("admin:promotions_promotion_report", args=[running.pk])
    assert f'<a href="{report}" class="report-link">Campaign report</a>' in row
    for hidden in (ended, off):
        assert f'data-promotion-id="{hidden.pk}"' not in page
    # Every promotion's report is one click further.
    assert f'href="{reverse("admin:promotions_promotion_changelist")}" id="all-reports"' in page


def test_the_dashboard_lists_books_on_sale_low_in_stock(client, staff, settings, make_book):
    settings.LOW_STOCK_THRESHOLD = 2
    sold_out = make_book(title="Sold Out", stock=0)
    two_left = make_book(title="Two Left", stock=2)
    make_book(title="Three Left", stock=3)
    make_book(title="Withdrawn", stock=0, active=False)

    client.force_login(staff)
    page = client.get(reverse("admin:index")).content.decode()
    low = page[page.index('id="dashboard-low-stock"') :]
    assert re.findall(r'<tr data-book-id="(\d+)">', low) == [str(sold_out.pk), str(two_left.pk)]
    link = reverse("admin:catalog_book_changelist") + "?stock=low&amp;active__exact=1"
    assert f'<a href="{link}">2 books on sale with 2 copies or fewer</a>' in low

    listed = client.get(link.replace("&amp;", "&")).content.decode()
    assert "Sold Out" in listed
    assert "Two Left" in listed
    assert "Three Left" not in listed
    assert "Withdrawn" not in listed


def test_staff_see_only_the_panels_they_may_view(client, make_user):
    clerk = make_user("clerk", is_staff=True)
    client.force_login(clerk)
    page = client.get(reverse("admin:index")).content.decode()
    for panel in ("dashboard-today", "dashboard-promotions", "dashboard-low-stock"):
        assert f'id="{panel}"' not in page

    clerk.user_permissions.add(Permission.objects.get(codename="view_order"))
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="dashboard-today"' in page
    assert 'id="dashboard-promotions"' not in page
    assert 'id="dashboard-low-stock"' not in page


def test_an_order_reads_as_a_record_whose_status_alone_staff_change(
    client, staff, customer, make_book
):
    order = order_checkout(user=customer, items={make_book("9.99").pk: 2})
    url = reverse("admin:orders_order_change", args=[order.pk])
    client.force_login(staff)

    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Change order</h1>" in page
    assert 'name="status"' in page
    for field in ("currency", "total", "subtotal", "user"):
        assert f'name="{field}"' not in page
    assert "19.98" in page
    # Posting other fields anyway changes nothing.
    client.post(url, {"status": "placed", "currency": "EUR", "total": "0.01"})
    assert Order.objects.get(pk=order.pk).currency == "USD"
    assert Order.objects.get(pk=order.pk).total == Decimal("19.98")

    # Delivered, it has nowhere to go: a record without Save buttons.
    Order.objects.filter(pk=order.pk).update(status=Order.Status.DELIVERED)
    page = client.get(url).content.decode()
    assert "<h1>View order</h1>" in page
    for button in ('name="_save"', 'name="_continue"', 'name="_addanother"'):
        assert button not in page
    assert client.post(url, {"status": "placed"}).status_code == 403
    assert Order.objects.get(pk=order.pk).status == Order.Status.DELIVERED


def test_a_redemption_reads_as_a_record_without_save_buttons(
    client, staff, customer, make_book, make_promotion
):
    make_promotion()
    books = [make_book("5.00") for _ in range(3)]
    order = order_checkout(user=customer, items={b.pk: 1 for b in books})
    client.force_login(staff)
    page = client.get(
        reverse("admin:promotions_redemption_change", args=[order.redemption.pk])
    ).content.decode()
    assert 'name="_save"' not in page


def test_the_promotions_list_puts_the_report_next_to_the_name(client, staff, make_promotion):
    promotion = make_promotion(name="Spring")
    client.force_login(staff)
    page = client.get(reverse("admin:promotions_promotion_changelist")).content.decode()
    headers = re.findall(r'<th scope="col"\s+class="[^"]*column-(\w+)', page)
    assert headers[:2] == ["name", "report_link"]
    assert len(headers) <= 7
    report = reverse("admin:promotions_promotion_report", args=[promotion.pk])
    assert f'<a href="{report}" class="report-link">Report</a>' in page
