"""The local runs' outbound mail: a mailbox folder a person opens, and a log line each.

`make run` sends every e-mail here (settings.local, DJANGO_EMAIL_BACKEND
"mailbox"): each becomes one ``.eml`` file in ``EMAIL_FILE_PATH`` (var/mail),
which any mail program opens, and one INFO line names its recipients, its
subject and its file. (Django's console backend printed whole messages to the
worker's output, where Celery logged each line as a WARNING.)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

log = logging.getLogger(__name__)


class EmailBackend(BaseEmailBackend):
    def __init__(self, file_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # EMAIL_FILE_PATH: set by the settings that pick this backend (settings/local.py).
        self.folder = Path(file_path or getattr(settings, "EMAIL_FILE_PATH"))  # noqa: B009

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            recipients = message.recipients()
            if not recipients:
                continue
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
            path.write_bytes(message.message().as_bytes())
            log.info("e-mail to %s: %s (%s)", ", ".join(recipients), message.subject, path)
            sent += 1
        return sent
