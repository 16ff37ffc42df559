"""Transfers against a real registry that fails: stopped and restarted during an upload,
behind a proxy that answers 503/429 or cuts connections, and with a blob tampered with in
its storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alpenglow.apk.fetch import RetryPolicy
from alpenglow.distribution.client import RegistryClient
from alpenglow.distribution.reference import parse_reference
from alpenglow.distribution.transfer import pull, push
from alpenglow.errors import DigestMismatch, RegistryError
from alpenglow.oci.image import ImageBundle
from alpenglow.oci.layout import Layout
from tests.oci.images import make_index
from tests.support.fixture_image import random_image
from tests.support.registry import FaultProxy, RegistryServer

# Quick retries, but enough of them to outlast a registry that is down for a second.
PATIENT = RetryPolicy(attempts=8, backoff=0.1, max_backoff=1.0, max_retry_after=2.0)
BIG = 24 * 1024 * 1024


@pytest.fixture(scope="module")
def big_image() -> ImageBundle:
    return random_image(BIG, seed=1)


@pytest.fixture
def direct(registry: RegistryServer) -> Iterator[RegistryClient]:
    with RegistryClient(registry.host, retry=PATIENT) as client:
        yield client


@pytest.fixture
def proxied(fault_proxy: FaultProxy) -> Iterator[RegistryClient]:
    with RegistryClient(fault_proxy.host, retry=PATIENT) as client:
        yield client


def assert_same(pulled: ImageBundle, pushed: ImageBundle) -> None:
    assert pulled.root.digest == pushed.root.digest
    for digest in pushed.digests():
        assert pulled.blob(digest) == pushed.blob(digest)


# --------------------------------------------------------------------------------------------
# The registry goes away during an upload


@pytest.mark.parametrize("chunk_size", [None, 4 * 1024 * 1024], ids=["monolithic", "chunked"])
def test_registry_killed_and_restarted_during_an_upload(
    registry: RegistryServer,
    direct: RegistryClient,
    big_image: ImageBundle,
    chunk_size: int | None,
) -> None:
    ref = parse_reference(f"{registry.host}/faults/big:1")
    with registry.interrupt_upload("faults/big", min_bytes=1, down_for=1.0) as restarted:
        push(big_image, ref, direct, chunk_size=chunk_size)
    assert restarted.is_set(), "the registry was not interrupted during the upload"
    assert registry.restarts == 1
    assert_same(pull(ref, direct), big_image)


def test_registry_restarted_behind_a_proxy_during_an_upload(
    registry: RegistryServer, fault_proxy: FaultProxy, proxied: RegistryClient
) -> None:
    """The registry restarts as the first upload starts; meanwhile the proxy answers 502."""
    bundle = random_image(2 * 1024 * 1024, seed=2)
    fault_proxy.hook(lambda: registry.restart(0.5, hard=True), method="POST", path="/uploads/")
    ref = parse_reference(f"{fault_proxy.host}/faults/restart:1")
    push(bundle, ref, proxied)
    assert registry.restarts == 1
    assert_same(pull(ref, proxied), bundle)


def test_a_registry_that_stays_down_gives_one_clear_error(
    registry: RegistryServer, big_image: ImageBundle
) -> None:
    registry.stop()
    quick = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.01)
    with (
        RegistryClient(registry.host, retry=quick) as client,
        pytest.raises(RegistryError) as caught,
    ):
        push(big_image, parse_reference(f"{registry.host}/faults/down:1"), client)
    message = str(caught.value)
    assert "\n" not in message
    assert registry.host in message
    assert "faults/down" in message
    assert "connection refused" in message
    registry.start()


# --------------------------------------------------------------------------------------------
# A proxy that answers 503/429 and cuts connections


def test_503_and_429_are_retried(fault_proxy: FaultProxy, proxied: RegistryClient) -> None:
    bundle = make_index()
    fault_proxy.fail(503, times=3)  # the first three requests, whatever they are
    fault_proxy.fail(429, times=2, method="HEAD", retry_after=0)
    fault_proxy.fail(503, times=2, method="PUT", path="/manifests/")
    fault_proxy.fail(500, times=1, method="PUT", path=r"/blobs/uploads/")
    ref = parse_reference(f"{fault_proxy.host}/faults/busy:1")
    push(bundle, ref, proxied)
    fault_proxy.fail(503, times=2, method="GET", path="/blobs/")
    fault_proxy.fail(429, times=1, method="GET", path="/manifests/", retry_after=1)
    assert_same(pull(ref, proxied), bundle)
    statuses = [r.status for r in fault_proxy.outcomes("status")]
    assert sorted(statuses) == sorted([503] * 3 + [429] * 2 + [503] * 2 + [500] + [503] * 2 + [429])


def test_retries_give_up_with_the_status(fault_proxy: FaultProxy) -> None:
    fault_proxy.fail(503, times=100, method="GET", path="/manifests/")
    quick = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.01)
    with (
        RegistryClient(fault_proxy.host, retry=quick) as client,
        pytest.raises(RegistryError, match=r"faults/none: manifest 1: HTTP 503.*after 3 attempts"),
    ):
        pull(parse_reference(f"{fault_proxy.host}/faults/none:1"), client)
    assert len(fault_proxy.outcomes("status")) == 3


def test_a_download_cut_short_is_fetched_again(
    fault_proxy: FaultProxy, proxied: RegistryClient, big_image: ImageBundle
) -> None:
    ref = parse_reference(f"{fault_proxy.host}/faults/cut:1")
    push(big_image, ref, proxied)
    fault_proxy.cut_response(1_000_000, times=2, method="GET", path="/blobs/sha256:")
    assert_same(pull(ref, proxied), big_image)
    assert len(fault_proxy.outcomes("cut_response")) == 2


@pytest.mark.parametrize("chunk_size", [None, 4 * 1024 * 1024], ids=["monolithic", "chunked"])
def test_an_upload_cut_short_is_resumed_or_retried(
    fault_proxy: FaultProxy,
    proxied: RegistryClient,
    big_image: ImageBundle,
    chunk_size: int | None,
) -> None:
    ref = parse_reference(f"{fault_proxy.host}/faults/upcut:1")
    fault_proxy.cut_request(3_000_000, times=2, path="/blobs/uploads/.+")
    push(big_image, ref, proxied, chunk_size=chunk_size)
    assert len(fault_proxy.outcomes("cut_request")) == 2
    assert_same(pull(ref, proxied), big_image)


# --------------------------------------------------------------------------------------------
# A blob tampered with in the registry's storage


def test_a_tampered_blob_fails_the_pull_and_nothing_is_stored(
    registry: RegistryServer, direct: RegistryClient, tmp_path: Path
) -> None:
    bundle = make_index()
    ref = parse_reference(f"{registry.host}/faults/tampered:1")
    push(bundle, ref, direct)
    layer = bundle.images()[1].manifest.layers[0]
    registry.tamper_blob(layer.digest)
    with pytest.raises(DigestMismatch, match=layer.digest) as caught:
        pull(ref, direct)
    assert "\n" not in str(caught.value)
    # streamed into a layout: the bad blob never lands there
    layout = Layout.create(tmp_path / "layout")
    with pytest.raises(DigestMismatch):
        pull(ref, direct, layout=layout)
    assert not layout.blob_path(layer.digest).exists()
    assert layout.entries() == ()
