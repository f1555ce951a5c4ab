"""Programs that dev dependencies ship inside their wheels (Compose v2, kubectl)."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest


def shipped_binary(distribution: str, path: str) -> Path:
    """The executable file ending in ``path`` inside the installed ``distribution``."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            f"{distribution} is not installed; it is a dev dependency: "
            "pip install -c requirements.lock -e '.[dev]' (make does it)"
        )
    shipped = [f for f in dist.files or () if f.as_posix().endswith(path)]
    if not shipped:
        pytest.fail(f"{distribution} {dist.version} ships no {path}")
    binary = Path(str(dist.locate_file(shipped[0])))
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"{binary} is missing or not executable")
    return binary
