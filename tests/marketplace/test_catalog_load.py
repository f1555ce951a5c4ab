"""Loading the catalog: idempotent, every change an event, bad files refused whole."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from events.contracts import BOOK_UPSERTED, unwrap
from marketplace_site.catalog.models import Book, Category
from marketplace_site.catalog.services import book_publish_all, book_save
from marketplace_site.outbox.models import OutboxMessage
from recommender.catalog_file import read_catalog
from recommender.config import DEMO_CATALOG

pytestmark = pytest.mark.django_db

HEADER = "id,title,author,category,year,price,stock\n"


def test_the_demo_catalog_loads_with_the_ids_the_recommender_uses():
    call_command("load_catalog")
    shared = {b.id: b for b in read_catalog(DEMO_CATALOG)}
    assert Book.objects.count() == len(shared)
    for book in Book.objects.select_related("category"):
        assert (book.title, book.author) == (shared[book.pk].title, shared[book.pk].author)
        assert book.category.code == shared[book.pk].category
    assert Category.objects.count() == 7
    assert OutboxMessage.objects.filter(event_type=BOOK_UPSERTED).count() == len(shared)


def test_loading_again_changes_nothing_and_records_no_event(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "1,Dune,Frank Herbert,SCIENCE_FICTION,1965,12.00,5\n")
    call_command("load_catalog", str(path))
    call_command("load_catalog", str(path))
    assert OutboxMessage.objects.count() == 1


def test_a_changed_book_is_updated_with_an_event_and_keeps_its_stock(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "1,Dune,Frank Herbert,SCIENCE_FICTION,1965,12.00,5\n")
    call_command("load_catalog", str(path))
    Book.objects.filter(pk=1).update(stock=2)  # two sold since
    path.write_text(HEADER + "1,Dune,Frank Herbert,SCIENCE_FICTION,1965,14.00,5\n")
    call_command("load_catalog", str(path))
    book = Book.objects.get(pk=1)
    assert (book.price, book.stock) == (Decimal("14.00"), 2)
    latest = unwrap(bytes(OutboxMessage.objects.latest("id").envelope))
    assert (latest.payload.book_id, latest.payload.price) == (1, "14.00")


def test_a_description_column_is_loaded_and_a_file_without_one_keeps_the_admins(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "id,title,author,category,year,price,stock,description\n"
        '1,Dune,Frank Herbert,SCIENCE_FICTION,1965,12.00,5,"Spice, sand and worms."\n'
    )
    call_command("load_catalog", str(path))
    assert Book.objects.get(pk=1).description == "Spice, sand and worms."

    Book.objects.filter(pk=1).update(description="Written in the admin.")
    path.write_text(HEADER + "1,Dune,Frank Herbert,SCIENCE_FICTION,1965,12.00,5\n")
    call_command("load_catalog", str(path))
    assert Book.objects.get(pk=1).description == "Written in the admin."


@pytest.mark.parametrize(
    "line",
    [
        "2,Emma,Jane Austen,POETRY,1815,9.00,3",
        "x,Emma,Jane Austen,ROMANCE,1815,9.00,3",
        "2,Emma,Jane Austen,ROMANCE,1815,free,3",
        "2,Emma,Jane Austen,ROMANCE,1815,-1.00,3",
        "2,,Jane Austen,ROMANCE,1815,9.00,3",
    ],
)
def test_a_bad_line_refuses_the_whole_file(tmp_path, line):
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "1,Dune,Frank Herbert,SCIENCE_FICTION,1965,12.00,5\n" + line + "\n")
    with pytest.raises(CommandError, match=r"c\.csv:3"):
        call_command("load_catalog", str(path))
    assert not Book.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_a_book_added_after_loading_gets_a_fresh_id(tmp_path, categories):
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "41,Dune,Frank Herbert,SCIENCE_FICTION,1965,12.00,5\n")
    call_command("load_catalog", str(path))
    added = book_save(
        book=Book(title="New", author="Someone", category=categories["fantasy"], price="5.00")
    )
    assert added.pk > 41


def test_publish_all_re_emits_every_book(make_book):
    books = [make_book() for _ in range(3)]
    OutboxMessage.objects.all().delete()
    assert book_publish_all() == 3
    published = [unwrap(bytes(m.envelope)).payload.book_id for m in OutboxMessage.objects.all()]
    assert published == [b.pk for b in books]
