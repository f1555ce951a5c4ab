"""Django's SMTP backend, able to reach internationalized addresses.

Django writes a domain in another script in its ASCII form (bücher.de as
xn--bcher-kva.de), which is right, but a local part in another script
(josé@, 用户@) as an RFC 2047 encoded word, in the envelope and in the
headers: no mail server delivers that to the mailbox meant. Such messages go out as RFC 6531 asks
instead: the addresses as they are, in UTF-8, with the SMTPUTF8 option, to
a server that offers it. A server that does not is said to refuse those
recipients, which emails_send logs and skips, as for any refused address.
"""

from __future__ import annotations

import smtplib
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.utils import getaddresses, parseaddr
from io import BytesIO

from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend as DjangoEmailBackend


class EmailBackend(DjangoEmailBackend):
    # Private in Django (send_messages calls it once open() has connected), so
    # django-stubs leaves it out.
    def _send(self, email_message: EmailMessage) -> bool:
        recipients = email_message.recipients()
        if not any(map(_needs_smtputf8, [email_message.from_email, *recipients])):
            return super()._send(email_message)  # type: ignore[misc]
        connection = self.connection
        assert connection is not None, "open() connects before any _send"
        try:
            connection.ehlo_or_helo_if_needed()
            if not connection.has_extn("smtputf8"):
                raise smtplib.SMTPRecipientsRefused(
                    {
                        address: (553, b"the mail server takes no internationalized address")
                        for address in recipients
                        if _needs_smtputf8(address)
                    }
                )
            connection.sendmail(
                email_message.from_email,
                [address for _, address in getaddresses(recipients)],
                _utf8_message(email_message),
                mail_options=["SMTPUTF8"],
            )
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True


def _needs_smtputf8(address: str) -> bool:
    """A local part in another script than ASCII; a domain in one Django
    writes in its ASCII form (xn--...), which every server takes."""
    return not parseaddr(address)[1].rpartition("@")[0].isascii()


def _utf8_message(email_message: EmailMessage) -> bytes:
    """The message with its addresses written as they are (UTF-8 headers)."""
    message = email_message.message()
    written = {
        "From": [email_message.from_email],
        "To": email_message.to,
        "Cc": email_message.cc,
        "Reply-To": email_message.reply_to,
    }
    for header, addresses in written.items():
        if header in message and addresses:
            del message[header]
            # Past Django's own __setitem__, which would encode them again.
            Message.__setitem__(message, header, ", ".join(addresses))
    written_out = BytesIO()
    BytesGenerator(written_out, policy=policy.SMTPUTF8.clone(linesep="\r\n")).flatten(message)
    return written_out.getvalue()
