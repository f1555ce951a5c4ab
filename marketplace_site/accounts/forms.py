from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User


class SignUpForm(UserCreationForm):
    email = forms.EmailField(help_text="Order confirmations go here.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")
