"""python -m recommender [serve | import-catalog FILE | synthesize]"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from events.environment import ConfigError, exit_on_config_error
from events.log_format import configure_logging
from events.tracing import configure_tracing
from recommender.catalog_file import CatalogFileError, read_catalog
from recommender.config import Settings
from recommender.malloc import keep_large_blocks_mapped
from recommender.server import ListenError, serve
from recommender.store import Store, StoreError
from recommender.synthetic import write_synthetic_store

log = logging.getLogger("recommender")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recommender", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve gRPC on RECOMMENDER_LISTEN (the default)")
    importer = commands.add_parser(
        "import-catalog", help="add or update the books of a catalog CSV in the store"
    )
    importer.add_argument("file", type=Path, help="CSV with id,title,author,category columns")
    synth = commands.add_parser(
        "synthesize", help="fill the store with a large synthetic catalog and history"
    )
    synth.add_argument("--books", type=int, default=100_000)
    synth.add_argument("--purchases", type=int, default=1_000_000)
    args = parser.parse_args(argv)

    with exit_on_config_error():
        settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "import-catalog":
            books = read_catalog(args.file)
            with Store(settings.db_path) as store:
                store.upsert_books(books)
            print(f"imported {len(books)} books from {args.file} into {settings.db_path}")
            print("running servers pick them up on restart")
        elif args.command == "synthesize":
            write_synthetic_store(settings.db_path, books=args.books, purchases=args.purchases)
            print(f"wrote {args.books} books and {args.purchases} purchases to {settings.db_path}")
        else:
            # Before the index is loaded, which the setting is for.
            keep_large_blocks_mapped()
            # Its calls are traced by recommender.calls, not an instrumentation.
            configure_tracing("recommender")
            asyncio.run(serve(settings))
    except (CatalogFileError, StoreError, ListenError, ConfigError) as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
