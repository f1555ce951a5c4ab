"""One correlation id per request, carried into logs, gRPC metadata and events."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from events.correlation import correlation
from marketplace_site.requests import ShopRequest

HEADER = "X-Correlation-ID"
# Taken from the caller only when it looks like an id, never arbitrary text.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class CorrelationIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: ShopRequest) -> HttpResponse:
        offered = request.headers.get(HEADER, "")
        correlation_id = offered if _ACCEPTABLE.match(offered) else new_correlation_id()
        request.correlation_id = correlation_id
        with correlation(correlation_id):
            response = self.get_response(request)
        response[HEADER] = correlation_id
        return response
