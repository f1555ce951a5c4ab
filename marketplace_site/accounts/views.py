from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from marketplace_site.accounts.forms import EmailChangeForm, ShopPasswordResetForm, SignUpForm
from marketplace_site.accounts.services import (
    AddressTaken,
    PasswordResetRefused,
    PasswordResetThrottled,
    account_email_change,
    password_reset_request,
)
from marketplace_site.clients import client_address
from marketplace_site.orders.selectors import order_list
from marketplace_site.request_types import SignedInRequest
from marketplace_site.vouchers.selectors import vouchers_of


def signup(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                user = form.save()
        except IntegrityError:
            # Another sign-up took the username or the address since the
            # form was checked: checked again, the form says which.
            form = SignUpForm(request.POST)
            if form.is_valid():
                form.add_error(None, "That did not work; please try again.")
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}!")
            return redirect(next_url or "home")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "registration/signup.html", {"form": form, "next": next_url}, status=status
    )


def password_reset(request: HttpRequest) -> HttpResponse:
    form = ShopPasswordResetForm(request.POST or None)
    status = 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        try:
            password_reset_request(email=form.cleaned_data["email"], client=client_address(request))
        except PasswordResetRefused as exc:
            form.add_error(None, str(exc))
            status = 429 if isinstance(exc, PasswordResetThrottled) else 503
        else:
            return redirect("password_reset_done")
    return render(request, "registration/password_reset_form.html", {"form": form}, status=status)


# Orders and vouchers change behind the page: never from the browser's cache.
@never_cache
@login_required
def account(request: SignedInRequest) -> HttpResponse:
    return render(
        request,
        "accounts/account.html",
        {"orders": order_list(user=request.user), "vouchers": vouchers_of(user=request.user)},
    )


@login_required
def email_change(request: SignedInRequest) -> HttpResponse:
    form = EmailChangeForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            account_email_change(user=request.user, email=form.cleaned_data["email"])
        except AddressTaken:
            # Taken by another account since the form was checked.
            form.add_error("email", "Another account has this e-mail address.")
        else:
            messages.success(request, f"Your e-mail address is now {request.user.email}.")
            return redirect("account")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/email_change.html", {"form": form}, status=status)
