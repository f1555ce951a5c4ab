from __future__ import annotations

from django import forms

from marketplace_site.catalog.selectors import SORTS

# The sort menu's words for each of the selector's orderings (a KeyError at
# import if one is missing).
SORT_LABELS = {
    "title": "Title",
    "price": "Price, lowest first",
    "-price": "Price, highest first",
    "best-selling": "Best selling",
}
SORT_CHOICES = [(key, SORT_LABELS[key]) for key in SORTS]


class CatalogQueryForm(forms.Form):
    """The home page's query string. Checked before any query runs: a NUL byte
    or a number past any column is an unknown category or page, not an error
    of the database's."""

    category = forms.SlugField(required=False)
    page = forms.IntegerField(required=False, min_value=1)
    # Title or author words; longer than any title and author together is no search.
    q = forms.CharField(required=False, max_length=200)
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)
