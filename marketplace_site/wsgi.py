"""WSGI entry point for gunicorn: marketplace_site.wsgi:application."""

import os

from django.core.wsgi import get_wsgi_application

from marketplace_site.startup import start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace_site.settings.production")
start()

application = get_wsgi_application()
