from __future__ import annotations

from django import forms

from marketplace_site.orders.cart import MAX_QUANTITY


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, initial=1)


class UpdateCartForm(forms.Form):
    quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY)


class CheckoutForm(forms.Form):
    # The total the customer saw; checkout refuses if it no longer holds.
    expected_total = forms.DecimalField(max_digits=10, decimal_places=2, min_value=0)
    # The voucher applied on the cart page, if any.
    voucher_code = forms.CharField(required=False, max_length=40)
    # New with each cart page: the same page posted twice places one order.
    checkout_key = forms.UUIDField(required=False, widget=forms.HiddenInput)
    # The version of the cart the page showed: a page older than the cart is refused.
    cart_version = forms.IntegerField(
        required=False, min_value=0, max_value=2**31 - 1, widget=forms.HiddenInput
    )


class VoucherForm(forms.Form):
    # Empty removes the applied voucher.
    voucher_code = forms.CharField(required=False, max_length=40, label="Voucher code")
