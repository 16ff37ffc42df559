"""Shared fixtures: where the reference data lives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only reference data beside the repository (``../shared``)."""
    if not SHARED.is_dir():
        pytest.fail(f"reference data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session", autouse=True)
def _index_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the parsed-index cache of CLI runs (``$XDG_CACHE_HOME``) out of the user's home."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous
