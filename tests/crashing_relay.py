"""The relay (manage.py run_relay) with a failpoint, for the fault tests: the
process dies (exit 137, no cleanup) right after the broker confirmed a batch,
before it marks the rows sent. Run as ``python -m tests.crashing_relay``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import django


def main() -> None:
    django.setup()
    from django.core.management import call_command

    from marketplace_site.outbox.management.commands import run_relay
    from marketplace_site.outbox.relay_source import DjangoOutboxSource

    class CrashAfterConfirm(DjangoOutboxSource):
        def finish(self, sent: Sequence[int], failed: dict[int, str]) -> None:
            if sent:
                os._exit(137)
            super().finish(sent, failed)

    run_relay.DjangoOutboxSource = CrashAfterConfirm
    call_command("run_relay")


if __name__ == "__main__":
    main()
