"""The shop's URLs plus /bench/bare (the same middleware, no work in the
view) and /bench/trace (the trace id a request is served in)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from events.tracing import current_trace_id
from marketplace_site.urls import urlpatterns as shop


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


def trace(request: HttpRequest) -> HttpResponse:
    """The caller's trace id (its traceparent) where tracing is off, "-" where
    it is disabled: the harness checks each site is what its row says."""
    return HttpResponse(current_trace_id().encode(), content_type="text/plain")


urlpatterns = [path("bench/bare", bare), path("bench/trace", trace), *shop]
