"""The bench's e-mail backend: each message serialized exactly as the SMTP
backend serializes it, then dropped.

The worker's cost for an e-mail, up to the socket, without a mail server
sharing the machine's two cores; locmem, the test backend, deep-copies every
message as well, which no production backend does.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            message.message().as_bytes(linesep="\r\n")
        return len(email_messages)
