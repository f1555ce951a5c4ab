"""Catalog CSV import: the bundled demo catalog, and clear errors for bad files."""

from __future__ import annotations

from collections import Counter

import pytest

from recommender.catalog_file import CatalogFileError, read_catalog
from recommender.config import DEMO_CATALOG
from recommender.engine import Category


def test_the_demo_catalog_has_real_books_in_every_category():
    books = read_catalog(DEMO_CATALOG)
    assert len(books) >= 200
    per_category = Counter(b.category for b in books)
    assert set(per_category) == set(Category)
    assert min(per_category.values()) >= 20
    assert len({(b.title, b.author) for b in books}) == len(books)
    assert [b.id for b in books] == list(range(1, len(books) + 1))


def write(tmp_path, text: str):
    path = tmp_path / "catalog.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_file_is_read(tmp_path):
    path = write(
        tmp_path,
        "id,title,author,category,price\n"
        '1,"Murder, She Wrote",Jessica Fletcher,mystery,9.99\n'
        "2,Dune,Frank Herbert,SCIENCE_FICTION,12.00\n",
    )
    books = read_catalog(path)
    assert [(b.id, b.title, b.category) for b in books] == [
        (1, "Murder, She Wrote", Category.MYSTERY),
        (2, "Dune", Category.SCIENCE_FICTION),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,title,author\n1,A,B\n", "missing column(s): category"),
        ("id,title,author,category\nx,A,B,MYSTERY\n", ":2: id must be a whole number, got 'x'"),
        ("id,title,author,category\n0,A,B,MYSTERY\n", ":2: id must be between 1"),
        ("id,title,author,category\n1,A,B,POETRY\n", ":2: unknown category 'POETRY'"),
        ("id,title,author,category\n1,,B,MYSTERY\n", ":2: title and author must not be empty"),
        (
            "id,title,author,category\n1,A,B,MYSTERY\n1,C,D,MYSTERY\n",
            ":3: duplicate id 1",
        ),
        ("id,title,author,category\n", "no books"),
    ],
)
def test_bad_files_are_refused_naming_the_line(tmp_path, text, message):
    with pytest.raises(CatalogFileError) as error:
        read_catalog(write(tmp_path, text))
    assert message in str(error.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogFileError, match="No such file"):
        read_catalog(tmp_path / "nope.csv")


def test_a_binary_file_is_a_clear_error(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_bytes(b"id,title,author,category\n1,\xff\xfe,B,MYSTERY\n")
    with pytest.raises(CatalogFileError, match="not UTF-8"):
        read_catalog(path)
