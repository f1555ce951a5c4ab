from __future__ import annotations

from django import forms

from marketplace_site.orders.cart import MAX_QUANTITY

# Shown alone on a refusal page, so each says what to do without the field's name.
_QUANTITY_ERRORS = {
    "required": "Enter how many copies you want.",
    "invalid": "Enter the number of copies as a whole number, like 2.",
    "max_value": f"You can buy at most {MAX_QUANTITY} copies of a book in one order.",
}


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(
        min_value=1,
        max_value=MAX_QUANTITY,
        initial=1,
        error_messages={**_QUANTITY_ERRORS, "min_value": "Add at least one copy."},
    )


class UpdateCartForm(forms.Form):
    quantity = forms.IntegerField(
        min_value=0,
        max_value=MAX_QUANTITY,
        error_messages={**_QUANTITY_ERRORS, "min_value": "Enter 0 to remove the book."},
    )


class CheckoutForm(forms.Form):
    """The cart page's own fields, never typed: any error means the page was
    altered or is not the shop's (the view says so, not which field)."""

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
    voucher_code = forms.CharField(
        required=False,
        max_length=40,
        label="Voucher code",
        error_messages={
            "max_length": "A voucher code has at most %(limit_value)d characters: "
            "check the code in your e-mail and type it again.",
            "null_characters_not_allowed": "That is not a voucher code: "
            "check the code in your e-mail and type it again.",
        },
    )
