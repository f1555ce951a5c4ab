from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from bookstore.recommendations.v1 import recommendations_pb2

# The contract's BookCategory: the value the recommender and the events use.
CATEGORY_CODES = [
    (value, name.replace("_", " ").title())
    for name, value in recommendations_pb2.BookCategory.items()
]
# PostgreSQL's integer and the events' int32; SQLite would store more, which
# no event could then carry.
MAX_STOCK = 2**31 - 1


class Category(models.Model):
    code = models.PositiveSmallIntegerField(
        unique=True, choices=CATEGORY_CODES, help_text="The category in the shared contract."
    )
    name = models.CharField(max_length=80)
    slug = models.SlugField(unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    # Ids are shared with the recommender (and the demo catalog file), so the
    # loader sets them explicitly; books added in the admin get the next one.
    title = models.CharField(max_length=300)
    author = models.CharField(max_length=200)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="books")
    year = models.SmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(-9999), MaxValueValidator(9999)],
        help_text="The year of first publication.",
    )
    # Blank rather than null: one way to say "none", and the page shows nothing then.
    description = models.TextField(
        blank=True,
        default="",
        help_text="Shown on the book's page; plain text, a blank line between paragraphs.",
    )
    price = models.DecimalField(
        max_digits=8, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    stock = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(MAX_STOCK)])
    active = models.BooleanField(default=True, help_text="Inactive books are not sold.")
    # Title and author folded for search (catalog/search.py), written by book_save.
    search_key = models.CharField(max_length=501, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gt=0), name="book_price_positive"),
            models.CheckConstraint(
                condition=models.Q(id__lte=2**31 - 1), name="book_id_fits_the_contract"
            ),
        ]
        indexes = [models.Index(fields=["category", "active", "title"])]

    def __str__(self) -> str:
        return f"{self.title} ({self.author})"

    def get_absolute_url(self) -> str:
        return reverse("book-detail", args=[self.pk])

    @property
    def in_stock(self) -> bool:
        return self.stock > 0
