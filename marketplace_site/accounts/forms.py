from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import PasswordResetForm, UserChangeForm, UserCreationForm
from django.contrib.auth.models import User

from marketplace_site.accounts.addresses import AddressField
from marketplace_site.accounts.selectors import address_taken

TAKEN = (
    "An account already has this e-mail address. Log in to it, or ask for a new "
    "password if you forgot yours."
)


class SignUpForm(UserCreationForm):
    email = AddressField(help_text="Order confirmations go here.")

    # django-stubs gives UserCreationForm no Meta; Django's has one.
    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]
        model = User
        # The address is the form's own field, not the model's: the model's
        # validator refuses a local part in another script than Latin.
        fields = ("username",)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if address_taken(email):
            raise forms.ValidationError(TAKEN, code="taken")
        return email

    def save(self, commit: bool = True) -> User:
        self.instance.email = self.cleaned_data["email"]
        return super().save(commit=commit)


class EmailChangeForm(forms.Form):
    """A new address for the signed-in customer, confirmed with their password:
    a session left open elsewhere must not be enough to take the account."""

    email = AddressField(label="New e-mail address", help_text="Order e-mails go here.")
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if address_taken(email, by_other_than=self.user):
            raise forms.ValidationError("Another account has this e-mail address.", code="taken")
        return email

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.", code="wrong_password")
        return password


class ShopPasswordResetForm(PasswordResetForm):
    """Django's, with the address read as the shop keeps it: typed in any
    case, or with the domain as a browser sends it (xn--...)."""

    email = AddressField(label="E-mail address")


class ShopUserChangeForm(UserChangeForm):
    """The admin's user form: an address in any script, never another account's."""

    email = AddressField(required=False, label="Email address")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if email and address_taken(email, by_other_than=self.instance):
            raise forms.ValidationError("Another account has this e-mail address.", code="taken")
        return email

    def _get_validation_exclusions(self) -> Any:
        # AddressField checked it; the model's validator would refuse a
        # Unicode local part this form accepts.
        # Private in Django, so django-stubs leaves it out.
        exclusions = super()._get_validation_exclusions()  # type: ignore[misc]
        exclusions.add("email")
        return exclusions
