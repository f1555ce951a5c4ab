"""The whole shop (the session's `make run` stack, tests/e2e/conftest.py), used in a real browser.

Headless Chromium from Debian's package, driven by Playwright (its own
browser download is never used). A customer signs up, browses, gets
recommendations, buys three books with the promotion, checks out; then staff
see the order in the campaign report once the worker has processed it, and
at 1280 px the admin's lists show every column.
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import re
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
# The flags Debian's Chromium needs as root in a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(request):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        yield page
        # Where it stood when it failed, for whoever reads the CI artifacts.
        shot(page, "last-page")
        browser.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def money(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.]", "", text))


def test_a_customer_buys_with_the_promotion_and_staff_see_it_in_the_report(stack, page):
    username = f"reader{uuid.uuid4().hex[:6]}"

    page.goto(f"{stack}/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@example.com")
    page.fill("#id_password1", "a long and unusual passphrase")
    page.fill("#id_password2", "a long and unusual passphrase")
    page.click("button[type=submit]")
    expect(page.locator(".messages")).to_contain_text(f"Welcome, {username}")
    expect(page.locator("[data-promotion-id]")).to_have_count(1)
    shot(page, "01-signed-up-home")

    page.click(".categories >> text=Fantasy")
    expect(page.locator("h1")).to_have_text("Fantasy")
    recommended = page.locator("#recommendations li[data-book-id]")
    expect(recommended.first).to_be_visible()
    assert page.locator("#recommendations").get_attribute("data-source") == "recommender"
    shot(page, "02-fantasy-with-recommendations")

    cards = page.locator("#catalog .book-card")
    titles = []
    for index in range(3):
        page.goto(f"{stack}/?category=fantasy")
        card = cards.nth(index)
        titles.append(card.locator(".book-title").inner_text())
        card.locator(".book-title").click()
        page.click("text=Add to cart")
        expect(page).to_have_url(re.compile(r"/cart/$"))
    shot(page, "03-cart-with-promotion")

    rows = page.locator("table.cart tbody tr")
    expect(rows).to_have_count(3)
    prices = [money(rows.nth(i).locator("td").nth(1).inner_text()) for i in range(3)]
    subtotal = money(page.inner_text("#cart-subtotal"))
    discount = money(page.inner_text("#cart-discount"))
    total = money(page.inner_text("#cart-total"))
    assert subtotal == sum(prices)
    assert discount == min(prices)
    assert total == subtotal - discount

    page.click("#checkout")
    expect(page.locator("h1")).to_have_text(re.compile(r"Order #\d+"))
    order_id = re.search(r"\d+", page.inner_text("h1")).group(0)
    assert money(page.inner_text("#order-total")) == total
    shot(page, "04-order-confirmation")

    page.goto(stack)
    expect(page.locator("[data-promotion-id]")).to_have_count(0)
    shot(page, "05-home-banner-gone")

    page.click("text=Log out")
    page.goto(f"{stack}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "bookstore-staff")
    page.click("input[type=submit]")
    page.goto(f"{stack}/admin/promotions/promotion/")
    page.locator("#result_list a", has_text="Report").first.click()
    orders = page.locator('tr[data-figure="orders"] td').nth(1)
    deadline = time.monotonic() + 60
    while orders.inner_text().strip() != "1" and time.monotonic() < deadline:
        time.sleep(1)
        page.reload()
    expect(orders).to_have_text("1")
    expect(page.locator("#report-redemptions")).to_have_text("1")
    shot(page, "06-campaign-report")
    assert page.locator("svg[role=img]").count() == 1
    page.goto(f"{stack}/admin/orders/order/{order_id}/change/")
    for title in titles:
        expect(page.locator("#content-main")).to_contain_text(title)


def inside_the_viewport(page: Page, locator: Locator) -> bool:
    """Whether the element is drawn wholly within the window's width, unscrolled."""
    box = locator.bounding_box()
    if box is None:
        return False
    return box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]


def test_staff_at_1280_px_see_every_column_and_reach_the_reports_from_the_index(stack, page):
    page.goto(f"{stack}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "bookstore-staff")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_have_text("Bookstore admin")
    expect(page.locator("#dashboard-today")).to_be_visible()
    expect(page.locator("#dashboard-promotions a.report-link").first).to_be_visible()
    shot(page, "admin-1280-dashboard")

    page.goto(f"{stack}/admin/promotions/promotion/")
    assert inside_the_viewport(page, page.locator("#result_list a.report-link").first)
    shot(page, "admin-1280-promotions")

    page.goto(f"{stack}/admin/catalog/book/")
    first_book = page.locator("#result_list tbody tr").first
    for cell in ("th.column-stock", "th.column-active"):
        assert inside_the_viewport(page, page.locator(f"#result_list {cell}"))
    for cell in ("td.field-stock", "td.field-active"):
        assert inside_the_viewport(page, first_book.locator(cell))
    shot(page, "admin-1280-books")
