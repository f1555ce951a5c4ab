"""The site's environment variables (and the relay's and the worker's, which run
its code): read once, by settings/base.py, with every process's rules
(events.environment). Each field reads the variable of its name in capitals.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import dj_database_url
from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_settings import NoDecode

from events.amqp import BrokerEnv, BrokerUrl, broker_urls
from events.contracts import is_currency_code
from events.environment import CommaList, Count, Duration, Flag, LogFormat, LogLevel, Port
from events.metrics import DEFAULT_METRICS_ADDR
from events.recommender_link import RecommenderLink
from events.topology import DEFAULT_HISTORY_MAX_BYTES

REPO_ROOT = Path(__file__).resolve().parent.parent


def _database_url(url: str) -> str:
    try:
        dj_database_url.parse(url)
    except ValueError as exc:
        raise ValueError(f"is not a database URL: {exc}") from None
    return url


def _cache_url(url: str) -> str:
    if urlsplit(url).scheme not in ("redis", "rediss", "locmem"):
        # The scheme only: the rest may hold a password.
        scheme = urlsplit(url).scheme or "no"
        raise ValueError(f"must be redis://host:port/db or locmem://, got {scheme} scheme")
    return url


def _networks(value: object) -> object:
    """Comma-separated IP networks (10.0.0.0/8) or addresses (one host each)."""
    if not isinstance(value, str):
        return value
    networks = []
    for item in filter(None, (item.strip() for item in value.split(","))):
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"must be IP addresses or networks, got {item!r}") from None
    return networks


def _currency(code: str) -> str:
    if not is_currency_code(code):
        # Every event carries it, and the worker parks an event with another.
        raise ValueError(f"must be a three-letter code like USD, got {code!r}")
    return code


def cache_settings(url: str) -> dict[str, Any]:
    """Django's CACHES entry for a CacheUrl."""
    if urlsplit(url).scheme == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}


DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
# redis://host:port/db (rediss:// with TLS), or locmem:// (each process its own).
CacheUrl = Annotated[str, AfterValidator(_cache_url)]
Networks = Annotated[list[IPv4Network | IPv6Network], NoDecode, BeforeValidator(_networks)]
Positive = Annotated[int, Field(ge=1)]


class SiteEnv(BrokerEnv, RecommenderLink):
    """Every setting the site's processes read, with the local defaults."""

    django_secret_key: str = Field(
        "insecure-local-development-key-do-not-use-in-production", repr=False
    )
    django_debug: Flag = False
    django_allowed_hosts: CommaList = ["localhost", "127.0.0.1", "[::1]"]
    django_time_zone: str = "UTC"
    django_log_level: LogLevel = "INFO"
    log_format: LogFormat = "plain"
    # SQLite in var/ unless set (postgres://user@host/db).
    database_url: DatabaseUrl = Field(
        f"sqlite:///{REPO_ROOT / 'var' / 'marketplace.sqlite3'}", repr=False
    )
    database_pool_size: Positive = 10
    cache_url: CacheUrl = "locmem://"
    django_proxy_count: Count = 0
    password_reset_per_address: Count = 3
    password_reset_per_address_total: Count = 10
    password_reset_per_client: Count = 10
    metrics_allowed_networks: Networks = [ip_network("127.0.0.1"), ip_network("::1")]
    shop_currency: Annotated[str, AfterValidator(_currency)] = "USD"
    marketplace_port: Port = 8000
    low_stock_threshold: Count = 3
    marketplace_demo_catalog: Path = REPO_ROOT / "data" / "demo_catalog.csv"
    site_url: str = "http://127.0.0.1:8000"
    django_default_from_email: str = "shop@localhost"
    # Local settings' e-mail: a backend's short name or dotted path, and the mailbox.
    django_email_backend: str = "mailbox"
    django_email_file_path: Path = REPO_ROOT / "var" / "mail"

    recommender_target: str = "127.0.0.1:50051"
    recommender_timeout: Duration = 0.25
    recommender_breaker_failures: Count = 5
    recommender_breaker_reset: Duration = 30.0
    recommendations_enabled: Flag = True
    recommendations_cache_seconds: Duration = 30.0
    recommender_digest_timeout: Duration = 60.0

    events_history_max_bytes: Positive = DEFAULT_HISTORY_MAX_BYTES
    events_prefetch: Positive = 64
    events_batch_size: Positive = 32
    events_batch_wait_ms: Duration = 5.0
    relay_batch_size: Positive = 200
    relay_poll_interval: Duration = 0.05
    relay_safety_poll_interval: Duration = 1.0
    relay_metrics_port: Port | None = None
    worker_metrics_port: Port | None = None
    metrics_addr: str = DEFAULT_METRICS_ADDR


def _secret_key(key: str) -> str:
    if key.startswith("insecure") or len(key) < 50:
        raise ValueError("must be a random string of 50+ characters")
    return key


def _no_guest(value: str) -> str:
    # A URL without a user logs in as guest too.
    if any(unquote(urlsplit(url).username or "guest") == "guest" for url in broker_urls(value)):
        raise ValueError(
            "must not use RabbitMQ's guest account in production: create a user "
            "for the bookstore and set amqp://user:password@host:5672/vhost"
        )
    return value


class ProductionEnv(SiteEnv):
    """Production: its secrets required, no guest broker, and its own defaults."""

    django_secret_key: Annotated[str, AfterValidator(_secret_key)] = Field(repr=False)
    django_allowed_hosts: CommaList = []
    django_csrf_trusted_origins: CommaList = []
    # No default: the local one is guest's, whose password everyone knows.
    amqp_url: Annotated[BrokerUrl, AfterValidator(_no_guest)] = Field(
        validation_alias="AMQP_URL", repr=False
    )
    cache_url: CacheUrl = "redis://127.0.0.1:6379/0"
    django_proxy_count: Count = 1
    django_secure_ssl_redirect: Flag = True
    django_hsts_seconds: Count = 60 * 60 * 24 * 365
    django_email_host: str = "localhost"
    django_email_port: Port = 25
    django_email_host_user: str = ""
    django_email_host_password: str = Field("", repr=False)
    django_email_use_tls: Flag = True
    django_email_timeout: Count = 10

    @model_validator(mode="after")
    def _hosts(self) -> ProductionEnv:
        if not self.django_allowed_hosts:
            raise ValueError("set DJANGO_ALLOWED_HOSTS (comma separated)")
        return self
