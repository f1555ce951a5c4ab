from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketplace_site.catalog.services import CatalogError, catalog_load


class Command(BaseCommand):
    help = "Load a catalog CSV (the demo catalog by default). Safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", type=Path, default=settings.DEMO_CATALOG)

    def handle(self, *args: object, file: Path, **options: object) -> None:
        try:
            result = catalog_load(path=file)
        except CatalogError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{file}: {result.created} books added, {result.updated} updated, "
            f"{result.unchanged} unchanged"
        )
