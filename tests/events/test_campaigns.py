"""Campaign impact: the worker's sales ledgers, the report, its chart and its admin page."""

from __future__ import annotations

import importlib
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Permission
from django.db import DataError, connection
from django.urls import reverse
from django.utils import timezone

from events.contracts import PURCHASE_COMPLETED, unwrap, wrap
from events.routes import handlers
from marketplace_site.accounts.selectors import UnknownBook, UnknownCustomer
from marketplace_site.campaigns.chart import (
    Bar,
    label_indices,
    nice_ceiling,
    sales_chart,
    sales_chart_svg,
)
from marketplace_site.campaigns.models import DailySales, SaleLine
from marketplace_site.campaigns.selectors import campaign_report, percent_change
from marketplace_site.campaigns.services import sales_record
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.orders.services import order_checkout
from marketplace_site.outbox.models import OutboxMessage
from marketplace_site.promotions.models import PromotionStats
from marketplace_site.promotions.services import promotion_stats_record
from tests.inbox import inbox_apply
from tests.payloads import promotion_payload
from tests.sales import CAMPAIGNS, purchase, record

SVG = "{http://www.w3.org/2000/svg}"
# A Monday noon: the windows below start and end mid-day, away from midnight.
T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _utc(settings):
    """Days in the ledger are TIME_ZONE days; these tests reason in UTC."""
    settings.TIME_ZONE = "UTC"


def ledger() -> list[tuple]:
    return list(
        DailySales.objects.order_by("book_id", "day").values_list(
            "book_id", "day", "category_code", "units", "revenue", "orders"
        )
    )


# --- the handler ---------------------------------------------------------------


def test_the_worker_routes_purchases_to_the_sales_ledger():
    assert handlers(CAMPAIGNS) == {PURCHASE_COMPLETED: sales_record}


@pytest.mark.django_db
def test_a_checkout_goes_into_the_ledger_line_by_line_and_day_by_day(
    customer, make_book, categories
):
    mystery = make_book("12.50", category="mystery")
    scifi = make_book("8.00", category="science-fiction")
    order = order_checkout(user=customer, items={mystery.pk: 2, scifi.pk: 1})
    [row] = OutboxMessage.objects.filter(event_type=PURCHASE_COMPLETED)
    event = unwrap(bytes(row.envelope))

    assert record(event) is True
    lines = SaleLine.objects.order_by("book_id").values_list(
        "order_id", "user_id", "book_id", "category_code", "quantity", "revenue", "sold_at"
    )
    assert list(lines) == [
        (order.pk, customer.pk, mystery.pk, categories["mystery"].code, 2, Decimal("25.00"),
         event.occurred_at),
        (order.pk, customer.pk, scifi.pk, categories["science-fiction"].code, 1,
         Decimal("8.00"), event.occurred_at),
    ]  # fmt: skip
    today = timezone.localdate(event.occurred_at)
    assert ledger() == [
        (mystery.pk, today, categories["mystery"].code, 2, Decimal("25.00"), 1),
        (scifi.pk, today, categories["science-fiction"].code, 1, Decimal("8.00"), 1),
    ]

    # A second order the same day adds to the book's day.
    order_checkout(user=customer, items={mystery.pk: 3})
    second = OutboxMessage.objects.filter(event_type=PURCHASE_COMPLETED).order_by("id").last()
    assert record(unwrap(bytes(second.envelope))) is True
    assert ledger()[0] == (mystery.pk, today, categories["mystery"].code, 5, Decimal("62.50"), 2)
    assert SaleLine.objects.count() == 3


@pytest.mark.django_db
def test_a_redelivered_event_changes_nothing(make_book):
    book = make_book("10.00")
    event = purchase(1, [(book, 2)], at=T0)
    assert record(event) is True
    before = (ledger(), list(SaleLine.objects.values_list("order_id", "book_id", "quantity")))

    assert record(event) is False
    assert (ledger(), list(SaleLine.objects.values_list("order_id", "book_id", "quantity"))) == (
        before
    )
    assert ledger() == [(book.pk, T0.date(), book.category.code, 2, Decimal("20.00"), 1)]


@pytest.mark.django_db
def test_the_same_order_under_another_event_id_adds_nothing(make_book):
    book = make_book("10.00")
    assert record(purchase(1, [(book, 2)], at=T0))
    again = purchase(1, [(book, 2)], at=T0, event_id=str(uuid.uuid4()))

    assert record(again) is False
    assert record(again) is False
    assert ledger() == [(book.pk, T0.date(), book.category.code, 2, Decimal("20.00"), 1)]
    assert SaleLine.objects.count() == 1


@pytest.mark.django_db
def test_a_purchase_of_a_book_or_by_a_customer_the_shop_does_not_have_records_nothing(
    make_book, customer
):
    book = make_book("10.00")
    ghost_book = purchase(1, [(book, 1)], at=T0, user_id=customer.pk)
    ghost_book.payload.lines[0].book_id = 987654
    with pytest.raises(UnknownBook, match="book 987654 does not exist"):
        record(ghost_book)
    with pytest.raises(UnknownCustomer, match="user 987654 does not exist"):
        record(purchase(2, [(book, 1)], at=T0, user_id=987654))
    assert not SaleLine.objects.exists()
    assert not DailySales.objects.exists()
    assert not InboxEvent.objects.exists()


@pytest.mark.django_db
def test_the_day_is_the_shops_day_not_utcs(settings, make_book):
    settings.TIME_ZONE = "America/New_York"
    book = make_book()
    # 01:30 UTC on the 11th is still the evening of the 10th in New York.
    record(purchase(1, [(book, 1)], at=datetime(2025, 3, 11, 1, 30, tzinfo=UTC)))
    assert DailySales.objects.get().day == date(2025, 3, 10)


def shares() -> list[tuple[int, Decimal, Decimal, Decimal]]:
    """(book, at list price, promotion's share, voucher's share) of each recorded line."""
    return list(
        SaleLine.objects.order_by("order_id", "book_id").values_list(
            "book_id", "revenue", "promotion_discount", "voucher_discount"
        )
    )


@pytest.mark.django_db
def test_each_line_is_recorded_with_its_share_of_the_discounts_sent_or_worked_out(make_book):
    # Two books and a free third (8.00), then 10% off the 22.00 left (2.20).
    dune, emma, free = make_book("12.00"), make_book("10.00"), make_book("8.00")
    amounts = {"discount": "8.00", "total": "19.80"}
    record(
        purchase(
            1,
            [(dune, 1), (emma, 1), (free, 1)],
            at=T0,
            shares=(("0.00", "1.20"), ("0.00", "1.00"), ("8.00", "0.00")),
            **amounts,
        )
    )
    # The same order from a producer older than the shares: worked out alike.
    record(purchase(2, [(dune, 1), (emma, 1), (free, 1)], at=T0, **amounts))
    expected = [
        (dune.pk, Decimal("12.00"), Decimal("0.00"), Decimal("1.20")),
        (emma.pk, Decimal("10.00"), Decimal("0.00"), Decimal("1.00")),
        (free.pk, Decimal("8.00"), Decimal("8.00"), Decimal("0.00")),
    ]
    assert shares() == expected * 2


@pytest.mark.django_db
def test_lines_recorded_before_they_had_shares_get_them_from_their_orders(
    customer, make_book, make_promotion, make_voucher
):
    make_promotion()
    books = [make_book("12.00"), make_book("10.00"), make_book("8.00")]
    voucher = make_voucher(customer, percent_off="10")
    order_checkout(user=customer, items={b.pk: 1 for b in books}, voucher_code=voucher.code)
    [row] = OutboxMessage.objects.filter(event_type=PURCHASE_COMPLETED)
    record(unwrap(bytes(row.envelope)))
    sent = shares()
    assert [line[2:] for line in sent] == [
        (Decimal("0.00"), Decimal("1.20")),
        (Decimal("0.00"), Decimal("1.00")),
        (Decimal("8.00"), Decimal("0.00")),
    ]
    # As the lines were before the migration that added the shares.
    SaleLine.objects.update(promotion_discount=0, voucher_discount=0)

    migration = importlib.import_module(
        "marketplace_site.campaigns.migrations.0003_sale_line_discounts_backfill"
    )
    migration.backfill(django_apps, None)
    assert shares() == sent


# --- the report ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_campaign_is_compared_with_the_same_length_window_before_it(make_book, make_promotion):
    promotion = make_promotion(starts_at=T0, ends_at=T0 + timedelta(days=3))
    first, second = make_book("10.00"), make_book("7.50")
    sales = [
        (1, [(first, 5)], T0 - timedelta(days=3, seconds=1)),  # before the window before
        (2, [(first, 1), (second, 2)], T0 - timedelta(days=3)),  # first instant before
        (3, [(first, 3)], T0),  # first instant of the campaign
        (4, [(second, 1)], T0 + timedelta(days=2)),
        (5, [(first, 9)], T0 + timedelta(days=3)),  # the campaign has ended
    ]
    for order_id, lines, at in sales:
        record(purchase(order_id, lines, at=at))

    report = campaign_report(promotion=promotion, now=T0 + timedelta(days=30))

    assert (report.before.starts_at, report.before.ends_at) == (T0 - timedelta(days=3), T0)
    assert (report.campaign.starts_at, report.campaign.ends_at) == (T0, T0 + timedelta(days=3))
    assert (report.before.orders, report.before.units, report.before.revenue) == (
        1,
        3,
        Decimal("25.00"),
    )
    assert (report.campaign.orders, report.campaign.units, report.campaign.revenue) == (
        2,
        4,
        Decimal("37.50"),
    )
    assert (report.orders_change, report.units_change, report.revenue_change) == (
        Decimal("100.0"),
        Decimal("33.3"),
        Decimal("50.0"),
    )
    assert report.running is False
    assert report.scope == "All books"
    assert [(b.book_id, b.units_before, b.units_during) for b in report.books] == [
        (first.pk, 1, 3),
        (second.pk, 2, 1),
    ]
    assert report.books[0].title == first.title


@pytest.mark.django_db
def test_only_books_of_the_promotions_category_are_in_scope(make_book, make_promotion, categories):
    promotion = make_promotion(
        starts_at=T0, ends_at=T0 + timedelta(days=2), category=categories["mystery"]
    )
    mystery, scifi = make_book("10.00"), make_book("20.00", category="science-fiction")
    record(purchase(1, [(mystery, 1), (scifi, 1)], at=T0 + timedelta(hours=1)))
    record(purchase(2, [(scifi, 4)], at=T0 + timedelta(hours=2)))
    record(purchase(3, [(scifi, 1)], at=T0 - timedelta(hours=2)))

    report = campaign_report(promotion=promotion, now=T0 + timedelta(days=5))
    assert report.scope == categories["mystery"].name
    assert (report.campaign.orders, report.campaign.units, report.campaign.revenue) == (
        1,
        1,
        Decimal("10.00"),
    )
    assert (report.before.orders, report.before.units) == (0, 0)
    # Nothing in scope sold before: no percentage to give.
    assert report.units_change is None
    assert sum(b.units for b in report.bins) == 1
    assert [b.book_id for b in report.books] == [mystery.pk]

    everything = make_promotion(starts_at=T0, ends_at=T0 + timedelta(days=2))
    report = campaign_report(promotion=everything, now=T0 + timedelta(days=5))
    assert (report.campaign.orders, report.campaign.units, report.campaign.revenue) == (
        2,
        6,
        Decimal("110.00"),
    )
    assert (report.before.orders, report.before.units) == (1, 1)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)


@pytest.mark.django_db
def test_the_series_is_by_day_the_start_day_split_at_the_start_days_without_sales_at_zero(
    make_book, make_promotion
):
    promotion = make_promotion(starts_at=T0, ends_at=T0 + timedelta(days=3))
    book = make_book("4.00")
    record(purchase(1, [(book, 2)], at=T0 - timedelta(days=2)))
    # The morning of the day the campaign starts (at noon) is the window before's.
    record(purchase(5, [(book, 5)], at=T0 - timedelta(hours=3)))
    record(purchase(2, [(book, 1)], at=T0 + timedelta(hours=1)))
    record(purchase(3, [(book, 3)], at=T0 + timedelta(hours=2)))
    record(purchase(4, [(book, 1)], at=T0 + timedelta(days=2)))

    report = campaign_report(promotion=promotion, now=T0 + timedelta(days=30))
    # 7 March noon to 13 March noon: seven calendar days, the 10th twice.
    assert [(b.starts_at, b.ends_at, b.units, b.gross, b.in_campaign) for b in report.bins] == [
        (at(7, 12), at(8), 0, Decimal("0.00"), False),
        (at(8), at(9), 2, Decimal("8.00"), False),
        (at(9), at(10), 0, Decimal("0.00"), False),
        (at(10), at(10, 12), 5, Decimal("20.00"), False),
        (at(10, 12), at(11), 4, Decimal("16.00"), True),
        (at(11), at(12), 0, Decimal("0.00"), True),
        (at(12), at(13), 1, Decimal("4.00"), True),
        (at(13), at(13, 12), 0, Decimal("0.00"), True),
    ]
    assert report.bin_days == 1
    # The bins add up to the windows' figures.
    assert sum(b.units for b in report.bins if not b.in_campaign) == report.before.units == 7
    assert sum(b.units for b in report.bins if b.in_campaign) == report.campaign.units == 5


@pytest.mark.django_db
def test_the_series_counts_days_as_the_shop_does(settings, make_book, make_promotion):
    settings.TIME_ZONE = "America/New_York"
    # Midnight to midnight in New York (05:00 UTC in March before the switch).
    starts_at = datetime(2025, 3, 4, 5, 0, tzinfo=UTC)
    promotion = make_promotion(starts_at=starts_at, ends_at=starts_at + timedelta(days=2))
    book = make_book()
    # 01:30 UTC on the 5th is the evening of the 4th in New York.
    record(purchase(1, [(book, 1)], at=datetime(2025, 3, 5, 1, 30, tzinfo=UTC)))

    report = campaign_report(promotion=promotion, now=starts_at + timedelta(days=9))
    assert [(b.starts_at, b.units, b.in_campaign) for b in report.bins] == [
        (starts_at - timedelta(days=2), 0, False),
        (starts_at - timedelta(days=1), 0, False),
        (starts_at, 1, True),
        (starts_at + timedelta(days=1), 0, True),
    ]


@pytest.mark.django_db
def test_a_running_campaign_is_measured_up_to_now(make_book, make_promotion):
    promotion = make_promotion(starts_at=T0, ends_at=T0 + timedelta(days=10))
    book = make_book("10.00")
    now = T0 + timedelta(days=2)
    record(purchase(1, [(book, 1)], at=T0 - timedelta(days=2, hours=1)))  # before the before
    record(purchase(2, [(book, 2)], at=T0 - timedelta(days=1)))
    record(purchase(3, [(book, 3)], at=now - timedelta(seconds=1)))
    record(purchase(4, [(book, 8)], at=now))  # not yet, as far as the report knows

    report = campaign_report(promotion=promotion, now=now)
    assert report.running is True
    assert (report.campaign.starts_at, report.campaign.ends_at) == (T0, now)
    assert (report.before.starts_at, report.before.ends_at) == (T0 - timedelta(days=2), T0)
    assert (report.before.units, report.campaign.units) == (2, 3)
    assert report.units_change == Decimal("50.0")
    assert report.bins[0].starts_at == T0 - timedelta(days=2)
    assert report.bins[-1].ends_at == now

    # Switched off in the admin before its end: no longer "still running".
    promotion.active = False
    assert campaign_report(promotion=promotion, now=now).running is False


@pytest.mark.django_db
def test_a_campaign_not_started_yet_has_empty_windows(make_promotion):
    promotion = make_promotion(starts_at=T0, ends_at=T0 + timedelta(days=3))
    report = campaign_report(promotion=promotion, now=T0 - timedelta(days=1))
    assert report.campaign.starts_at == report.campaign.ends_at == T0
    assert report.before.starts_at == report.before.ends_at == T0
    assert report.bins == ()


@pytest.mark.django_db
def test_redemptions_and_discount_come_from_the_promotion_stats(make_promotion):
    promotion = make_promotion(starts_at=T0, ends_at=T0 + timedelta(days=3))
    report = campaign_report(promotion=promotion, now=T0 + timedelta(days=1))
    assert (report.redemptions, report.discount_total) == (0, Decimal("0.00"))

    PromotionStats.objects.create(
        promotion=promotion, redemptions=4, discount_total=Decimal("31.96")
    )
    report = campaign_report(promotion=promotion, now=T0 + timedelta(days=1))
    assert (report.redemptions, report.discount_total) == (4, Decimal("31.96"))


@pytest.mark.parametrize(
    ("before", "during", "expected"),
    [
        (4, 6, Decimal("50.0")),
        (3, 4, Decimal("33.3")),
        (3, 5, Decimal("66.7")),
        (10, 0, Decimal("-100.0")),
        (Decimal("8.00"), Decimal("8.00"), Decimal("0.0")),
        (0, 5, None),
    ],
)
def test_percent_change(before, during, expected):
    assert percent_change(before, during) == expected


# --- the chart -----------------------------------------------------------------


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]


def day_bars(first: date, units: list[int], highlighted_from: int | None = None) -> list[Bar]:
    return [
        Bar(
            key=f"{first + timedelta(days=i):%Y-%m-%d}",
            label=f"{(first + timedelta(days=i)).day} {first:%b}",
            title=f"{first + timedelta(days=i):%Y-%m-%d}: {n} sold",
            units=n,
            highlighted=highlighted_from is not None and i >= highlighted_from,
        )
        for i, n in enumerate(units)
    ]


def test_the_chart_is_well_formed_svg_with_one_bar_per_bin_and_the_window_marked():
    points = day_bars(date(2025, 3, 1), list(range(8)), highlighted_from=4)
    svg = sales_chart_svg(
        sales_chart(bars=points, title="Spring sale; campaign from 5 Mar to 8 Mar 2025")
    )
    root = parse(svg)

    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Spring sale; campaign from 5 Mar to 8 Mar 2025"
    assert root.find(f"{SVG}title").text == root.get("aria-label")
    drawn = bars(root)
    assert [(b.get("data-from"), int(b.get("data-units"))) for b in drawn] == [
        (bar.key, bar.units) for bar in points
    ]
    assert [b.find(f"{SVG}title").text for b in drawn][1] == "2025-03-02: 1 sold"
    # Taller bars for more units; a day without sales has no height.
    heights = [float(b.get("height")) for b in drawn]
    assert heights[0] == 0
    assert heights == sorted(heights)
    assert len(set(heights)) == len(heights)

    [window] = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "campaign-window"]
    left = float(window.get("x"))
    right = left + float(window.get("width"))
    inside = [left <= float(b.get("x")) < right for b in drawn]
    assert inside == [False] * 4 + [True] * 4
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "Campaign" in labels
    assert "1 Mar" in labels
    assert "8 Mar" in labels
    assert "Units sold per day" in labels
    assert {"0", "8"} <= set(labels)
    assert "<script" not in svg
    assert "href" not in svg


def test_the_charts_text_is_escaped():
    svg = sales_chart_svg(
        sales_chart(
            bars=[Bar(key='"><x', label="<i>", title="a & b", units=1, highlighted=True)],
            title='Books & more <b>"now"</b>',
            window_label="Sale <3",
        )
    )
    root = parse(svg)
    assert root.find(f"{SVG}title").text == 'Books & more <b>"now"</b>'
    assert {"Sale <3", "<i>"} <= {t.text for t in root.iter(f"{SVG}text")}
    assert bars(root)[0].get("data-from") == '"><x'
    assert "<b>" not in svg


def test_a_chart_without_days_says_so():
    root = parse(sales_chart_svg(sales_chart(bars=[], title="Not started")))
    assert bars(root) == []
    assert [t.text for t in root.iter(f"{SVG}text")] == ["No days to show yet."]


def test_a_long_chart_labels_a_few_days_including_the_first_and_last():
    assert label_indices(3) == [0, 1, 2]
    assert label_indices(31) == [0, 6, 12, 18, 24, 30]
    root = parse(
        sales_chart_svg(
            sales_chart(bars=day_bars(date(2025, 1, 1), [i % 3 for i in range(31)]), title="Jan")
        )
    )
    x_labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "x-label"]
    assert x_labels == ["1 Jan", "7 Jan", "13 Jan", "19 Jan", "25 Jan", "31 Jan"]
    assert len(bars(root)) == 31
    assert not [r for r in root.iter(f"{SVG}rect") if r.get("class") == "campaign-window"]


@pytest.mark.parametrize(
    ("most", "expected"),
    [(0, (1, 1)), (1, (1, 1)), (4, (4, 1)), (7, (8, 2)), (13, (15, 5)), (100, (100, 50))],
)
def test_the_unit_axis_ends_on_a_round_number(most, expected):
    assert nice_ceiling(most) == expected


# --- the admin page ------------------------------------------------------------


def report_url(promotion) -> str:
    return reverse("admin:promotions_promotion_report", args=[promotion.pk])


@pytest.mark.django_db
def test_staff_see_the_campaign_report_with_its_figures_and_chart(
    client, staff, make_book, make_promotion
):
    promotion = make_promotion(name="Spring & Mystery")
    now = timezone.now()
    book = make_book("12.00", title="The Hound of the Baskervilles")
    record(purchase(1, [(book, 3)], at=now - timedelta(hours=1)))
    record(purchase(2, [(book, 1)], at=now - timedelta(hours=30)))
    PromotionStats.objects.create(promotion=promotion, redemptions=2, discount_total=Decimal("9"))
    client.force_login(staff)

    changelist = client.get(reverse("admin:promotions_promotion_changelist"))
    assert f'href="{report_url(promotion)}"' in changelist.content.decode()

    response = client.get(report_url(promotion))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Campaign report: Spring &amp; Mystery" in page
    report = response.context["report"]
    assert (report.before.units, report.campaign.units) == (1, 3)
    assert '<td class="num">36.00</td>' in page
    assert "+200.0%" in page
    assert 'id="report-redemptions">2<' in page
    assert 'id="report-discount">9.00<' in page
    assert "The Hound of the Baskervilles" in page
    assert page.count('class="bar"') == len(report.bins)
    assert 'class="campaign-window"' in page
    assert 'role="img"' in page


@pytest.mark.django_db
def test_an_unknown_promotion_is_404(client, staff):
    client.force_login(staff)
    response = client.get(reverse("admin:promotions_promotion_report", args=[999_999]))
    assert response.status_code == 404


@pytest.mark.django_db
def test_customers_and_visitors_are_sent_to_the_admin_login(client, customer, make_promotion):
    url = report_url(make_promotion())
    login = reverse("admin:login")
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{login}?next={url}"

    client.force_login(customer)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{login}?next={url}"


@pytest.mark.django_db
def test_staff_without_the_view_permission_are_refused(client, make_user, make_promotion):
    promotion = make_promotion()
    clerk = make_user("clerk", is_staff=True)
    client.force_login(clerk)
    assert client.get(report_url(promotion)).status_code == 403

    clerk.user_permissions.add(Permission.objects.get(codename="view_promotion"))
    assert client.get(report_url(promotion)).status_code == 200


@pytest.mark.django_db
def test_the_report_shows_a_discount_total_past_its_column_instead_of_failing(
    client, staff, make_promotion
):
    """SQLite stores what the stats add up past their column (PostgreSQL
    refuses that event, which is retried, then parked): the report must show
    what is stored, not fail on every view."""
    promotion = make_promotion()
    PromotionStats.objects.create(
        promotion=promotion, redemptions=1, discount_total=Decimal("9999999999.99")
    )
    payload = promotion_payload(promotion_id=promotion.pk, discount="99999999.99")
    event = unwrap(wrap(payload, correlation_id="c", producer="tests").SerializeToString())
    try:
        inbox_apply(consumer="worker.promotions", event=event, handler=promotion_stats_record)
    except DataError:
        assert connection.vendor == "postgresql"
        stored = Decimal("9999999999.99")
    else:
        assert connection.vendor == "sqlite"
        stored = Decimal("10099999999.98")

    client.force_login(staff)
    response = client.get(report_url(promotion))
    assert response.status_code == 200
    assert response.context["report"].discount_total == stored
    assert f'id="report-discount">{stored}<' in response.content.decode()
