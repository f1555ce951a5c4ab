"""A password reset e-mail goes out through a real Celery worker, at most as
many as the throttle lets through, and its link really resets the password."""

from __future__ import annotations

import re
from email import message_from_string
from pathlib import Path

import pytest
from django.test import Client

from events.celery_app import app
from tests.events.broker import message_count, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SENT = "send_password_reset["


@pytest.fixture
def worker(topology, mail_worker):
    """The site's tasks go to this test's queue, which its worker consumes."""
    default, app.conf.task_default_queue = app.conf.task_default_queue, topology.task_queue
    try:
        yield mail_worker
    finally:
        app.conf.task_default_queue = default


def emails(mail_dir: Path) -> list:
    files = sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []
    # The file backend writes each message followed by a line of dashes.
    return [
        message_from_string(part.strip())
        for path in files
        for part in path.read_text().split("-" * 79)
        if part.strip()
    ]


def test_a_burst_of_requests_sends_the_allowed_number_of_emails_through_the_worker(
    settings, worker, topology, mail_dir, customer
):
    browser = Client()
    for _ in range(20):
        browser.post("/accounts/password_reset/", {"email": customer.email})

    allowed = settings.PASSWORD_RESET_PER_ADDRESS
    wait_until(lambda: worker.text().count(SENT) >= 2 * allowed, what="the tasks run")
    wait_until(lambda: message_count(topology.task_queue) == 0, what="the queue drained")
    sent = emails(mail_dir)
    assert len(sent) == allowed
    assert worker.text().count(" succeeded in ") == allowed
    assert {m["To"] for m in sent} == {customer.email}

    # The link works: a new password, and the customer logs in with it.
    body = sent[-1].get_payload(0).get_payload(decode=True).decode()
    [link] = re.findall(r"https?://[^/\s]+(/accounts/reset/\S+/)", body)
    form = browser.get(link, follow=True)
    assert form.status_code == 200
    done = browser.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a brand new secret 42", "new_password2": "a brand new secret 42"},
    )
    assert done.status_code == 302
    # Signing in with it, as the customer does (the form: django-axes counts each try).
    signed_in = Client().post(
        "/accounts/login/",
        {"username": customer.username, "password": "a brand new secret 42"},
    )
    assert (signed_in.status_code, signed_in["Location"]) == (302, "/")
