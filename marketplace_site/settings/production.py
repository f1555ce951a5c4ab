"""Production: secrets required, HTTPS everywhere, SMTP e-mail."""

from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from marketplace_site.settings.base import *  # noqa: F403
from marketplace_site.settings.base import BROKER_URLS, env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
if SECRET_KEY.startswith("insecure") or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a random string of 50+ characters")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("set DJANGO_ALLOWED_HOSTS (comma separated)")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# The broker: no default (the local one is guest's), and never the guest
# account, whose password everyone knows. A URL without a user means guest too.
AMQP_URL = env.str("AMQP_URL")  # the same value base.py already checked
if any(unquote(urlsplit(url).username or "guest") == "guest" for url in BROKER_URLS):
    raise ImproperlyConfigured(
        "AMQP_URL must not use RabbitMQ's guest account in production: create a user "
        "for the bookstore and set amqp://user:password@host:5672/vhost"
    )
CELERY_BROKER_URL = AMQP_URL

# One cache for every process and replica: the throttles count there.
CACHES = {"default": env.cache("CACHE_URL", "redis://127.0.0.1:6379/0")}

# TLS ends at the proxy in front of gunicorn, which sets X-Forwarded-Proto
# (and appends the client's address to X-Forwarded-For).
PROXY_COUNT = env.int("DJANGO_PROXY_COUNT", 1)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

# Django's SMTP backend, which also reaches internationalized addresses (SMTPUTF8).
EMAIL_BACKEND = "marketplace_site.notifications.smtp.EmailBackend"
EMAIL_HOST = env.str("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", 25)
EMAIL_HOST_USER = env.str("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.str("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.bool("DJANGO_EMAIL_USE_TLS", True)
# Seconds before a silent mail server fails the send (Django waits forever by default).
EMAIL_TIMEOUT = env.int("DJANGO_EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", "shop@localhost")
