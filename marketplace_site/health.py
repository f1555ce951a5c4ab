"""Liveness for process supervisors and load balancers."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests; dependencies are not checked here."""
    return JsonResponse({"status": "ok"})
