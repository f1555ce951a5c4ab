"""Settings shared by every environment; values come from the environment."""

from __future__ import annotations

from pathlib import Path

from marketplace_site.env import env

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BASE_DIR.parent

SECRET_KEY = env.str("DJANGO_SECRET_KEY", "insecure-local-development-key-do-not-use-in-production")
DEBUG = env.bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "marketplace_site.catalog",
    "marketplace_site.orders",
    "marketplace_site.promotions",
    "marketplace_site.outbox",
    "marketplace_site.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves static files from any WSGI server, gunicorn included.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "marketplace_site.correlation.CorrelationIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "marketplace_site.urls"
WSGI_APPLICATION = "marketplace_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "marketplace_site.orders.context_processors.cart",
            ],
        },
    },
]

# SQLite in var/ unless DATABASE_URL says otherwise (postgres://user@host/db).
(REPO_ROOT / "var").mkdir(exist_ok=True)
DATABASES = {
    "default": env.database(
        "DATABASE_URL", f"sqlite:///{REPO_ROOT / 'var' / 'marketplace.sqlite3'}"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = REPO_ROOT / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

SESSION_ENGINE = "django.contrib.sessions.backends.db"

SHOP_CURRENCY = env.str("SHOP_CURRENCY", "USD")
# The demo catalog the loader reads by default (shared with the recommender).
DEMO_CATALOG = Path(
    env.str("MARKETPLACE_DEMO_CATALOG", str(REPO_ROOT / "data" / "demo_catalog.csv"))
)

RECOMMENDER_TARGET = env.str("RECOMMENDER_TARGET", "127.0.0.1:50051")
RECOMMENDER_TIMEOUT = env.float("RECOMMENDER_TIMEOUT", 0.25)
# Consecutive failures that open the circuit, and seconds before it half-opens.
RECOMMENDER_BREAKER_FAILURES = env.int("RECOMMENDER_BREAKER_FAILURES", 5)
RECOMMENDER_BREAKER_RESET = env.float("RECOMMENDER_BREAKER_RESET", 30.0)
RECOMMENDATIONS_ENABLED = env.bool("RECOMMENDATIONS_ENABLED", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "marketplace_site.correlation.CorrelationIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["correlation"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
