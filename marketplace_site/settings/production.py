"""Production: secrets required, HTTPS everywhere, SMTP e-mail."""

from marketplace_site.env import ProductionEnv, cache_settings
from marketplace_site.settings.base import *  # noqa: F403

# The same variables with production's rules: DJANGO_SECRET_KEY,
# DJANGO_ALLOWED_HOSTS and AMQP_URL (never RabbitMQ's guest) are required.
ENV = ProductionEnv.from_env()

DEBUG = False
SECRET_KEY = ENV.django_secret_key
ALLOWED_HOSTS = ENV.django_allowed_hosts
CSRF_TRUSTED_ORIGINS = ENV.django_csrf_trusted_origins

AMQP_URL = ENV.amqp_url
CELERY_BROKER_URL = AMQP_URL

# One cache for every process and replica: the throttles count there.
CACHES = {"default": cache_settings(ENV.cache_url)}

# TLS ends at the proxy in front of gunicorn, which sets X-Forwarded-Proto
# (and appends the client's address to X-Forwarded-For).
PROXY_COUNT = ENV.django_proxy_count
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = ENV.django_secure_ssl_redirect
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = ENV.django_hsts_seconds
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
EMAIL_HOST = ENV.django_email_host
EMAIL_PORT = ENV.django_email_port
EMAIL_HOST_USER = ENV.django_email_host_user
EMAIL_HOST_PASSWORD = ENV.django_email_host_password
EMAIL_USE_TLS = ENV.django_email_use_tls
# Seconds before a silent mail server fails the send (Django waits forever by default).
EMAIL_TIMEOUT = ENV.django_email_timeout
DEFAULT_FROM_EMAIL = ENV.django_default_from_email
