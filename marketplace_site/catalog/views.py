from __future__ import annotations

from django.core.paginator import InvalidPage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from marketplace_site.catalog.forms import CatalogQueryForm
from marketplace_site.catalog.selectors import book_get, book_page, category_get, category_list
from marketplace_site.orders.cart import MAX_QUANTITY
from marketplace_site.promotions.selectors import promotions_available
from marketplace_site.recommendations.selectors import (
    default_category_code,
    recommendations_for,
)

RECOMMENDATIONS_ON_PAGE = 6


def home(request: HttpRequest) -> HttpResponse:
    query = CatalogQueryForm(request.GET)
    if not query.is_valid():
        raise Http404("No such category or page.")
    category = None
    if slug := query.cleaned_data["category"]:
        category = category_get(slug=slug)
        if category is None:
            raise Http404("No such category.")
    try:
        page = book_page(category=category, page=query.cleaned_data["page"] or 1)
    except InvalidPage:
        raise Http404("No such page.") from None
    code = category.code if category else default_category_code(user=request.user)
    return render(
        request,
        "catalog/home.html",
        {
            "categories": category_list(),
            "category": category,
            "page": page,
            "promotions": promotions_available(user=request.user),
            "recommendations": recommendations_for(
                user=request.user,
                category_code=code,
                limit=RECOMMENDATIONS_ON_PAGE,
                correlation_id=request.correlation_id,
            ),
        },
    )


def book_detail(request: HttpRequest, book_id: int) -> HttpResponse:
    book = book_get(book_id=book_id)
    if book is None:
        raise Http404("No such book.")
    return render(
        request,
        "catalog/book_detail.html",
        {
            "book": book,
            "max_quantity": min(book.stock, MAX_QUANTITY),
            "recommendations": recommendations_for(
                user=request.user,
                category_code=book.category.code,
                limit=RECOMMENDATIONS_ON_PAGE,
                correlation_id=request.correlation_id,
                exclude=(book.pk,),
            ),
        },
    )
