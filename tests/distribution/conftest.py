"""Fixtures for the distribution tests: real registries on 127.0.0.1 (Debian's
``docker-registry``), with no auth, htpasswd basic auth, or token auth backed by a token
issuer written for the tests, and a fault proxy in front of one (tests/support/registry.py).
Each test gets its own registry with its own storage, stopped and removed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alpenglow.oci.image import ImageBundle
from alpenglow.oci.transport import read_oci
from tests.support.alpine_repo import RealisticRepo
from tests.support.fixture_image import build_fixture_image
from tests.support.registry import FaultProxy, RegistryServer, registry_problem, running_registry

USER = "alice"
PASSWORD = "correct horse battery staple"
USERS = {USER: PASSWORD, "bob": "hunter2"}


def _need_registry() -> None:
    problem = registry_problem()
    if problem is not None:
        pytest.skip(problem)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry without auth."""
    _need_registry()
    with running_registry(tmp_path / "registry") as server:
        yield server


@pytest.fixture
def basic_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry with htpasswd (bcrypt) basic auth for :data:`USERS`."""
    _need_registry()
    with running_registry(tmp_path / "basic-registry", "basic", users=USERS) as server:
        yield server


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry with token auth; ``server.issuer`` is the token server (accounts
    :data:`USERS`; the repository ``public/alpine`` may be pulled anonymously)."""
    _need_registry()
    with running_registry(
        tmp_path / "token-registry",
        "token",
        users=USERS,
        public=frozenset({"public/alpine"}),
    ) as server:
        yield server


@pytest.fixture
def fault_proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of :func:`registry` (``fault_proxy.host``)."""
    with FaultProxy(registry.port) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def fixture_layout(realistic_repo: RealisticRepo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The multi-architecture ``alpine-base`` image made by ``alpenglow build`` from the
    realistic repository: an OCI layout whose one image is named ``latest``."""
    return build_fixture_image(realistic_repo, tmp_path_factory.mktemp("fixture-image"))


@pytest.fixture(scope="session")
def fixture_image(fixture_layout: Path) -> ImageBundle:
    """:func:`fixture_layout` read into a bundle (an index of every platform)."""
    return read_oci(fixture_layout, "latest")
