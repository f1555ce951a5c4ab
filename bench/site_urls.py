"""The shop's URLs plus /bench/bare: the same middleware, no work in the view."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from marketplace_site.urls import urlpatterns as shop


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/bare", bare), *shop]
