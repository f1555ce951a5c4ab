"""One Docker Engine for every deployment test of a run (compose, then swarm):
started once where none answers, with every image built once, and stopped
after the last of them (tests/deploy/engine.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.engine import docker_engine
from tests.deploy.shop import build_images


@pytest.fixture(scope="session")
def engine() -> Iterator[None]:
    with docker_engine():
        build_images()
        yield
