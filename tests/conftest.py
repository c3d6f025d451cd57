"""Shared fixtures: a fresh database path and a local HTTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import LocalServer


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a not-yet-created SQLite file in the test's own directory."""
    return tmp_path / "reputation.db"


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A started LocalServer on an ephemeral 127.0.0.1 port, stopped after the test."""
    with LocalServer() as server:
        yield server
