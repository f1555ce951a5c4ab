"""What every admin page of the shop shares."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


class ShopChangeList(ChangeList):
    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        # A NUL byte, which PostgreSQL refuses in a query, or a year past any
        # date (OverflowError, which Django lets through from its filters and
        # lookups) is a wrong filter like any other: the admin says so (?e=1).
        if any("\x00" in value for _, values in request.GET.lists() for value in values):
            raise IncorrectLookupParameters("a NUL byte in the query")
        try:
            super().__init__(request, *args, **kwargs)
        except OverflowError as exc:
            raise IncorrectLookupParameters(exc) from exc


class ShopModelAdmin(admin.ModelAdmin):
    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ShopChangeList

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
