"""Shared fixtures: where the reference data lives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.alpine_repo import RealisticRepo, cache_root, realistic_repository
from tests.support.mirror import Mirror, serve

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# Read before any fixture changes XDG_CACHE_HOME: the realistic repository is kept between runs.
REALISTIC_CACHE = cache_root()


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


# --------------------------------------------------------------------------------------------
# The realistic repository (tests/support/alpine_repo.py) and its HTTP mirror.


@pytest.fixture(scope="session")
def realistic_repo() -> RealisticRepo:
    """The signed multi-architecture repository built from Debian's busybox-static and musl
    (cached under ~/.cache/alpenglow-tests; the first build downloads the .debs once).
    Skips when no architecture at all could be built; see ``.skipped`` for the others."""
    repo = realistic_repository(REALISTIC_CACHE)
    if not repo.arches:
        reasons = "; ".join(f"{arch}: {why}" for arch, why in sorted(repo.skipped.items()))
        pytest.skip(f"realistic repository: no architecture could be built ({reasons})")
    return repo


@pytest.fixture(scope="session")
def alpine_mirror(realistic_repo: RealisticRepo) -> Iterator[Mirror]:
    """The realistic repository served over HTTP on 127.0.0.1 as an Alpine mirror:
    ``alpine_mirror.repository("v3.21")`` is ``http://127.0.0.1:PORT/alpine/v3.21/main``."""
    with serve(realistic_repo.mirror) as mirror:
        yield mirror
