from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from events.tracing import current_trace_id
from marketplace_site.catalog.models import Book
from marketplace_site.orders.cart import MAX_QUANTITY, visitor_cart, visitor_cart_ensure
from marketplace_site.orders.forms import AddToCartForm, CheckoutForm, UpdateCartForm, VoucherForm
from marketplace_site.orders.selectors import (
    cart_contents,
    cart_promotion_notes,
    cart_quote,
    cart_shortages,
    order_get,
    order_list,
)
from marketplace_site.orders.services import (
    OrderError,
    VoucherRefused,
    cart_add,
    cart_checkout,
    cart_remove,
    cart_set,
)
from marketplace_site.promotions.wording import rule_text
from marketplace_site.request_types import SignedInRequest
from marketplace_site.vouchers.selectors import VoucherInvalid, voucher_usable

# The voucher code the customer applied on the cart page.
VOUCHER_SESSION_KEY = "voucher_code"
# The checkout form's fields are the cart page's own, never typed: an error in
# one means the page was altered or is not the shop's.
UNREADABLE_CHECKOUT = "This order form could not be read. Open your cart and place the order there."


def _refuse(
    request: HttpRequest, message: str, *, status: int = 400, book: Book | None = None
) -> HttpResponse:
    """The shop's refusal page: what went wrong, and the ways back."""
    return render(request, "error.html", {"message": message, "book": book}, status=status)


def _form_error(form: forms.Form) -> str:
    """The form's errors as the customer reads them: sentences, no field names."""
    return " ".join(
        dict.fromkeys(str(error) for errors in form.errors.values() for error in errors)
    )


def _cart_page(request: HttpRequest, *, status: int = 200, voucher_error: str = "") -> HttpResponse:
    voucher = None
    code = request.session.get(VOUCHER_SESSION_KEY, "")
    if code:
        try:
            voucher = voucher_usable(user=request.user, code=code)
        except VoucherInvalid as exc:
            # Used or expired since it was applied: say so once, then forget it.
            voucher_error = voucher_error or str(exc)
            del request.session[VOUCHER_SESSION_KEY]
    contents = cart_contents(cart=visitor_cart(user=request.user, session=request.session))
    quote = cart_quote(
        user=request.user,
        items=contents.items,
        voucher_percent_off=voucher.percent_off if voucher else None,
    )
    initial = {"checkout_key": uuid.uuid4(), "cart_version": contents.version}
    shortages = cart_shortages(items=contents.items)
    context = {
        "quote": quote,
        "rows": [(line, shortages.get(line.book_id)) for line in quote.lines],
        "shortages": shortages,
        "max_quantity": MAX_QUANTITY,
        "promotion_rule": rule_text(quote.promotion) if quote.promotion else "",
        "promotion_notes": cart_promotion_notes(user=request.user, priced=quote),
        "checkout_form": CheckoutForm(initial=initial),
        "voucher": voucher,
        "voucher_error": voucher_error,
    }
    return render(request, "orders/cart.html", context, status=status)


# Never from the browser's cache: Back after a checkout must not show the
# bought cart with its "Place order" again.
@never_cache
def cart_detail(request: HttpRequest) -> HttpResponse:
    """GET shows the cart; POST applies (or, with an empty code, removes) a voucher."""
    if request.method != "POST":
        return _cart_page(request)
    form = VoucherForm(request.POST)
    if not form.is_valid():
        return _cart_page(request, status=400, voucher_error=_form_error(form))
    code = form.cleaned_data["voucher_code"]
    if not code:
        request.session.pop(VOUCHER_SESSION_KEY, None)
        return redirect("cart")
    try:
        voucher = voucher_usable(user=request.user, code=code)
    except VoucherInvalid as exc:
        return _cart_page(request, status=400, voucher_error=str(exc))
    request.session[VOUCHER_SESSION_KEY] = voucher.code
    messages.success(request, f"Voucher {voucher.code} applied: {voucher.percent_label}% off.")
    return redirect("cart")


@require_POST
def cart_add_view(request: HttpRequest, book_id: int) -> HttpResponse:
    book = get_object_or_404(Book, pk=book_id, active=True)
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        return _refuse(request, _form_error(form), book=book)
    try:
        cart_add(
            cart=visitor_cart_ensure(user=request.user, session=request.session),
            book=book,
            quantity=form.cleaned_data["quantity"],
        )
    except OrderError as exc:
        return _refuse(request, str(exc), status=409, book=book)
    messages.success(request, f"Added “{book.title}” to your cart.")
    return redirect("cart")


@require_POST
def cart_update_view(request: HttpRequest, book_id: int) -> HttpResponse:
    cart = visitor_cart(user=request.user, session=request.session)
    if cart is None or book_id not in cart_contents(cart=cart).items:
        return _not_in_cart(request)
    book = get_object_or_404(Book, pk=book_id)
    form = UpdateCartForm(request.POST)
    if not form.is_valid():
        return _refuse(request, _form_error(form), book=book)
    try:
        cart_set(cart=cart, book=book, quantity=form.cleaned_data["quantity"])
    except OrderError as exc:
        return _refuse(request, str(exc), status=409, book=book)
    return redirect("cart")


@require_POST
def cart_remove_view(request: HttpRequest, book_id: int) -> HttpResponse:
    cart = visitor_cart(user=request.user, session=request.session)
    if cart is None or book_id not in cart_contents(cart=cart).items:
        return _not_in_cart(request)
    try:
        cart_remove(cart=cart, book_id=book_id)
    except OrderError as exc:
        return _refuse(request, str(exc), status=409)
    return redirect("cart")


def _not_in_cart(request: HttpRequest) -> HttpResponse:
    # A cart page older than the cart (changed in another tab), or a made-up id.
    return _refuse(
        request,
        "That book is not in your cart any more. Your cart shows what it holds now.",
        status=404,
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        # Enter in the address bar after a refused checkout: the cart is where
        # an order is placed.
        return redirect("cart")
    if not request.user.is_authenticated:
        messages.info(request, "Please log in or sign up to check out.")
        return redirect_to_login(reverse("cart"))
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        return _refuse(request, UNREADABLE_CHECKOUT)
    try:
        checked_out = cart_checkout(
            user=request.user,
            cart=visitor_cart(user=request.user, session=request.session),
            cart_version=form.cleaned_data["cart_version"],
            expected_total=form.cleaned_data["expected_total"],
            # The order keeps its trace's id: logs and traces find it by that.
            correlation_id=current_trace_id(),
            voucher_code=form.cleaned_data["voucher_code"],
            checkout_key=form.cleaned_data["checkout_key"],
        )
    except VoucherRefused as exc:
        return _cart_page(request, status=409, voucher_error=str(exc))
    except OrderError as exc:
        # The cart again, with what went wrong and the current total.
        messages.error(request, str(exc))
        return _cart_page(request, status=409)
    order = checked_out.order
    request.session.pop(VOUCHER_SESSION_KEY, None)
    if checked_out.by_another_page:
        messages.info(request, f"Order #{order.pk} was already placed from this cart.")
    else:
        messages.success(request, f"Thank you! Order #{order.pk} is placed.")
    return redirect(order)


@login_required
def order_list_view(request: SignedInRequest) -> HttpResponse:
    return render(request, "orders/order_list.html", {"orders": order_list(user=request.user)})


@login_required
def order_detail(request: SignedInRequest, order_id: int) -> HttpResponse:
    order = order_get(user=request.user, order_id=order_id)
    if order is None:
        raise Http404("No such order.")
    return render(request, "orders/order_detail.html", {"order": order})
