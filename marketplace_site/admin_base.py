"""What every admin page of the shop shares."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


class ShopModelAdmin(admin.ModelAdmin):
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Django looks rows up by the keys a list posts (the rows an action is
        # for, the rows edited in the list) as they come: one that cannot be a
        # key of this model ("abc", a NUL byte, past the column) is a 500 there.
        if request.method == "POST" and not self._posted_keys_are_keys(request):
            return HttpResponseBadRequest("The rows posted are not rows of this list.")
        return super().changelist_view(request, extra_context)

    def _posted_keys_are_keys(self, request: HttpRequest) -> bool:
        pk = self.model._meta.pk
        edited = re.compile(rf"form-\d+-{re.escape(pk.name)}")
        keys = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) + [
            value for name, value in request.POST.items() if edited.fullmatch(name)
        ]
        try:
            for key in keys:
                pk.clean(key, None)
        except ValidationError:
            return False
        return True
