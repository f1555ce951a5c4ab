from __future__ import annotations

from django import forms


class CatalogQueryForm(forms.Form):
    """The home page's query string. Checked before any query runs: a NUL byte
    or a number past any column is an unknown category or page, not an error
    of the database's."""

    category = forms.SlugField(required=False)
    page = forms.IntegerField(required=False, min_value=1)
