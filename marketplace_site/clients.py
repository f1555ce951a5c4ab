"""Who sent a request, as far as the site can trust it."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's IP address: REMOTE_ADDR, or behind PROXY_COUNT proxies the
    address the outermost one saw. Each proxy appends to X-Forwarded-For, so
    that is the PROXY_COUNT-th entry from the right; entries left of it are the
    client's own word."""
    remote = request.META.get("REMOTE_ADDR", "")
    if settings.PROXY_COUNT <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-settings.PROXY_COUNT] if len(hops) >= settings.PROXY_COUNT else remote


def client_network(address: str) -> str:
    """What to count one client by: its IPv4 address, or its IPv6 /64, since
    a provider hands a whole /64 to one subscriber."""
    try:
        ip = ip_address(address)
    except ValueError:
        return address
    return str(ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)
