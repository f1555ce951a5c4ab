"""A book's cover drawn from its title and category, for books without an
image: colours per category, the title set in lines that fit. The page
renders it as an inline SVG (templates/partials/cover.html): nothing is
fetched from anywhere."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from marketplace_site.catalog.models import Book

# Per category code (the contract's BookCategory): background, then ink. Each
# pair keeps the title readable (contrast above 7:1).
PALETTES = {
    0: ("#2b2d42", "#f8f4e3"),  # Mystery
    1: ("#0b3954", "#e0fbfc"),  # Science Fiction
    2: ("#f4d35e", "#1d1d1b"),  # Self Help
    3: ("#3d1f4f", "#f6e7ff"),  # Fantasy
    4: ("#5b3a1e", "#fbefd9"),  # History
    5: ("#1f4e3d", "#eef7f1"),  # Biography
    6: ("#7a1f3d", "#fff0f3"),  # Romance
}
DEFAULT_PALETTE = ("#33383f", "#ffffff")
# Characters per line at the cover's type size, and lines before an ellipsis.
LINE_WIDTH = 16
MAX_LINES = 5
AUTHOR_WIDTH = 26


@dataclass(frozen=True, slots=True)
class Cover:
    background: str
    ink: str
    lines: tuple[str, ...]
    author: str
    category: str


def book_cover(book: Book) -> Cover:
    background, ink = PALETTES.get(book.category.code, DEFAULT_PALETTE)
    lines = textwrap.wrap(book.title, LINE_WIDTH, break_long_words=True) or [""]
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], lines[MAX_LINES - 1][: LINE_WIDTH - 1] + "…"]
    author = textwrap.shorten(book.author, AUTHOR_WIDTH, placeholder="…")
    return Cover(background, ink, tuple(lines), author, book.category.name)
