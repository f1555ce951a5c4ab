"""Searching the catalog by title and author, in any case and with or without accents.

Neither SQLite nor PostgreSQL (without the unaccent extension, which needs a
superuser) folds accents in a query, so each book keeps its title and author
folded once (``Book.search_key``, written by book_save) and a search folds
its words the same way: "garcia" finds "García", "ANOS" finds "años".
"""

from __future__ import annotations

import unicodedata


def folded(text: str) -> str:
    """Lower case (casefold: "ß" is "ss"), accents dropped, spaces made single."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.split())


def book_search_key(*, title: str, author: str) -> str:
    return folded(f"{title} {author}")


def search_words(query: str) -> list[str]:
    """The words a book must all contain, folded as the books' keys are."""
    return folded(query).split()
