"""Local development (`make run`): the shop as customers see it, e-mails to a
mailbox folder (var/mail), and the demo data's commands allowed."""

from marketplace_site.settings.base import *  # noqa: F403
from marketplace_site.settings.base import ENV

# Off by default, so `make run` shows the shop's own 404 and 500 pages, as a
# customer meets them; DJANGO_DEBUG=true gives Django's debug pages instead.
DEBUG = ENV.django_debug
# Static files straight from the source tree, debug or not: no collectstatic.
WHITENOISE_USE_FINDERS = True
# The demo staff account and promotion (`make run`) may be made here, and only here.
LOCAL_DEMO = True
# "mailbox" (one .eml file per e-mail in DJANGO_EMAIL_FILE_PATH and an INFO
# line naming it), "console", "file" (Django's: one file per connection),
# "smtp", or a dotted path.
_EMAIL_BACKENDS = {
    "mailbox": "marketplace_site.notifications.mailbox.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "smtp": "marketplace_site.notifications.smtp.EmailBackend",
}
EMAIL_BACKEND = _EMAIL_BACKENDS.get(ENV.django_email_backend, ENV.django_email_backend)
EMAIL_FILE_PATH = str(ENV.django_email_file_path)
