"""E-mail addresses: any script is welcome (and reached), and one address
belongs to one account, in any case and however a browser spells its domain."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core import mail
from django.db import IntegrityError, transaction
from django.test import Client

from marketplace_site.accounts.forms import ShopPasswordResetForm
from marketplace_site.emails import email_build, emails_send
from tests.marketplace.test_views import page

pytestmark = pytest.mark.django_db

PASSPHRASE = "a long and unusual passphrase"
TAKEN = "An account already has this e-mail address."


def sign_up(client: Client, username: str, email: str):
    return client.post(
        "/accounts/signup/",
        {"username": username, "email": email, "password1": PASSPHRASE, "password2": PASSPHRASE},
    )


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("leser@bücher.example", "leser@bücher.example"),
        # Chromium sends an address's domain in its ASCII form.
        ("Leser@XN--BCHER-KVA.example", "leser@bücher.example"),
        ("josé@exemple.fr", "josé@exemple.fr"),
        ("用户@例子.广告", "用户@例子.广告"),
    ],
)
def test_an_address_in_any_script_signs_up(client, typed, kept):
    response = sign_up(client, "reader", typed)

    assert response.status_code == 302, page(response).text("id_email_helptext")
    assert User.objects.get(username="reader").email == kept


def test_the_address_field_lets_the_browser_send_any_script(client):
    [field] = page(client.get("/accounts/signup/")).find("input", name="email")
    # type=email makes Chromium refuse "用户@例子.广告" before the shop sees it.
    assert (field.attrs["type"], field.attrs["inputmode"]) == ("text", "email")


@pytest.mark.parametrize("again", ["alice@example.com", "ALICE@Example.COM", " alice@example.com "])
def test_an_address_signs_up_once_in_any_case(client, customer, again):
    response = sign_up(client, "alice2", again)

    assert response.status_code == 400
    assert TAKEN in response.content.decode()
    assert not User.objects.filter(username="alice2").exists()


def test_an_idn_address_signs_up_once_however_its_domain_is_written(client):
    assert sign_up(Client(), "first", "leser@bücher.example").status_code == 302
    response = sign_up(client, "second", "leser@xn--bcher-kva.example")
    assert response.status_code == 400
    assert TAKEN in response.content.decode()


def test_the_database_holds_one_account_per_address_under_races(make_user):
    """Two sign-ups at once both pass the form's check: the index refuses the second."""
    make_user("first", email="reader@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("second", email="Reader@Example.com")


def test_staff_cannot_give_an_account_another_accounts_address(make_user):
    make_user("bob", email="bob@example.com")
    alice = make_user("alice", email="alice@example.com")
    staff = Client()
    staff.force_login(make_user("boss", is_staff=True, is_superuser=True))
    url = f"/admin/auth/user/{alice.pk}/change/"
    form = {
        "username": "alice",
        "email": "BOB@example.com",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "is_active": "on",
    }

    refused = staff.post(url, form)
    assert refused.status_code == 200  # the form again
    assert "email" in refused.context["adminform"].form.errors
    # An address in another script than Latin is one staff can set.
    assert staff.post(url, {**form, "email": "josé@exemple.fr"}).status_code == 302
    alice.refresh_from_db()
    assert alice.email == "josé@exemple.fr"


@pytest.mark.parametrize("typed", ["LESER@bücher.example", "leser@xn--bcher-kva.example"])
def test_a_password_reset_finds_the_account_however_the_address_is_typed(make_user, typed):
    reader = make_user("reader", email="leser@bücher.example")
    form = ShopPasswordResetForm({"email": typed})
    assert form.is_valid()
    assert list(form.get_users(form.cleaned_data["email"])) == [reader]


def test_existing_accounts_sharing_an_address_stop_the_migration_naming_them(make_user):
    """The data migration's note: which account keeps an address is the shop's call."""
    from importlib import import_module

    migration = import_module("marketplace_site.accounts.migrations.0001_one_account_per_address")
    make_user("one", email="leser@bücher.example")
    two = make_user("two", email="leser@xn--bcher-kva.example")  # the same mailbox

    with pytest.raises(RuntimeError, match=r"leser@bücher\.example: accounts \d+, \d+"):
        migration.normalize_addresses_refusing_shared_ones(apps, None)

    two.delete()
    make_user("three", email="Someone@XN--BCHER-KVA.example")
    migration.normalize_addresses_refusing_shared_ones(apps, None)
    assert User.objects.get(username="three").email == "someone@bücher.example"


def test_the_login_page_leads_to_the_shops_password_reset(client):
    login = page(client.get("/accounts/login/"))
    assert login.find("a", href="/accounts/password_reset/")
    reset = client.get("/accounts/password_reset/")
    assert b'class="site-header"' in reset.content
    assert b"Django administration" not in reset.content


# --- delivery ----------------------------------------------------------------------


def confirmation(to: str):
    return email_build(
        to=to,
        subject="Set a new password",
        template="password_reset",
        context={"user": User(username="reader"), "reset_url": "http://shop/reset/"},
    )


def test_an_address_in_another_script_is_mailed_as_it_is(mail_server):
    server = mail_server(smtputf8=True)

    assert emails_send([confirmation("用户@例子.广告"), confirmation("ascii@example.com")]) == 2

    sent = b"\n".join(server.commands).decode()
    assert "rcpt TO:<用户@例子.广告>" in sent
    assert "SMTPUTF8" in sent.splitlines()[1]  # the first MAIL FROM's options
    assert "To: 用户@例子.广告".encode() in server.messages[0]
    assert b"To: ascii@example.com" in server.messages[1]


def test_a_server_without_smtputf8_refuses_it_and_the_others_still_go(mail_server, caplog):
    server = mail_server(smtputf8=False)

    sent = emails_send([confirmation("josé@exemple.fr"), confirmation("leser@bücher.example")])

    assert sent == 1
    # A domain alone in another script needs no SMTPUTF8: its ASCII form is taken anywhere.
    assert b"rcpt TO:<leser@xn--bcher-kva.example>" in server.commands
    assert len(server.messages) == 1
    assert "josé@exemple.fr (553)" in caplog.text
    assert mail.outbox == []
