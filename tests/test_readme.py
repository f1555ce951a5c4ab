"""The README stays a five-minute read, and it and docs/ point only at what exists."""

from __future__ import annotations

import csv
import fnmatch
import re
import subprocess
from pathlib import Path

import pytest

from marketplace_site.accounts.management.commands.ensure_demo_staff import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
)
from tests.processes import REPO_ROOT

README = REPO_ROOT / "README.md"
MAX_LINES = 300
PAGES = [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]

FENCED = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
# Files named in the text: a path or a file name, of the kinds the repository keeps.
FILE = re.compile(r"^[\w./*-]+\.(py|proto|md|csv|conf|yml|toml)$")
FOLDER = re.compile(r"^[\w.-]+(/[\w.-]+)*/$")
# Made by running something, so in no clone.
GENERATED = ("var/", "bench-results/", "test-artifacts/")


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO_ROOT))


def prose(page: Path) -> str:
    """The page without its fenced code blocks."""
    return FENCED.sub("", page.read_text())


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings."""
    headings = re.findall(r"^#+ (.+)$", prose(page), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.splitlines()


def test_the_readme_is_at_most_300_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_LINES, (
        f"README.md has {lines} lines (at most {MAX_LINES}): move the detail into docs/"
    )


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_points_at_a_file_and_heading_that_exist(page: Path):
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, f"{page_id(page)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_file_named_exists(page: Path):
    """Files and folders; `orders/services.py` may be short for
    marketplace_site/orders/services.py."""
    files = repository_files()
    tokens = [t for t in CODE.findall(prose(page)) if not t.startswith(GENERATED)]
    missing = sorted(
        {t for t in tokens if FILE.match(t) and not fnmatch.filter(files, f"*{t}")}
        | {t for t in tokens if FOLDER.match(t) and not fnmatch.filter(files, f"*{t}*")}
    )
    assert not missing, f"{page_id(page)} names files that do not exist: {missing}"


def test_the_readmes_demo_facts_are_the_codes():
    readme = " ".join(README.read_text().split())
    assert f"**{DEMO_USERNAME} / {DEMO_PASSWORD}**" in readme
    with (REPO_ROOT / "data" / "demo_catalog.csv").open() as catalog:
        books = list(csv.DictReader(catalog))
    stock = [int(book["stock"]) for book in books]
    categories = {book["category"] for book in books}
    assert f"{min(stock)} to {max(stock)} copies of each book" in readme
    assert f"browse {len(books)} real books in seven categories" in readme
    assert len(categories) == 7
