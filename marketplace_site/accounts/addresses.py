"""E-mail addresses as the shop takes, keeps and compares them.

Internationalized addresses are welcome: a domain in any script (bücher.de,
or its ASCII form xn--bcher-kva.de, which browsers send) and a local part in
any script (RFC 6531: josé@, 用户@), delivered with SMTPUTF8
(notifications/smtp.py). One spelling is kept per mailbox: lower case, the
domain in Unicode, so "Leser@XN--BCHER-KVA.de" and "leser@bücher.de" are one
address, found by a password reset typed either way and never shared by
two accounts.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, ProhibitNullCharactersValidator

INVALID = "Enter an e-mail address like name@example.com."


class AddressValidator(EmailValidator):
    """Django's rules for the domain (Unicode included); a local part may be
    Unicode too. No address is longer than SMTP carries (64 bytes before the @)."""

    message = INVALID
    user_regex = re.compile(
        # dot-atom, with UTF-8 atext (RFC 6531)
        r"(^[-!#$%&'*+/=?^_`{}|~0-9A-Z\u00a1-\U0010ffff]+"
        r"(\.[-!#$%&'*+/=?^_`{}|~0-9A-Z\u00a1-\U0010ffff]+)*\Z"
        # quoted-string, ASCII as in Django's
        r'|^"([\001-\010\013\014\016-\037!#-\[\]-\177]|\\[\001-\011\013\014\016-\177])'
        r'*"\Z)',
        re.IGNORECASE,
    )

    def __call__(self, value: str | None) -> None:
        if value and (not value.isprintable() or len(value.rpartition("@")[0].encode()) > 64):
            raise ValidationError(self.message, code=self.code, params={"value": value})
        super().__call__(value)


def address_normalize(value: str) -> str:
    """The one spelling the shop keeps of an address: lower case, with the
    domain's ASCII labels (xn--...) in Unicode. A value that is no address
    comes back lower-cased only, for the validator to refuse."""
    local, at, domain = value.strip().rpartition("@")
    if not at:
        return value.strip().lower()
    labels = []
    for label in domain.lower().split("."):
        try:
            labels.append(label.encode("ascii").decode("idna") if label else label)
        except UnicodeError:
            labels.append(label)
    return f"{local}@{'.'.join(labels)}".lower()


class AddressField(forms.EmailField):
    """An e-mail address in any script. A text input, not type=email: browsers
    refuse a local part in another script than Latin before the shop sees it."""

    default_validators = [AddressValidator()]
    default_error_messages = {"invalid": INVALID}
    widget = forms.TextInput(
        attrs={
            "inputmode": "email",
            "autocomplete": "email",
            "autocapitalize": "none",
            "spellcheck": "false",
        }
    )

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 254)  # auth_user.email's column
        super().__init__(**kwargs)
        # AddressValidator refuses a NUL with every other unprintable character, in its words.
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)
        ]

    def to_python(self, value: str | None) -> str | None:
        value = super().to_python(value)
        return address_normalize(value) if value else value
