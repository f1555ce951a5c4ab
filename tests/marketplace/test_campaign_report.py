"""The campaign report staff read, from real checkouts: what customers paid,
per window, per day and per book, on the page and in its CSV export.

The worked example: books at 12.00, 10.00 and 8.00. The campaign ("buy 2,
get the cheapest free") starts on 10 March at 14:30 and runs two days; the
window before it is 8 March 14:30 to 10 March 14:30.

- 8 Mar 11:30  Dune                      before the window before: in nothing
- 9 Mar 14:30  Emma                 10.00  before
- 10 Mar 11:30 Dune                 12.00  before (the start day's morning)
- 10 Mar 15:30 Dune + Emma + Free Fall, a 10% voucher: 30.00 at list price,
               Free Fall free (8.00), 10% of the 22.00 left (2.20): 19.80 paid
- 11 Mar 17:30 Dune                 12.00  campaign

Before: 2 orders, 2 units, 22.00. Campaign: 2 orders, 4 units, 42.00 at list
price, 31.80 paid: +44.5%, not the +90.9% that list prices show.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from marketplace_site.campaigns.selectors import MAX_BINS_PER_SIDE, campaign_report
from marketplace_site.orders.services import order_checkout
from marketplace_site.promotions.models import Promotion
from tests.sales import apply_outbox, purchase, record

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 10, 14, 30, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def books(make_book) -> dict[str, object]:
    return {
        "dune": make_book("12.00", title="Dune"),
        "emma": make_book("10.00", title="Emma"),
        "free": make_book("8.00", title="Free Fall"),
    }


@pytest.fixture
def worked_example(books, make_user, make_promotion, make_voucher) -> Promotion:
    # Running while the customers check out; then dated as the example says.
    promotion = make_promotion(name="Spring: buy 2, get the cheapest free")
    dune, emma, free = books["dune"], books["emma"], books["free"]
    sales = [
        ({dune: 1}, START - timedelta(days=2, hours=3), False),
        ({emma: 1}, START - timedelta(days=1), False),
        ({dune: 1}, START - timedelta(hours=3), False),
        ({dune: 1, emma: 1, free: 1}, START + timedelta(hours=1), True),
        ({dune: 1}, START + timedelta(days=1, hours=3), False),
    ]
    last = 0
    for number, (items, sold_at, with_voucher) in enumerate(sales):
        buyer = make_user(f"buyer{number}")
        code = make_voucher(buyer, percent_off="10").code if with_voucher else ""
        order_checkout(user=buyer, items={b.pk: n for b, n in items.items()}, voucher_code=code)
        last = apply_outbox(at=sold_at, after_id=last)
    Promotion.objects.filter(pk=promotion.pk).update(
        starts_at=START, ends_at=START + timedelta(days=2)
    )
    promotion.refresh_from_db()
    return promotion


def report_url(promotion: Promotion, name: str = "report") -> str:
    return reverse(f"admin:promotions_promotion_{name}", args=[promotion.pk])


def test_revenue_is_what_customers_paid_with_list_prices_and_discounts_beside_it(
    worked_example, books
):
    report = campaign_report(promotion=worked_example)

    figures = {f.label: (f.before, f.during, f.change) for f in report.figures}
    assert figures == {
        "Orders": (2, 2, Decimal("0.0")),
        "Units sold": (2, 4, Decimal("100.0")),
        "Sales at list price": (Decimal("22.00"), Decimal("42.00"), Decimal("90.9")),
        "Promotion discounts": (Decimal("0.00"), Decimal("8.00"), None),
        "Voucher discounts": (Decimal("0.00"), Decimal("2.20"), None),
        "Revenue (what customers paid)": (Decimal("22.00"), Decimal("31.80"), Decimal("44.5")),
    }
    assert report.revenue_change == Decimal("44.5")
    assert (report.redemptions, report.discount_total) == (1, Decimal("8.00"))

    # Per book: the free copy brought nothing; the voucher's 2.20 fell 1.20 on
    # Dune and 1.00 on Emma, by what each cost after the promotion.
    assert [
        (b.title, b.units_before, b.units_during, b.gross_during, b.revenue_during)
        for b in report.books
    ] == [
        ("Dune", 1, 2, Decimal("24.00"), Decimal("22.80")),
        ("Emma", 1, 1, Decimal("10.00"), Decimal("9.00")),
        ("Free Fall", 0, 1, Decimal("8.00"), Decimal("0.00")),
    ]


def test_the_day_the_campaign_starts_is_split_at_its_start(worked_example):
    report = campaign_report(promotion=worked_example)
    assert [(b.starts_at, b.ends_at, b.units, b.revenue, b.in_campaign) for b in report.bins] == [
        (at(8, 14, 30), at(9), 0, Decimal("0.00"), False),
        (at(9), at(10), 1, Decimal("10.00"), False),
        # The morning's sale is before the campaign, not inside it.
        (at(10), at(10, 14, 30), 1, Decimal("12.00"), False),
        (at(10, 14, 30), at(11), 3, Decimal("19.80"), True),
        (at(11), at(12), 1, Decimal("12.00"), True),
        (at(12), at(12, 14, 30), 0, Decimal("0.00"), True),
    ]


def test_staff_read_the_report_page(client, staff, worked_example):
    client.force_login(staff)
    response = client.get(report_url(worked_example))
    assert response.status_code == 200
    page = response.content.decode()

    revenue = row(page, "revenue-what-customers-paid")
    assert cells(revenue) == ["22.00", "31.80", "+44.5%"]
    assert cells(row(page, "sales-at-list-price")) == ["22.00", "42.00", "+90.9%"]
    # No sales before to compare with: a dash, and why.
    assert cells(row(page, "promotion-discounts")) == ["0.00", "8.00", "— none before"]
    assert cells(row(page, "orders"))[2] == "0.0%"
    free = re.search(r'<tr data-book-id="\d+"><td>Free Fall</td>(.*?)</tr>', page).group(1)
    assert cells(free) == ["0", "1", "8.00", "8.00", "0.00"]

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", content(page)))
    assert "Campaign: 10 Mar 2025, 14:30 to 12 Mar 2025, 14:30." in text
    assert "Compared with as long before it: 8 Mar 2025, 14:30 to 10 Mar 2025, 14:30." in text
    assert ".." not in text
    assert page.count('class="bar"') == 6
    assert f'href="{report_url(worked_example, "report_csv")}"' in page


def row(page: str, figure: str) -> str:
    found = re.search(rf'<tr data-figure="{figure}">(.*?)</tr>', page, re.S)
    assert found is not None, f"no {figure} row"
    return found.group(1)


def cells(html: str) -> list[str]:
    found = re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c)).replace("&mdash;", "—").strip()
        for c in found
    ]


def content(page: str) -> str:
    return page[page.index('<div id="content-main"') :]


def test_the_report_downloads_as_csv(client, staff, worked_example):
    client.force_login(staff)
    response = client.get(report_url(worked_example, "report_csv"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        rf'attachment; filename="campaign-{worked_example.pk}-spring-buy-2-get-the-cheapest-free'
        r'-\d{4}-\d{2}-\d{2}\.csv"',
        response["Content-Disposition"],
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert ["Campaign report", "Spring: buy 2, get the cheapest free"] in rows
    assert ["Campaign", "2025-03-10 14:30", "2025-03-12 14:30"] in rows
    assert ["Revenue (what customers paid)", "22.00", "31.80", "44.5"] in rows
    assert ["Promotion discounts", "0.00", "8.00", ""] in rows
    by_day = {tuple(r[:3]): r[3:] for r in rows if len(r) == 9}
    assert by_day["2025-03-10 00:00", "2025-03-10 14:30", "before"] == (
        ["1", "1", "12.00", "0.00", "0.00", "12.00"]
    )
    assert by_day["2025-03-10 14:30", "2025-03-11 00:00", "campaign"] == (
        ["1", "3", "30.00", "8.00", "2.20", "19.80"]
    )
    free = next(r for r in rows if r[1:2] == ["Free Fall"])
    assert free[2:] == ["0", "1", "8.00", "8.00", "0.00"]


def test_text_a_spreadsheet_would_run_is_exported_as_text(client, staff, make_book, make_promotion):
    promotion = make_promotion(
        name='=HYPERLINK("http://evil.example","Click")',
        starts_at=START,
        ends_at=START + timedelta(days=1),
    )
    titles = ["@SUM(A1:A9)", "+cmd|' /C calc'!A0", "-2+3", "\t=1+1", "Plain"]
    for number, title in enumerate(titles, start=1):
        book = make_book("5.00", title=title)
        record(purchase(number, [(book, 2)], at=START - timedelta(hours=number)))  # before
        record(purchase(100 + number, [(book, 1)], at=START + timedelta(hours=number)))

    client.force_login(staff)
    response = client.get(report_url(promotion, "report_csv"))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))

    assert rows[0] == ["Campaign report", "'" + promotion.name]
    exported = [r[1] for r in rows if r and r[0].isdigit() and len(r) == 7]
    assert sorted(exported) == sorted(
        ["'@SUM(A1:A9)", "'+cmd|' /C calc'!A0", "'-2+3", "'\t=1+1", "Plain"]
    )
    # The report's own numbers stay numbers: half the units, a change of -50.0.
    assert ["Units sold", "10", "5", "-50.0"] in rows
    assert response["Content-Disposition"].startswith('attachment; filename="campaign-')


@pytest.mark.parametrize("name", ["report", "report_csv"])
def test_staff_without_the_view_permission_get_neither_the_report_nor_its_csv(
    client, make_user, make_promotion, customer, name
):
    url = report_url(make_promotion(), name)
    clerk = make_user("clerk", is_staff=True)
    client.force_login(clerk)
    assert client.get(url).status_code == 403

    clerk.user_permissions.add(Permission.objects.get(codename="view_promotion"))
    assert client.get(url).status_code == 200

    # Customers and visitors are sent to the admin's login, the data unseen.
    client.force_login(customer)
    response = client.get(url)
    assert (response.status_code, response.url) == (302, f"{reverse('admin:login')}?next={url}")
    client.logout()
    assert client.get(url).status_code == 302


def test_a_ten_year_campaign_is_binned_by_quarters_and_still_adds_up(
    client, staff, make_book, make_promotion
):
    starts_at = datetime(2000, 1, 1, tzinfo=UTC)
    promotion = make_promotion(starts_at=starts_at, ends_at=datetime(2009, 12, 31, tzinfo=UTC))
    book = make_book("10.00")
    record(purchase(1, [(book, 1)], at=datetime(1990, 1, 2, tzinfo=UTC)))  # first day before
    record(purchase(2, [(book, 2)], at=starts_at - timedelta(microseconds=1)))
    record(purchase(3, [(book, 3)], at=starts_at))
    record(purchase(4, [(book, 4)], at=datetime(2009, 12, 30, 23, 59, tzinfo=UTC)))

    report = campaign_report(promotion=promotion)
    assert report.bin_days == 91
    assert len(report.bins) <= 2 * MAX_BINS_PER_SIDE
    assert report.bins[0].starts_at == report.before.starts_at
    assert report.bins[-1].ends_at == report.campaign.ends_at
    # Bins follow each other with no gap and add up to their windows.
    assert all(a.ends_at == b.starts_at for a, b in zip(report.bins, report.bins[1:], strict=False))
    before = [b for b in report.bins if not b.in_campaign]
    during = [b for b in report.bins if b.in_campaign]
    assert (sum(b.units for b in before), report.before.units) == (3, 3)
    assert (sum(b.units for b in during), report.campaign.units) == (7, 7)
    assert before[-1].ends_at == during[0].starts_at == starts_at

    client.force_login(staff)
    page = client.get(report_url(promotion)).content.decode()
    assert page.count('class="bar"') == len(report.bins)
    assert "units sold per 91 days" in page
    assert client.get(report_url(promotion, "report_csv")).status_code == 200


def test_a_promotion_without_sales_reports_zeros_and_says_there_is_nothing_before(
    client, staff, make_promotion
):
    promotion = make_promotion(starts_at=START, ends_at=START + timedelta(days=3))
    client.force_login(staff)
    page = client.get(report_url(promotion)).content.decode()

    assert cells(row(page, "revenue-what-customers-paid")) == ["0.00", "0.00", "— none before"]
    assert page.count("none before") == 6
    assert "No in-scope book sold during the campaign yet." in page
    rows = list(
        csv.reader(
            io.StringIO(client.get(report_url(promotion, "report_csv")).content.decode("utf-8-sig"))
        )
    )
    assert ["Revenue (what customers paid)", "0.00", "0.00", ""] in rows


def test_a_campaign_not_started_says_when_it_starts(client, staff, make_promotion):
    starts_at = datetime(2999, 1, 1, 9, 0, tzinfo=UTC)
    promotion = make_promotion(starts_at=starts_at, ends_at=starts_at + timedelta(days=1))
    client.force_login(staff)
    page = client.get(report_url(promotion)).content.decode()
    assert "The campaign starts on 1 Jan 2999, 09:00: nothing to report yet." in page
    assert "No days to show yet." in page
