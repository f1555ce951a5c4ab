"""Local development: debug on, e-mails to the console (or to files)."""

from marketplace_site.settings.base import *  # noqa: F403
from marketplace_site.settings.base import REPO_ROOT, env

DEBUG = env.bool("DJANGO_DEBUG", True)
# "console", "file" (one file per e-mail in DJANGO_EMAIL_FILE_PATH), or a dotted path.
_EMAIL_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
}
_email_backend = env.str("DJANGO_EMAIL_BACKEND", "console")
EMAIL_BACKEND = _EMAIL_BACKENDS.get(_email_backend, _email_backend)
EMAIL_FILE_PATH = env.str("DJANGO_EMAIL_FILE_PATH", str(REPO_ROOT / "var" / "emails"))
