from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from marketplace_site.admin_base import ShopModelAdmin
from marketplace_site.catalog.models import MAX_STOCK, Book, Category
from marketplace_site.catalog.services import book_save


@admin.register(Category)
class CategoryAdmin(ShopModelAdmin):
    list_display = ("name", "slug", "code")
    prepopulated_fields = {"slug": ("name",)}


class BookChangeForm(forms.ModelForm):
    """A book's stock is changed by how many copies came in or went out, not
    set: a number typed over the one shown would undo the sales since."""

    stock_change = forms.IntegerField(
        initial=0,
        required=False,
        min_value=-MAX_STOCK,
        max_value=MAX_STOCK,
        label="Add to stock",
        help_text="Copies received; negative for copies written off (the stock stops at 0).",
    )

    class Meta:
        model = Book
        exclude = ("stock",)

    def clean_stock_change(self) -> int | None:
        change = self.cleaned_data["stock_change"]
        if change and self.instance.stock + change > MAX_STOCK:
            raise forms.ValidationError(
                f"The stock can hold at most {MAX_STOCK:,} copies; it has {self.instance.stock:,}."
            )
        return change


class StockFilter(admin.SimpleListFilter):
    """Books running out, as the dashboard counts them (LOW_STOCK_THRESHOLD)."""

    title = "stock"
    parameter_name = "stock"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("low", f"{settings.LOW_STOCK_THRESHOLD} or fewer"),
            ("out", "Sold out"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Book]) -> QuerySet[Book]:
        if self.value() == "low":
            return queryset.filter(stock__lte=settings.LOW_STOCK_THRESHOLD)
        if self.value() == "out":
            return queryset.filter(stock=0)
        return queryset


@admin.register(Book)
class BookAdmin(ShopModelAdmin):
    list_display = ("id", "title", "author", "category", "price", "stock", "active")
    list_filter = ("category", "active", StockFilter)
    search_fields = ("title", "author")
    list_editable = ("price", "active")
    list_select_related = ("category",)
    actions = ["deactivate"]

    def get_form(
        self, request: HttpRequest, obj: Book | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm[Book]]:
        if obj is not None:  # a new book is given its stock as it is
            kwargs["form"] = BookChangeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Book | None = None) -> tuple:
        return ("stock",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Book, form: ModelForm, change: bool) -> None:
        # Through the service, so the change and its event commit together;
        # only what the form changed is written (a new book: all of it).
        book_save(
            book=obj,
            fields=[name for name in form.changed_data if name != "stock_change"],
            stock_change=form.cleaned_data.get("stock_change") or 0,
        )

    def has_delete_permission(self, request: HttpRequest, obj: Book | None = None) -> bool:
        # Orders keep pointing at their books; retire a book by deactivating it.
        return False

    @admin.action(description="Stop selling the selected books")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Book]) -> None:
        for book in queryset:
            book.active = False
            book_save(book=book, fields=["active"])
