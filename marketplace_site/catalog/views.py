from __future__ import annotations

from django.core.paginator import InvalidPage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from marketplace_site.catalog.covers import book_cover
from marketplace_site.catalog.forms import SORT_CHOICES, CatalogQueryForm
from marketplace_site.catalog.selectors import book_get, book_page, category_get, category_list
from marketplace_site.orders.cart import MAX_QUANTITY, quantity_allowed, visitor_cart
from marketplace_site.orders.selectors import cart_quantity_of
from marketplace_site.promotions.selectors import promotion_banners
from marketplace_site.recommendations.selectors import recommendations_for

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
    words, sort = query.cleaned_data["q"], query.cleaned_data["sort"] or "title"
    try:
        page = book_page(
            category=category, page=query.cleaned_data["page"] or 1, query=words, sort=sort
        )
    except InvalidPage:
        raise Http404("No such page.") from None
    return render(
        request,
        "catalog/home.html",
        {
            "categories": category_list(),
            "category": category,
            "page": page,
            "query": words,
            "sort": sort,
            "sorts": SORT_CHOICES,
            "banners": promotion_banners(user=request.user),
            "recommendations": recommendations_for(
                user=request.user,
                category_code=category.code if category else None,
                limit=RECOMMENDATIONS_ON_PAGE,
            ),
        },
    )


# It offers what the cart can still take: never a copy from the browser's cache.
@never_cache
def book_detail(request: HttpRequest, book_id: int) -> HttpResponse:
    book = book_get(book_id=book_id)
    if book is None:
        raise Http404("No such book.")
    cart = visitor_cart(user=request.user, session=request.session)
    in_cart = cart_quantity_of(cart=cart, book_id=book.pk)
    return render(
        request,
        "catalog/book_detail.html",
        {
            "book": book,
            "cover": book_cover(book),
            "in_cart": in_cart,
            "addable": max(0, quantity_allowed(book.stock) - in_cart),
            "max_quantity": MAX_QUANTITY,
            "recommendations": recommendations_for(
                user=request.user,
                category_code=book.category.code,
                limit=RECOMMENDATIONS_ON_PAGE,
                exclude=(book.pk,),
            ),
        },
    )
