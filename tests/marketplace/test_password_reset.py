"""Password reset requests: throttled per address and per client, answered
alike whether the account exists or not, and never sent inside the request
(the worker sends them: tests/events/test_password_reset.py)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from django.core import mail
from django.test import Client

from events.celery_app import app
from marketplace_site.env import cache_settings
from tests.events.broker import connection, message_count
from tests.processes import MANAGE

pytestmark = pytest.mark.django_db

URL = "/accounts/password_reset/"
THROTTLED = "Too many password reset requests"


@pytest.fixture
def task_queue() -> str:
    """The Celery task queue of this test alone, removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}.tasks"
    default, app.conf.task_default_queue = app.conf.task_default_queue, name
    yield name
    app.conf.task_default_queue = default
    with connection() as conn, conn.channel() as channel:
        channel.queue_delete(name)
        channel.exchange_delete(name)


def request_reset(client: Client, email: str, **extra):
    return client.post(URL, {"email": email}, **extra)


def test_a_burst_for_one_address_queues_only_the_allowed_number(settings, task_queue, customer):
    client = Client()
    answers = [request_reset(client, customer.email).status_code for _ in range(20)]

    allowed = settings.PASSWORD_RESET_PER_ADDRESS
    assert answers == [302] * allowed + [429] * (20 - allowed)
    assert message_count(task_queue) == allowed
    assert mail.outbox == []  # nothing is sent inside the request
    # Another address from elsewhere is not held up by it.
    assert request_reset(Client(REMOTE_ADDR="198.51.100.4"), "bob@example.com").status_code == 302


def test_the_answer_is_the_same_for_an_account_and_for_no_account(task_queue, customer):
    answers = {}
    for email in (customer.email, "nobody@example.com"):
        client = Client(REMOTE_ADDR=f"198.51.100.{len(answers) + 1}")
        accepted = request_reset(client, email)
        done = client.get(accepted["Location"])
        for _ in range(30):
            throttled = request_reset(client, email)
            if throttled.status_code == 429:
                break
        answers[email] = (
            accepted.status_code,
            accepted["Location"],
            done.status_code,
            done.content.decode(),
            throttled.status_code,
            throttled.content.decode().replace(email, "EMAIL").count(THROTTLED),
        )
    assert answers[customer.email] == answers["nobody@example.com"]
    assert answers[customer.email][-2:] == (429, 1)


def test_one_client_cannot_ask_for_many_addresses(settings, task_queue):
    client = Client(REMOTE_ADDR="203.0.113.9")
    allowed = settings.PASSWORD_RESET_PER_CLIENT
    answers = [
        request_reset(client, f"user{i}@example.com").status_code for i in range(allowed + 3)
    ]
    assert answers == [302] * allowed + [429] * 3
    assert message_count(task_queue) == allowed
    assert request_reset(Client(REMOTE_ADDR="203.0.113.10"), "x@example.com").status_code == 302


def test_a_stranger_cannot_use_up_the_owners_resets(settings, task_queue, customer):
    stranger = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(settings.PASSWORD_RESET_PER_ADDRESS + 2):
        request_reset(stranger, customer.email)
    assert request_reset(stranger, customer.email).status_code == 429
    owner = Client(REMOTE_ADDR="203.0.113.50")
    assert request_reset(owner, customer.email).status_code == 302


def test_one_address_is_held_whatever_the_clients(settings, task_queue, customer):
    allowed = settings.PASSWORD_RESET_PER_ADDRESS_TOTAL
    answers = [
        request_reset(Client(REMOTE_ADDR=f"198.51.100.{i + 1}"), customer.email).status_code
        for i in range(allowed + 2)
    ]
    assert answers == [302] * allowed + [429] * 2
    assert message_count(task_queue) == allowed


def test_addresses_of_one_ipv6_subscriber_count_as_one_client(settings, task_queue):
    allowed = settings.PASSWORD_RESET_PER_CLIENT
    for i in range(allowed):
        client = Client(REMOTE_ADDR=f"2001:db8:1:2::{i + 1:x}")
        assert request_reset(client, f"user{i}@example.com").status_code == 302
    elsewhere_in_the_64 = Client(REMOTE_ADDR="2001:db8:1:2:ffff::1")
    assert request_reset(elsewhere_in_the_64, "more@example.com").status_code == 429
    another_subscriber = Client(REMOTE_ADDR="2001:db8:1:3::1")
    assert request_reset(another_subscriber, "more@example.com").status_code == 302


def test_behind_a_proxy_clients_are_told_apart_by_the_address_it_saw(settings, task_queue):
    settings.PROXY_COUNT = 1
    proxy = Client(REMOTE_ADDR="10.0.0.2")  # every request comes from the proxy
    allowed = settings.PASSWORD_RESET_PER_CLIENT
    for i in range(allowed):
        forwarded = {"X-Forwarded-For": "203.0.113.9"}
        assert request_reset(proxy, f"user{i}@example.com", headers=forwarded).status_code == 302
    # A client cannot pass for another by adding an address of its own in front.
    spoofed = {"X-Forwarded-For": "192.0.2.1, 203.0.113.9"}
    assert request_reset(proxy, "more@example.com", headers=spoofed).status_code == 429
    other = {"X-Forwarded-For": "198.51.100.7"}
    assert request_reset(proxy, "more@example.com", headers=other).status_code == 302


def test_an_invalid_address_is_refused_and_queues_nothing(task_queue):
    client = Client()
    assert request_reset(client, "someone@example.com").status_code == 302
    for bad in ("not an address", "x" * 300 + "@example.com"):
        response = request_reset(client, bad)
        assert response.status_code == 400
        assert response.context["form"].errors["email"]
    assert message_count(task_queue) == 1


@pytest.fixture
def redis_cache(settings) -> dict[str, str]:
    """Django's cache in the local Redis, under a prefix of this test's own."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    cache = {**cache_settings("redis://127.0.0.1:6379/15"), "KEY_PREFIX": prefix}
    settings.CACHES = {"default": cache}
    settings.PASSWORD_RESET_WINDOW = 60  # what the test counts expires soon after
    return cache


def test_with_redis_every_process_counts_together(settings, redis_cache, task_queue):
    client = Client()
    for _ in range(settings.PASSWORD_RESET_PER_ADDRESS):
        assert request_reset(client, "carol@example.com").status_code == 302
    # Another site process (a gunicorn worker, a replica) sees the same count.
    asked = (
        "from django.conf import settings\n"
        f"settings.CACHES = {{'default': {redis_cache!r}}}\n"
        "from marketplace_site.throttle import throttle_allows\n"
        "print(throttle_allows(scope='password-reset:address', key='carol@example.com',"
        f" limit={settings.PASSWORD_RESET_PER_ADDRESS}, window=60))\n"
    )
    result = subprocess.run(
        [sys.executable, MANAGE, "shell", "-c", asked],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip().splitlines()[-1:] == ["False"], result.stdout + result.stderr


def test_without_the_cache_no_reset_is_taken_and_the_answer_says_so(settings, task_queue, customer):
    settings.CACHES = {"default": cache_settings("redis://127.0.0.1:1/0")}
    answers = set()
    for email in (customer.email, "nobody@example.com"):
        response = request_reset(Client(), email)
        answers.add((response.status_code, "unavailable right now" in response.content.decode()))
    assert answers == {(503, True)}


def test_every_page_of_a_reset_and_of_a_password_change_is_the_shops(client, customer):
    """Not the admin's: Django falls back to its templates for the pages a
    shop does not write."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(customer.pk))
    token = default_token_generator.make_token(customer)
    link = client.get(f"/accounts/reset/{uid}/{token}/", follow=True)
    assert b"Set a new password" in link.content
    done = client.post(
        link.redirect_chain[-1][0],
        {"new_password1": "a fresh long passphrase", "new_password2": "a fresh long passphrase"},
        follow=True,
    )
    pages = {
        "sent": client.get("/accounts/password_reset/done/"),
        "link used": client.get(f"/accounts/reset/{uid}/{token}/", follow=True),
        "complete": done,
    }
    assert b"Your new password is set" in done.content
    assert b"This link no longer works" in pages["link used"].content
    customer.refresh_from_db()  # its new password, or the session is refused
    client.force_login(customer)
    pages["change"] = client.get("/accounts/password_change/")
    pages["changed"] = client.get("/accounts/password_change/done/")
    for name, page in pages.items():
        assert page.status_code == 200, name
        assert b'class="site-header"' in page.content, name
        assert b"Django administration" not in page.content, name
