from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from marketplace_site.admin_base import ShopModelAdmin
from marketplace_site.orders.models import Order, OrderLine
from marketplace_site.orders.services import OrderError, order_status_change


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ("book", "title", "unit_price", "quantity", "line_total")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False


class OrderStatusForm(forms.ModelForm):
    """The one thing staff change on an order: its status, forward only."""

    class Meta:
        model = Order
        fields = ("status",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        status = self.fields.get("status")
        if not isinstance(status, forms.ChoiceField):  # none on a page only to view (delivered)
            return
        current = self.instance.status
        status.choices = [
            (value, label)
            for value, label in Order.Status.choices
            if value == current or value in Order.statuses_after(current)
        ]
        status.help_text = "The customer is e-mailed when it changes. An order only moves forward."


@admin.register(Order)
class OrderAdmin(ShopModelAdmin):
    """Orders are records of what happened: staff read them and move them on
    (their status); nothing else is edited."""

    form = OrderStatusForm

    list_display = (
        "id",
        "user",
        "created_at",
        "status",
        "subtotal",
        "discount",
        "voucher_discount",
        "total",
        "promotion",
    )
    list_filter = ("status", "promotion", "created_at")
    search_fields = ("id", "user__username", "user__email", "correlation_id")
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    readonly_fields = (
        "user",
        "created_at",
        "currency",
        "subtotal",
        "discount",
        "total",
        "promotion",
        "voucher",
        "voucher_discount",
        "correlation_id",
    )
    fields = ("status", *readonly_fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: Order, form: forms.ModelForm, change: bool
    ) -> None:
        # Through the service, which records the event the customer is
        # e-mailed about; never a plain save of the form's order.
        if "status" not in form.changed_data:
            return
        try:
            order_status_change(order_id=obj.pk, status=form.cleaned_data["status"])
        except OrderError as exc:  # another member of staff moved it meanwhile
            obj.refresh_from_db(fields=["status"])
            self.message_user(request, str(exc), messages.ERROR)

    def has_change_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        # A delivered order has nowhere to go: its page is a view, without Save buttons.
        if obj is not None and not Order.statuses_after(obj.status):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False
