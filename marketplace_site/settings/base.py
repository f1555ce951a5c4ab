"""Settings shared by every environment; values come from the environment."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from events.amqp import HEARTBEAT_SECONDS, broker_urls
from events.environment import ConfigError
from marketplace_site.env import SiteEnv, cache_settings

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BASE_DIR.parent

# Every variable, read once; a wrong one raises ConfigError naming it.
ENV = SiteEnv.from_env()

SECRET_KEY = ENV.django_secret_key
DEBUG = ENV.django_debug
# Whether `make run`'s demo data (a staff account with a published password,
# a promotion) may be made: local settings only.
LOCAL_DEMO = False
ALLOWED_HOSTS = ENV.django_allowed_hosts

INSTALLED_APPS = [
    # django.contrib.admin, with the shop's name and dashboard (admin_site.py).
    "marketplace_site.admin_apps.BookstoreAdminConfig",
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
    "marketplace_site.inbox",
    "marketplace_site.campaigns",
    "marketplace_site.notifications",
    "marketplace_site.vouchers",
    # Failed sign-ins counted per account and address; too many lock that pair out.
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header on every response (CONTENT_SECURITY_POLICY).
    "csp.middleware.CSPMiddleware",
    # Serves static files from any WSGI server, gunicorn included.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "marketplace_site.metrics.RequestMetricsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: answers a locked-out sign-in with its page.
    "axes.middleware.AxesMiddleware",
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

# SQLite in var/ unless DATABASE_URL says otherwise (postgres://user@host/db);
# marketplace_site.startup makes the folder.
DATABASES = {
    "default": dj_database_url.parse(ENV.database_url, conn_max_age=60, conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The site, the relay and the worker share the file: WAL lets readers
    # and one writer work at once; IMMEDIATE transactions take the write lock
    # up front, so writers queue (up to the timeout) instead of failing with
    # "database is locked" when a read turns into a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # An unreachable server fails a connection in seconds, not the OS's minutes:
    # the worker checks the database from its event loop (events.celery_consumer).
    _options.setdefault("connect_timeout", 5)
    try:
        _connect_timeout = float(_options["connect_timeout"])
    except ValueError:
        raise ConfigError(
            "DATABASE_URL: connect_timeout must be a number of seconds, "
            f"got {_options['connect_timeout']!r}"
        ) from None
    # A pool per process, shared by its threads, rather than a persistent
    # connection per thread: runserver answers each request on a new thread,
    # and each one left its connection open behind it until PostgreSQL refused
    # new clients. A request borrows a connection and gives it back when it
    # ends; more at once wait for one, as long as a connection may take.
    _pool_size = ENV.database_pool_size
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # kept by the pool instead (Django requires 0)
    _options.setdefault(
        "pool",
        {"min_size": 1, "max_size": _pool_size, "timeout": _connect_timeout},
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out sign-in before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# From the AXES_FAILURE_LIMIT-th failed sign-in for one account from one address,
# that pair is refused (429) for AXES_COOLOFF_TIME hours; a success resets the
# count. Per pair: a shared address (an office, a mobile carrier) stays open
# to its other customers, and a stolen list tried from one address is stopped.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The address the throttles take (behind PROXY_COUNT proxies, the outermost one's view).
AXES_CLIENT_IP_CALLABLE = "marketplace_site.clients.client_address"
# Sign-ins are not logged one row each: only failures are kept, for the admin.
AXES_DISABLE_ACCESS_LOG = True
# Its log: a warning per failure and per lockout, not a line per step of each.
AXES_VERBOSE = False

# Only the site's own scripts, styles, images and forms: an injected <script>
# or inline handler does not run, and no other site frames the shop's pages.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = ENV.django_time_zone
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = REPO_ROOT / "var" / "static"  # made by marketplace_site.startup
STATICFILES_DIRS = [BASE_DIR / "static"]

SESSION_ENGINE = "marketplace_site.sessions"

# The throttles count in the cache: each process its own here, one shared
# Redis in production (every gunicorn worker and replica counts together).
CACHES = {"default": cache_settings(ENV.cache_url)}
# Proxies in front of the site that append the client's address to
# X-Forwarded-For; the throttles take the address the outermost one saw.
PROXY_COUNT = ENV.django_proxy_count
# Password reset e-mails asked for per address, and per client, in an hour.
PASSWORD_RESET_PER_ADDRESS = ENV.password_reset_per_address
PASSWORD_RESET_PER_ADDRESS_TOTAL = ENV.password_reset_per_address_total
PASSWORD_RESET_PER_CLIENT = ENV.password_reset_per_client
PASSWORD_RESET_WINDOW = 3600

# Who may read /metrics: the host itself unless told otherwise (the relay's and
# the worker's are bound to 127.0.0.1 alike). A request that came through a
# proxy is refused whatever its address: it is a visitor's.
METRICS_ALLOWED_NETWORKS = ENV.metrics_allowed_networks
# The processes without a web server (relay, worker): their /metrics, if set.
METRICS_ADDR = ENV.metrics_addr
RELAY_METRICS_PORT = ENV.relay_metrics_port
WORKER_METRICS_PORT = ENV.worker_metrics_port

SHOP_CURRENCY = ENV.shop_currency
MARKETPLACE_PORT = ENV.marketplace_port
# Books on sale with this many copies or fewer are listed on the admin's dashboard.
LOW_STOCK_THRESHOLD = ENV.low_stock_threshold
# The demo catalog the loader reads by default (shared with the recommender).
DEMO_CATALOG = ENV.marketplace_demo_catalog

RECOMMENDER_TARGET = ENV.recommender_target
RECOMMENDER_TIMEOUT = ENV.recommender_timeout
# Consecutive failures that open the circuit, and seconds before it half-opens.
RECOMMENDER_BREAKER_FAILURES = ENV.recommender_breaker_failures
RECOMMENDER_BREAKER_RESET = ENV.recommender_breaker_reset
RECOMMENDATIONS_ENABLED = ENV.recommendations_enabled
# Seconds a recommender answer is reused per (user, category, size) in one process; 0: never.
RECOMMENDATIONS_CACHE_SECONDS = ENV.recommendations_cache_seconds
# The weekly digest's one stream carries every customer: a deadline for all of it.
RECOMMENDER_DIGEST_TIMEOUT = ENV.recommender_digest_timeout
# TLS to the recommender (see recommendations/channel.py): on when a CA or a
# client certificate is set; the client pair is for a recommender that
# requires client certificates (mutual TLS). Read and checked by the rules the
# recommender reads its own with (events.recommender_link.RecommenderLink).
RECOMMENDER_TLS_CA = ENV.recommender_tls_ca
RECOMMENDER_TLS_CLIENT_CERT = ENV.recommender_tls_client_cert
RECOMMENDER_TLS_CLIENT_KEY = ENV.recommender_tls_client_key
RECOMMENDER_TLS_SERVER_NAME = ENV.recommender_tls_server_name
# Sent as "authorization: Bearer <token>" on every call; must match the recommender's.
RECOMMENDER_AUTH_TOKEN = ENV.recommender_auth_token

# Links in e-mails are absolute: there is no request to build them from.
SITE_URL = ENV.site_url
DEFAULT_FROM_EMAIL = ENV.django_default_from_email

# Error reports show settings: hide the passwords inside AMQP_URL and its kin.
DEFAULT_EXCEPTION_REPORTER_FILTER = "marketplace_site.error_reports.UrlPasswordFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"trace": {"()": "events.tracing.TraceIdFilter"}},
    "formatters": {"default": {"()": "events.log_format.log_formatter", "kind": ENV.log_format}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "filters": ["trace"],
        }
    },
    "root": {"handlers": ["console"], "level": ENV.django_log_level},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- events and Celery --------------------------------------------------------
# One broker, or the nodes of a cluster separated by ";" (every client fails over).
AMQP_URL = ENV.amqp_url
BROKER_URLS = broker_urls(AMQP_URL)
EVENTS_NAMESPACE = ENV.events_namespace
# Deliveries of a failing event before it is parked in its dead-letter queue.
EVENTS_DELIVERY_LIMIT = ENV.events_delivery_limit
EVENTS_LOG_EACH = ENV.events_log_each
# Bytes of events the history stream keeps for new recommender replicas (the
# relay declares it; a stream's retention is fixed when it is first declared).
EVENTS_HISTORY_MAX_BYTES = ENV.events_history_max_bytes
# Unacknowledged events a worker holds per queue.
EVENTS_PREFETCH = ENV.events_prefetch
# Events a worker applies in one transaction (per queue), and how long a batch
# waits for more after its first event (milliseconds).
EVENTS_BATCH_SIZE = ENV.events_batch_size
EVENTS_BATCH_WAIT_MS = ENV.events_batch_wait_ms
# Rows the relay publishes per round, and its idle poll interval (seconds).
RELAY_BATCH_SIZE = ENV.relay_batch_size
RELAY_POLL_INTERVAL = ENV.relay_poll_interval
# On PostgreSQL each commit wakes the relay (LISTEN/NOTIFY): it polls only
# this often, for a notification lost with its connection.
RELAY_SAFETY_POLL_INTERVAL = ENV.relay_safety_poll_interval

# Every name Celery takes on the broker follows the namespace (events.topology).
_topology = ENV.topology
CELERY_BROKER_URL = AMQP_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = _topology.task_queue
CELERY_CONTROL_EXCHANGE = _topology.control_name
CELERY_EVENT_EXCHANGE = _topology.worker_events_exchange
CELERY_EVENT_QUEUE_PREFIX = _topology.worker_events_exchange
# Quorum queues like the event queues, replicated: a lost node must not lose
# beat's digest. Missing queues too, so a task sent to any queue is declared
# alike by the sender and by the worker.
CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = "quorum"
# A frozen node keeps its sockets open; heartbeats notice it (seconds).
CELERY_BROKER_HEARTBEAT = HEARTBEAT_SECONDS
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_EVENTS_CONSUMERS_FACTORY = "marketplace_site.event_handlers:event_consumers"
CELERY_BEAT_SCHEDULE = {
    "weekly-digest": {
        "task": "marketplace_site.notifications.tasks.send_weekly_digest",
        "schedule": crontab(minute=0, hour=8, day_of_week="mon"),
    }
}
