from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from marketplace_site.catalog.models import Book, Category
from marketplace_site.catalog.services import book_save


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "code")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "author", "category", "price", "stock", "active")
    list_filter = ("category", "active")
    search_fields = ("title", "author")
    list_editable = ("price", "stock", "active")
    list_select_related = ("category",)
    actions = ["deactivate"]

    def save_model(self, request: HttpRequest, obj: Book, form: ModelForm, change: bool) -> None:
        # Through the service, so the change and its event commit together.
        book_save(book=obj)

    def has_delete_permission(self, request: HttpRequest, obj: Book | None = None) -> bool:
        # Orders keep pointing at their books; retire a book by deactivating it.
        return False

    @admin.action(description="Stop selling the selected books")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Book]) -> None:
        for book in queryset:
            book.active = False
            book_save(book=book)
