"""The whole shop, started the way `make run` starts it, used in a real browser.

Headless Chromium from Debian's package, driven by Playwright (its own
browser download is never used). A customer signs up, browses, gets
recommendations, buys three books with the promotion, checks out; then staff
see the order in the campaign report once the worker has processed it.
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`make run` in a sandbox of its own: own database, store, queues and ports."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    home = tmp_path_factory.mktemp("stack")
    port = free_port()
    recommender = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{home / 'marketplace.sqlite3'}",
        "MARKETPLACE_PORT": str(port),
        "RECOMMENDER_LISTEN": recommender,
        "RECOMMENDER_TARGET": recommender,
        "RECOMMENDER_DB": str(home / "recommender.sqlite3"),
        "RECOMMENDER_INSTANCE": "browser-test",
        "EVENTS_NAMESPACE": f"e2e-{uuid.uuid4().hex[:8]}",
        "RECOMMENDER_METRICS_PORT": str(free_port()),
        "RELAY_METRICS_PORT": str(free_port()),
        "WORKER_METRICS_PORT": str(free_port()),
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "DJANGO_EMAIL_FILE_PATH": str(home / "mail"),
        # A page must not wait on a slow first gRPC connection in this test.
        "RECOMMENDER_TIMEOUT": "1.0",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (home / "stack.log").open("w")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _answers(f"{base}/readyz"), 120, "the site", home)
        _wait_for(lambda: _recommender_ready(home), 60, "the recommender", home)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(home / "stack.log", ARTIFACTS / "stack.log")


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _recommender_ready(home: Path) -> bool:
    return "recommender.1" in (text := (home / "stack.log").read_text()) and " ready" in text


def _wait_for(condition, timeout: float, what: str, home: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not come up:\n{(home / 'stack.log').read_text()[-5000:]}")


@pytest.fixture
def page(request):
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
