"""`make run`'s e-mails: a file per e-mail a person opens, and one log line each."""

from __future__ import annotations

import email
import logging

from django.core.mail import EmailMessage, get_connection

from marketplace_site.settings import local


def test_each_email_is_a_file_a_mail_program_opens_and_one_info_line(tmp_path, caplog):
    mailbox = get_connection(
        "marketplace_site.notifications.mailbox.EmailBackend", file_path=str(tmp_path / "mail")
    )
    messages = [
        EmailMessage("Your order #7 is confirmed", "Thank you.", to=["ada@example.com"]),
        EmailMessage("A voucher for you", "10% off.", to=["bo@example.com", "cy@example.com"]),
        EmailMessage("Nobody", "Goes nowhere.", to=[]),
    ]
    with caplog.at_level(logging.INFO, logger="marketplace_site.notifications.mailbox"):
        assert mailbox.send_messages(messages) == 2

    files = sorted((tmp_path / "mail").glob("*.eml"))
    opened = [email.message_from_bytes(f.read_bytes()) for f in files]
    assert sorted(m["Subject"] for m in opened) == [
        "A voucher for you",
        "Your order #7 is confirmed",
    ]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert any(
        "ada@example.com" in line and "Your order #7 is confirmed" in line and ".eml" in line
        for line in lines
    )
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_the_local_run_writes_e_mails_to_var_mail_by_default():
    assert local.EMAIL_BACKEND == "marketplace_site.notifications.mailbox.EmailBackend"
    assert local.EMAIL_FILE_PATH.endswith("var/mail")
