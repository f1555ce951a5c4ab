"""The marketplace's one typed reader of environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Env:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        return None if value is None else value.strip()

    def str(self, name: str, default: str | None = None) -> str:
        value = self._raw(name)
        if value:
            return value
        if default is None:
            raise ImproperlyConfigured(f"set the environment variable {name}")
        return default

    def bool(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")

    def int(self, name: str, default: int) -> int:
        value = self._raw(name)
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None

    def float(self, name: str, default: float) -> float:
        value = self._raw(name)
        if not value:
            return default
        try:
            return float(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self._raw(name)
        if value is None:
            return default
        return [item.strip() for item in value.split(",") if item.strip()]

    def networks(self, name: str, default: list[str]) -> list[IPv4Network | IPv6Network]:
        """Comma-separated IP networks (10.0.0.0/8) or addresses (one host each)."""
        networks = []
        for item in self.list(name, default):
            try:
                networks.append(ip_network(item, strict=False))
            except ValueError:
                raise ImproperlyConfigured(
                    f"{name} must be IP addresses or networks, got {item!r}"
                ) from None
        return networks

    def cache(self, name: str, default: str) -> dict[str, Any]:
        """Django's CACHES entry for redis://host:port/db (rediss:// with TLS) or
        locmem:// (each process its own, for development)."""
        url = self.str(name, default)
        scheme = urlsplit(url).scheme
        if scheme in ("redis", "rediss"):
            return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
        if scheme == "locmem":
            return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        # The scheme only: the rest may hold a password.
        raise ImproperlyConfigured(
            f"{name} must be redis://host:port/db or locmem://, got {scheme or 'no'} scheme"
        )

    def file(self, name: str) -> Path | None:
        """A file the process will read (a certificate, a key), or None when unset.

        Checked now, so a wrong path stops the process at start-up naming the
        variable, instead of failing each connection later.
        """
        value = self._raw(name)
        if not value:
            return None
        path = Path(value)
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}: cannot read {path}: {exc.strerror or exc}"
            ) from None
        return path

    def database(self, name: str, default: str) -> dict[str, Any]:
        url = self.str(name, default)
        try:
            return dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name} is not a database URL: {exc}") from None


env = Env()
