"""The README's Python client works as printed, against a real recommender."""

from __future__ import annotations

import csv
import re

from recommender.config import REPO_ROOT, Settings

# Where the README's client connects: the recommender of `make run`.
MAKE_RUN_TARGET = "127.0.0.1:50051"


def readme_client() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    [code] = re.findall(r"^```python\n(.*?)^```$", readme, re.MULTILINE | re.DOTALL)
    return code


def demo_books(category: str, count: int) -> list[dict[str, str]]:
    """The first books of a category in the demo catalog, by id: what a store
    with no purchases recommends."""
    with (REPO_ROOT / "data" / "demo_catalog.csv").open() as catalog:
        books = [book for book in csv.DictReader(catalog) if book["category"] == category]
    return sorted(books, key=lambda book: int(book["id"]))[:count]


def test_the_readmes_client_runs_as_printed(recommender_process, capsys):
    code = readme_client()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    assert Settings.from_env({}).listen == MAKE_RUN_TARGET
    assert code.count(f'"{MAKE_RUN_TARGET}"') == 1, code
    # A real `python -m recommender` with the demo catalog, as under `make run`.
    _, target = recommender_process()
    exec(compile(code.replace(MAKE_RUN_TARGET, target), "README.md", "exec"), {})
    expected = [f"{b['id']} {b['title']} by {b['author']}" for b in demo_books("MYSTERY", 3)]
    expected += [str([b["title"] for b in demo_books(c, 2)]) for c in ("FANTASY", "HISTORY")]
    assert capsys.readouterr().out.splitlines() == expected
