"""Input no browser sends but an attacker does: NUL bytes, and numbers past
any column. Every one gets a 4xx (or a form's error), on SQLite and on
PostgreSQL alike: `make test` runs this file in both of its passes, and only
PostgreSQL refuses a NUL byte in a query, so the second pass is the one that
matters for those.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

NUL = "%00"
PAST_BIGINT = str(2**63)


@pytest.mark.parametrize(
    "query",
    [
        f"?category={NUL}",
        f"?category=mystery{NUL}",
        f"?category={NUL}mystery",
        "?category=myst%C3%A9ry",
        f"?page={NUL}",
        f"?page=1{NUL}",
        f"?page={PAST_BIGINT}",
        f"?category=mystery&page={10**30}",
    ],
)
def test_a_home_query_with_a_nul_byte_or_a_huge_number_is_not_found(client, make_book, query):
    make_book(category="mystery")
    assert client.get(f"/{query}").status_code == 404
    assert client.get("/?category=mystery").status_code == 200  # the database is still fine


@pytest.mark.parametrize(
    "url",
    [
        f"/books/{PAST_BIGINT}/",
        f"/orders/{PAST_BIGINT}/",
        f"/admin/catalog/book/{PAST_BIGINT}/change/",
        f"/admin/promotions/promotion/{PAST_BIGINT}/report/",
    ],
)
def test_ids_past_any_column_are_not_found(make_user, url):
    client = Client()
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    # The admin's change form sends staff to its index, saying there is no such book.
    assert client.get(url).status_code in (302, 404)


def test_a_session_cookie_with_a_nul_byte_starts_a_new_session(make_book):
    book = make_book()
    client = Client()
    client.cookies["sessionid"] = "x" * 31 + "\x00"
    assert client.get("/").status_code == 200
    # A usable session is given instead: the cart works.
    assert client.post(f"/cart/add/{book.pk}/", {"quantity": 1}).status_code == 302
    assert client.cookies["sessionid"].value.isalnum()


def post_raw(client: Client, url: str, body: str):
    """A form posted as an attacker's script sends it: NUL bytes included."""
    return client.post(url, body, content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (
            "/accounts/signup/",
            f"username=nul&password1=a+long+passphrase+here"
            f"&password2=a+long+passphrase+here&email=reader{NUL}@example.com",
        ),
        ("/accounts/signup/", f"username=x{NUL}&email=a@example.com"),
        ("/accounts/password_reset/", f"email=reader{NUL}@example.com"),
        ("/accounts/password_reset/", f"email=r@{NUL}xn--bcher-kva.example"),
        ("/accounts/login/", f"username=alice{NUL}&password=x"),
    ],
)
def test_account_forms_with_a_nul_byte_are_refused_as_forms(client, customer, url, body):
    response = post_raw(client, url, body)
    assert response.status_code in (200, 400)  # the form again, with its error
    assert page_errors(response)
    assert client.get("/accounts/login/").status_code == 200  # the database is still fine


def page_errors(response) -> bool:
    return b'class="errorlist' in response.content


@pytest.mark.parametrize(
    "body",
    [f"quantity=1{NUL}", f"quantity={NUL}", f"quantity={PAST_BIGINT}", f"quantity={10**400}"],
)
def test_a_cart_quantity_with_a_nul_byte_or_a_huge_number_changes_nothing(client, make_book, body):
    book = make_book(stock=5)
    client.post(f"/cart/add/{book.pk}/", {"quantity": 1})

    added = post_raw(client, f"/cart/add/{book.pk}/", body)
    updated = post_raw(client, f"/cart/update/{book.pk}/", body)

    assert (added.status_code, updated.status_code) == (400, 400)
    assert b"quantity:" not in added.content + updated.content
    assert b'id="back-to-book"' in added.content
    assert client.post(f"/cart/update/{book.pk}/", {"quantity": 2}).status_code == 302


@pytest.mark.parametrize(
    "body",
    [
        f"voucher_code=AB{NUL}CD",
        f"expected_total=10.00&voucher_code=AB{NUL}",
        f"expected_total=10.00{NUL}",
        f"expected_total=10.00&checkout_key={NUL}&cart_version=1",
        f"expected_total=10.00&cart_version={PAST_BIGINT}",
    ],
)
def test_a_voucher_or_an_order_form_with_a_nul_byte_is_refused(client, customer, make_book, body):
    from marketplace_site.orders.models import Order

    client.force_login(customer)
    book = make_book("10.00", stock=5)
    client.post(f"/cart/add/{book.pk}/", {"quantity": 1})
    url = "/checkout/" if body.startswith("expected_total") else "/cart/"

    response = post_raw(client, url, body)

    assert response.status_code == 400
    assert not Order.objects.exists()
    assert client.get("/cart/").status_code == 200


# --- numbers typed into the admin ------------------------------------------------

MAX_INT32 = 2**31 - 1  # PostgreSQL's integer, and the events' int32


@pytest.fixture
def staff(make_user) -> Client:
    client = Client()
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    return client


def book_form(book, **changes: str) -> dict[str, str]:
    fields = {
        "title": book.title,
        "author": book.author,
        "category": str(book.category_id),
        "year": "",
        "price": str(book.price),
        "active": "on",
        "stock_change": "0",
        "_save": "Save",
    }
    return {**fields, **changes}


def assert_form_error(response, field: str) -> None:
    assert response.status_code == 200, response.status_code  # the form again
    assert field in response.context["adminform"].form.errors, response.context[
        "adminform"
    ].form.errors


@pytest.mark.parametrize(
    ("stock", "change"),
    [
        (5, str(10**20)),
        (5, str(-(10**20))),
        (5, str(2**31)),
        (5, str(MAX_INT32)),  # 5 + MAX_INT32 does not fit
        (MAX_INT32, "1"),
    ],
)
def test_a_huge_addition_to_the_stock_is_a_form_error(staff, make_book, stock, change):
    from marketplace_site.outbox.models import OutboxMessage

    book = make_book(stock=stock)
    response = staff.post(
        f"/admin/catalog/book/{book.pk}/change/", book_form(book, stock_change=change)
    )
    assert_form_error(response, "stock_change")
    book.refresh_from_db()
    assert book.stock == stock
    assert not OutboxMessage.objects.exists()


def test_the_stock_can_grow_to_the_largest_that_fits(staff, make_book):
    book = make_book(stock=5)
    change = str(MAX_INT32 - 5)
    response = staff.post(
        f"/admin/catalog/book/{book.pk}/change/", book_form(book, stock_change=change)
    )
    assert response.status_code == 302
    book.refresh_from_db()
    assert book.stock == MAX_INT32


@pytest.mark.parametrize(
    ("field", "value"),
    [("stock", str(2**31)), ("stock", str(10**20)), ("year", str(2**31)), ("year", "99999")],
)
def test_a_new_book_with_a_number_past_its_column_is_a_form_error(staff, make_book, field, value):
    category = make_book().category
    data = {
        "title": "Emma",
        "author": "Jane Austen",
        "category": str(category.pk),
        "price": "7.50",
        "stock": "1",
        "active": "on",
        "_save": "Save",
        field: value,
    }
    assert_form_error(staff.post("/admin/catalog/book/add/", data), field)


def test_a_book_changed_to_a_year_past_its_column_is_a_form_error(staff, make_book):
    book = make_book()
    response = staff.post(
        f"/admin/catalog/book/{book.pk}/change/", book_form(book, year=str(2**31))
    )
    assert_form_error(response, "year")


@pytest.mark.parametrize("valid_days", ["2000000000", "999999999", str(10**20)])
def test_a_voucher_rule_valid_for_longer_than_a_date_can_say_is_a_form_error(staff, valid_days):
    from marketplace_site.vouchers.models import VoucherRule

    response = staff.post(
        "/admin/vouchers/voucherrule/add/",
        {"name": "Forever", "nth_purchase": "1", "percent_off": "10", "valid_days": valid_days},
    )
    assert_form_error(response, "valid_days")
    assert not VoucherRule.objects.exists()


def test_additions_that_race_past_the_largest_stock_stop_there(make_book):
    from marketplace_site.catalog.services import CatalogError, book_save

    # Two forms each checked against the stock before the other's save.
    book = make_book(stock=MAX_INT32 - 10)
    book_save(book=book, fields=[], stock_change=MAX_INT32)
    assert book.stock == MAX_INT32
    with pytest.raises(CatalogError, match="at most"):
        book_save(book=book, fields=[], stock_change=-(2**31))


def promotion_form(starts: str, ends: str) -> dict[str, str]:
    (start_day, start_time), (end_day, end_time) = starts.split(), ends.split()
    return {
        "name": "Forever",
        "buy_quantity": "2",
        "starts_at_0": start_day,
        "starts_at_1": start_time,
        "ends_at_0": end_day,
        "ends_at_1": end_time,
        "per_customer_limit": "1",
        "active": "on",
    }


@pytest.mark.parametrize(
    ("starts", "ends", "field"),
    [
        ("0001-01-01 00:00", "9999-12-31 23:59", "starts_at"),  # its report: 500
        ("0001-01-02 00:00", "0001-01-03 00:00", "starts_at"),
        ("2026-01-01 00:00", "9999-12-31 23:59", "ends_at"),
    ],
)
def test_a_promotion_over_centuries_is_a_form_error(staff, starts, ends, field):
    from marketplace_site.promotions.models import Promotion

    response = staff.post("/admin/promotions/promotion/add/", promotion_form(starts, ends))
    assert_form_error(response, field)
    assert not Promotion.objects.exists()


def test_a_promotion_of_ten_years_is_taken_and_reported(staff):
    from marketplace_site.promotions.models import Promotion

    form = promotion_form("2020-01-01 00:00", "2029-12-31 00:00")
    assert staff.post("/admin/promotions/promotion/add/", form).status_code == 302
    promotion = Promotion.objects.get()
    assert staff.get(f"/admin/promotions/promotion/{promotion.pk}/report/").status_code == 200


@pytest.mark.parametrize("selected", [["\x00"], ["abc"], ["1", "x"], [str(2**70)], ["-1"]])
@pytest.mark.parametrize(
    ("url", "action"),
    [
        ("/admin/catalog/book/", "deactivate"),
        ("/admin/promotions/promotion/", "delete_selected"),
        ("/admin/vouchers/voucherrule/", "delete_selected"),
        ("/admin/auth/user/", "delete_selected"),
        ("/admin/auth/group/", "delete_selected"),
    ],
)
def test_an_admin_action_on_ids_that_cannot_be_rows_is_refused(
    staff, make_book, url, action, selected
):
    book = make_book()
    response = staff.post(url, {"action": action, "_selected_action": selected, "index": "0"})
    assert response.status_code in (200, 302, 400), response.status_code  # never a 500
    book.refresh_from_db()
    assert book.active


@pytest.mark.parametrize("book_id", ["\x00", "abc", str(2**70)])
def test_a_list_edit_of_ids_that_cannot_be_rows_is_refused(staff, make_book, book_id):
    book = make_book("10.00")
    form = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": book_id,
        "form-0-price": "1.00",
        "form-0-active": "on",
        "_save": "Save",
    }
    response = staff.post("/admin/catalog/book/", form)
    assert response.status_code in (200, 400), response.status_code  # never a 500
    book.refresh_from_db()
    assert book.price == Decimal("10.00")


@pytest.mark.parametrize(
    "query",
    [
        "/admin/outbox/outboxmessage/?state=%00",
        "/admin/outbox/outboxmessage/?event_type__exact=a%00",
        "/admin/catalog/book/?title__gte=%00",
        f"/admin/orders/order/?created_at__year={2**70}",
        f"/admin/vouchers/voucher/?granted_at__year=2026&granted_at__month={2**70}",
        f"/admin/vouchers/voucher/?granted_at__year={2**70}",
        "/admin/catalog/book/?q=%00",
    ],
)
def test_an_admin_list_filtered_by_a_nul_byte_or_a_huge_year_says_the_filter_is_wrong(
    staff, make_book, query
):
    make_book()
    response = staff.get(query)
    assert response.status_code in (200, 302), response.status_code  # never a 500
    if response.status_code == 302:
        assert response["Location"].endswith("?e=1")  # the admin's own "bad filter" page
