"""Settings shared by every environment; values come from the environment."""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from events.amqp import HEARTBEAT_SECONDS, broker_urls
from events.contracts import is_currency_code
from events.topology import DEFAULT_HISTORY_MAX_BYTES, Topology
from marketplace_site.env import env

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BASE_DIR.parent

SECRET_KEY = env.str("DJANGO_SECRET_KEY", "insecure-local-development-key-do-not-use-in-production")
DEBUG = env.bool("DJANGO_DEBUG", False)
# Whether `make run`'s demo data (a staff account with a published password,
# a promotion) may be made: local settings only.
LOCAL_DEMO = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

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
    "marketplace_site.correlation.CorrelationIdMiddleware",
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

# SQLite in var/ unless DATABASE_URL says otherwise (postgres://user@host/db).
(REPO_ROOT / "var").mkdir(exist_ok=True)
DATABASES = {
    "default": env.database(
        "DATABASE_URL", f"sqlite:///{REPO_ROOT / 'var' / 'marketplace.sqlite3'}"
    )
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
        raise ImproperlyConfigured(
            "DATABASE_URL: connect_timeout must be a number of seconds, "
            f"got {_options['connect_timeout']!r}"
        ) from None
    # A pool per process, shared by its threads, rather than a persistent
    # connection per thread: runserver answers each request on a new thread,
    # and each one left its connection open behind it until PostgreSQL refused
    # new clients. A request borrows a connection and gives it back when it
    # ends; more at once wait for one, as long as a connection may take.
    _pool_size = env.int("DATABASE_POOL_SIZE", 10)
    if _pool_size < 1:
        raise ImproperlyConfigured(f"DATABASE_POOL_SIZE must be at least 1, got {_pool_size}")
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
TIME_ZONE = env.str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = REPO_ROOT / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise looks here at start-up
STATICFILES_DIRS = [BASE_DIR / "static"]

SESSION_ENGINE = "marketplace_site.sessions"

# The throttles count in the cache: each process its own here, one shared
# Redis in production (every gunicorn worker and replica counts together).
CACHES = {"default": env.cache("CACHE_URL", "locmem://")}
# Proxies in front of the site that append the client's address to
# X-Forwarded-For; the throttles take the address the outermost one saw.
PROXY_COUNT = env.int("DJANGO_PROXY_COUNT", 0)
# Password reset e-mails asked for per address, and per client, in an hour.
PASSWORD_RESET_PER_ADDRESS = env.int("PASSWORD_RESET_PER_ADDRESS", 3)
PASSWORD_RESET_PER_ADDRESS_TOTAL = env.int("PASSWORD_RESET_PER_ADDRESS_TOTAL", 10)
PASSWORD_RESET_PER_CLIENT = env.int("PASSWORD_RESET_PER_CLIENT", 10)
PASSWORD_RESET_WINDOW = 3600

# Who may read /metrics: the host itself unless told otherwise (the relay's and
# the worker's are bound to 127.0.0.1 alike). A request that came through a
# proxy is refused whatever its address: it is a visitor's.
METRICS_ALLOWED_NETWORKS = env.networks("METRICS_ALLOWED_NETWORKS", ["127.0.0.1", "::1"])

SHOP_CURRENCY = env.str("SHOP_CURRENCY", "USD")
if not is_currency_code(SHOP_CURRENCY):
    # Every event carries it, and the worker parks an event with another.
    raise ImproperlyConfigured(
        f"SHOP_CURRENCY must be a three-letter code like USD, got {SHOP_CURRENCY!r}"
    )
MARKETPLACE_PORT = env.int("MARKETPLACE_PORT", 8000)
# Books on sale with this many copies or fewer are listed on the admin's dashboard.
LOW_STOCK_THRESHOLD = env.int("LOW_STOCK_THRESHOLD", 3)
if LOW_STOCK_THRESHOLD < 0:
    raise ImproperlyConfigured(f"LOW_STOCK_THRESHOLD must be 0 or more, got {LOW_STOCK_THRESHOLD}")
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
# Seconds a recommender answer is reused per (user, category, size) in one process; 0: never.
RECOMMENDATIONS_CACHE_SECONDS = env.float("RECOMMENDATIONS_CACHE_SECONDS", 30.0)
# The weekly digest's one stream carries every customer: a deadline for all of it.
RECOMMENDER_DIGEST_TIMEOUT = env.float("RECOMMENDER_DIGEST_TIMEOUT", 60.0)
# TLS to the recommender (see recommendations/channel.py): on when a CA or a
# client certificate is set; the client pair is for a recommender that
# requires client certificates (mutual TLS).
RECOMMENDER_TLS_CA = env.file("RECOMMENDER_TLS_CA")
RECOMMENDER_TLS_CLIENT_CERT = env.file("RECOMMENDER_TLS_CLIENT_CERT")
RECOMMENDER_TLS_CLIENT_KEY = env.file("RECOMMENDER_TLS_CLIENT_KEY")
if (RECOMMENDER_TLS_CLIENT_CERT is None) != (RECOMMENDER_TLS_CLIENT_KEY is None):
    raise ImproperlyConfigured(
        "set both RECOMMENDER_TLS_CLIENT_CERT and RECOMMENDER_TLS_CLIENT_KEY, or neither"
    )
RECOMMENDER_TLS_SERVER_NAME = env.str("RECOMMENDER_TLS_SERVER_NAME", "")
# Sent as "authorization: Bearer <token>" on every call; must match the recommender's.
RECOMMENDER_AUTH_TOKEN = env.str("RECOMMENDER_AUTH_TOKEN", "")
if not (RECOMMENDER_AUTH_TOKEN.isascii() and RECOMMENDER_AUTH_TOKEN.isprintable()) or (
    " " in RECOMMENDER_AUTH_TOKEN
):
    # gRPC would refuse it on every call; the value itself stays out of the message.
    raise ImproperlyConfigured("RECOMMENDER_AUTH_TOKEN must be printable ASCII without spaces")

# Links in e-mails are absolute: there is no request to build them from.
SITE_URL = env.str("SITE_URL", "http://127.0.0.1:8000")
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", "shop@localhost")

# Error reports show settings: hide the passwords inside AMQP_URL and its kin.
DEFAULT_EXCEPTION_REPORTER_FILTER = "marketplace_site.error_reports.UrlPasswordFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "events.correlation.CorrelationIdFilter"}},
    "formatters": {"default": {"()": "events.log_format.log_formatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "filters": ["correlation"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- events and Celery --------------------------------------------------------
# One broker, or the nodes of a cluster separated by ";" (every client fails over).
AMQP_URL = env.str("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
try:
    BROKER_URLS = broker_urls(AMQP_URL)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
EVENTS_NAMESPACE = env.str("EVENTS_NAMESPACE", "bookstore")
# Deliveries of a failing event before it is parked in its dead-letter queue.
EVENTS_DELIVERY_LIMIT = env.int("EVENTS_DELIVERY_LIMIT", 5)
# Bytes of events the history stream keeps for new recommender replicas (the
# relay declares it; a stream's retention is fixed when it is first declared).
EVENTS_HISTORY_MAX_BYTES = env.int("EVENTS_HISTORY_MAX_BYTES", DEFAULT_HISTORY_MAX_BYTES)
if EVENTS_HISTORY_MAX_BYTES < 1:
    raise ImproperlyConfigured(
        f"EVENTS_HISTORY_MAX_BYTES must be at least 1, got {EVENTS_HISTORY_MAX_BYTES}"
    )
# Unacknowledged events a worker holds per queue.
EVENTS_PREFETCH = env.int("EVENTS_PREFETCH", 64)
# Events a worker applies in one transaction (per queue), and how long a batch
# waits for more after its first event (milliseconds).
EVENTS_BATCH_SIZE = env.int("EVENTS_BATCH_SIZE", 32)
EVENTS_BATCH_WAIT_MS = env.float("EVENTS_BATCH_WAIT_MS", 5)
# Rows the relay publishes per round, and its idle poll interval (seconds).
RELAY_BATCH_SIZE = env.int("RELAY_BATCH_SIZE", 200)
RELAY_POLL_INTERVAL = env.float("RELAY_POLL_INTERVAL", 0.05)
# On PostgreSQL each commit wakes the relay (LISTEN/NOTIFY): it polls only
# this often, for a notification lost with its connection.
RELAY_SAFETY_POLL_INTERVAL = env.float("RELAY_SAFETY_POLL_INTERVAL", 1.0)

# Every name Celery takes on the broker follows the namespace (events.topology).
_topology = Topology(namespace=EVENTS_NAMESPACE)
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
