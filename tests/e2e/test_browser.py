"""The whole shop (the session's `make run` stack, tests/e2e/conftest.py), used in a real browser.

Headless Chromium from Debian's package, driven by Playwright (its own
browser download is never used). A customer signs up, browses, gets
recommendations, buys three books with the promotion, checks out; then staff
see the order in the campaign report once the worker has processed it, and
at 1280 px the admin's lists show every column. What a person must see in
the shop (the banner's words, every amount of the cart, a header and pills
that fit) is checked at a phone's width and a desktop's; axe-core (`make
axe`) finds no serious or critical accessibility violation on the home, book,
cart, order and account pages; staff ship the order and the worker e-mails
the customer. Screenshots go to test-artifacts/browser/.
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
PHONE, DESKTOP = (390, 844), (1280, 900)
# The demo promotion's rule, as `make run` makes it (ensure_demo_promotion).
RULE = "Buy 2, get a 3rd free — the cheapest"
# axe-core, installed by `make axe` (the Makefile pins its version).
AXE = Path(__file__).resolve().parents[2] / "var/axe/node_modules/axe-core/axe.min.js"


@pytest.fixture
def page(request):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": DESKTOP[0], "height": DESKTOP[1]})
        page.set_default_timeout(15_000)
        # What the Content-Security-Policy blocked: the browser says so on its console.
        blocked: list[str] = []
        page.on(
            "console",
            lambda message: (
                blocked.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )
        yield page
        # Where it stood when it failed, for whoever reads the CI artifacts.
        shot(page, "last-page")
        browser.close()
        assert not blocked, "the policy blocked parts of pages:\n" + "\n".join(blocked)


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def money(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.]", "", text))


def fits_the_screen(page: Page) -> None:
    """Nothing wider than the window: no sideways scrolling, the header whole."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    logout = page.locator(".site-header button", has_text="Log out").bounding_box()
    assert 0 <= logout["x"] <= logout["x"] + logout["width"] <= width


def at_each_width(page: Page, name: str, check) -> None:
    """``check(page)`` at a phone's width and a desktop's, with a screenshot of each."""
    for width, height in PHONE, DESKTOP:
        page.set_viewport_size({"width": width, "height": height})
        check(page)
        shot(page, f"{name}-{width}")


def accessible(page: Page, name: str) -> None:
    """axe-core's checks of the page as it stands: none serious or critical."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make axe` (run by `make test`) installs axe-core")
    # Evaluated through the DevTools protocol, which the page's policy does not
    # govern: a <script> tag of it (add_script_tag) is inline, and refused.
    page.evaluate(AXE.read_text())
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes'][:3]]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not found, f"the {name} page: " + "; ".join(found)


def test_a_customer_buys_with_the_promotion_and_staff_see_it_in_the_report(stack, stack_mail, page):
    # As long as a username may be: the header must still fit a phone.
    username = f"reader{uuid.uuid4().hex[:6]}".ljust(150, "x")

    page.goto(f"{stack}/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username[:20]}@bücher.example")
    page.fill("#id_password1", "a long and unusual passphrase")
    page.fill("#id_password2", "a long and unusual passphrase")
    page.click("button[type=submit]")
    expect(page.locator(".messages")).to_contain_text(f"Welcome, {username}")
    banner = page.locator("[data-promotion-id]")
    expect(banner).to_have_count(1)

    def banner_states_the_rule_once(page: Page) -> None:
        fits_the_screen(page)
        expect(banner.locator(".banner-rule")).to_have_text(RULE)
        assert banner.inner_text().count("free") == 1
        expect(banner.locator(".banner-terms")).to_contain_text("Once per customer")

    at_each_width(page, "01-signed-up-home", banner_states_the_rule_once)
    accessible(page, "home")
    # The shop's icon, linked and where browsers look for it.
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", re.compile(r"favicon\.svg$"))
    assert page.request.get(f"{stack}/favicon.ico").status == 200

    page.goto(f"{stack}/?category=science-fiction")
    pills = page.locator("#recommendations .tag", has_text="Science Fiction")
    expect(pills.first).to_be_visible()

    def pills_stay_whole(page: Page) -> None:
        fits_the_screen(page)
        for index in range(pills.count()):
            # One box per pill: "Science Fiction" never breaks over two lines.
            assert pills.nth(index).evaluate("e => e.getClientRects().length") == 1

    at_each_width(page, "02-science-fiction-pills", pills_stay_whole)

    # Search, typed without the accents: "García Márquez" is found.
    page.goto(stack)
    page.fill("#search-q", "garcia marquez")
    page.click("#search button[type=submit]")

    def the_search_finds_the_book(page: Page) -> None:
        fits_the_screen(page)
        expect(page.locator("h1")).to_have_text("Results for “garcia marquez”")
        expect(
            page.locator("#catalog .book-title", has_text="Love in the Time of Cholera")
        ).to_be_visible()

    at_each_width(page, "02-search", the_search_finds_the_book)
    page.goto(stack)  # the categories keep a search: start from all books

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
        if index == 0:
            # Its cover drawn in the page, its year, and the way back to Fantasy.
            expect(page.locator("#cover svg[role=img]")).to_be_visible()
            expect(page.locator("#year")).to_contain_text("Published")
            expect(page.locator("#breadcrumb a", has_text="Fantasy")).to_be_visible()
            shot(page, "03-book")
            accessible(page, "book")
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

    def every_amount_shows(page: Page) -> None:
        fits_the_screen(page)
        width = page.viewport_size["width"]
        for amount in ("#cart-subtotal", "#cart-discount", "#cart-total", "#checkout"):
            expect(page.locator(amount)).to_be_visible()
            box = page.locator(amount).bounding_box()
            assert box["x"] + box["width"] <= width, amount
        assert money(page.inner_text("#cart-total")) == total
        expect(page.locator("tr.discount th")).to_contain_text(RULE)

    at_each_width(page, "03-cart", every_amount_shows)
    accessible(page, "cart")

    page.click("#checkout")
    expect(page.locator("h1")).to_have_text(re.compile(r"Order #\d+"))
    order_id = re.search(r"\d+", page.inner_text("h1")).group(0)
    assert money(page.inner_text("#order-total")) == total
    shot(page, "04-order-confirmation")
    accessible(page, "order")

    # Back, from the order to the cart it bought: the shop's cart as it is
    # now, not the browser's copy with "Place order".
    page.go_back()
    expect(page).to_have_url(re.compile(r"/cart/$"))
    expect(page.locator("main")).to_contain_text("Your cart is empty")
    expect(page.locator("#checkout")).to_have_count(0)
    shot(page, "04-back-after-the-order")

    page.goto(stack)
    expect(page.locator("[data-promotion-id]")).to_have_count(0)
    # Recommended from what they just bought, never one of those books.
    recommended = page.locator("#recommendations .book-title")
    expect(recommended.first).to_be_visible()
    assert not set(recommended.all_inner_texts()) & set(titles)
    shot(page, "05-home-banner-gone")

    page.click("#account-link")
    order_row = page.locator(f'#orders tr[data-order-id="{order_id}"]')

    def the_account_shows_the_order(page: Page) -> None:
        fits_the_screen(page)
        expect(order_row.locator(".order-status")).to_have_text("Placed")
        expect(page.locator("#change-email")).to_be_visible()
        expect(page.locator("#change-password")).to_be_visible()

    at_each_width(page, "05-account", the_account_shows_the_order)
    accessible(page, "account")

    page.click("text=Log out")
    # A visitor's home page: the best seller of every category, the books
    # just bought among them.
    page.goto(stack)
    expect(page.locator("#recommendations-title")).to_have_text("Best sellers")
    expect(page.locator("#recommendations .why", has_text="Best seller").first).to_be_visible()
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

    # Staff ship it; the worker e-mails the customer.
    page.select_option("#id_status", "shipped")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("changed successfully")
    subject = f"Subject: Your order #{order_id} is on its way"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        subject in mail.read_text(errors="replace") for mail in stack_mail.glob("*.log")
    ):
        time.sleep(1)
    assert any(subject in mail.read_text(errors="replace") for mail in stack_mail.glob("*.log"))


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
