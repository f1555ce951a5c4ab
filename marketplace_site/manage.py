#!/usr/bin/env python
"""Django's command-line utility for the marketplace."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace_site.settings.local")
    from django.core.management import execute_from_command_line

    from events.environment import exit_on_config_error
    from marketplace_site.startup import start

    start()
    with exit_on_config_error():  # a check made when a command starts (the relay's)
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
