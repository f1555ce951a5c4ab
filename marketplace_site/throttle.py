"""Requests counted per key in fixed windows, in Django's cache (shared by
every process when the cache is Redis, whose increments are atomic)."""

from __future__ import annotations

import hashlib

from django.core.cache import cache


class ThrottleUnavailable(RuntimeError):
    """The cache cannot be reached: nothing can be counted."""


def throttle_allows(*, scope: str, key: str, limit: int, window: int) -> bool:
    """Count one request for ``key``; whether it is within ``limit`` per ``window`` seconds.

    The window starts with the first request and its count expires with it.
    """
    # Hashed: keys are addresses, which need not sit in the cache in clear.
    cache_key = f"throttle:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"
    try:
        count = 1
        if not cache.add(cache_key, count, timeout=window):
            try:
                count = cache.incr(cache_key)
            except ValueError:  # expired between add() and incr(): a new window
                cache.add(cache_key, count, timeout=window)
    except Exception as exc:  # each backend raises its own client's errors
        raise ThrottleUnavailable(f"the cache is unavailable: {type(exc).__name__}") from exc
    return count <= limit
