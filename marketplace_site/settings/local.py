"""Local development: debug on, e-mails to the console."""

from marketplace_site.settings.base import *  # noqa: F403
from marketplace_site.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", True)
EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
