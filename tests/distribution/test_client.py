"""RegistryClient against small real registries on 127.0.0.1 (tests/distribution/fake_registry.py):
uploads (monolithic, chunked, resumed, restarted), downloads (verified, resumed, redirected),
manifests, tags, deletes, retries and error messages."""

from __future__ import annotations

import hashlib
import io
import json
import socket
from collections.abc import Iterator
from typing import IO

import pytest

from alpenglow.apk.fetch import RetryPolicy
from alpenglow.distribution import client as client_module
from alpenglow.distribution.auth import Credential
from alpenglow.distribution.client import MANIFEST_ACCEPT, RawManifest, RegistryClient
from alpenglow.errors import DigestMismatch, RegistryError
from alpenglow.oci.image import (
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    digest_of,
    index_bytes,
    manifest_bytes,
)
from tests.distribution.fake_registry import FakeRegistry, Rule

BLOB = bytes(range(256)) * 4096  # 1 MiB
BLOB_DIGEST = digest_of(BLOB)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


def make_client(
    registry: FakeRegistry | str, sleeps: Sleeps | None = None, **kwargs: object
) -> RegistryClient:
    host = registry if isinstance(registry, str) else registry.host
    return RegistryClient(
        host,
        sleep=sleeps if sleeps is not None else Sleeps(),
        rand=lambda: 0.5,
        timeout=10.0,
        **kwargs,  # type: ignore[arg-type]
    )


def _manifest(config: bytes = b"{}", layers: tuple[bytes, ...] = (BLOB,)) -> bytes:
    return manifest_bytes(
        Descriptor.of(OCI_CONFIG, config), [Descriptor.of(OCI_LAYER, data) for data in layers]
    )


# -- basics ------------------------------------------------------------------------------------


def test_ping_and_base_url(fake: FakeRegistry) -> None:
    with make_client(fake) as client:
        client.ping()
        assert client.base_url() == f"http://{fake.host}"
        assert repr(client) == f"RegistryClient({fake.host!r})"


def test_ping_not_a_registry() -> None:
    with FakeRegistry() as fake:
        fake.add_rule(Rule("GET", r"^/v2/$", status=404))
        with make_client(fake) as client, pytest.raises(RegistryError) as info:
            client.ping()
    assert str(info.value) == f"{fake.host}: ping: HTTP 404 Not Found"


def test_monolithic_upload_and_download(fake: FakeRegistry) -> None:
    with make_client(fake) as client:
        assert client.blob_exists("a/b", BLOB_DIGEST) is None
        seen: list[int] = []
        assert client.upload_blob("a/b", BLOB, BLOB_DIGEST, progress=seen.append) == "uploaded"
        assert seen[0] == 0
        assert seen[-1] == len(BLOB)
        assert client.blob_exists("a/b", BLOB_DIGEST) == len(BLOB)
        assert client.get_blob("a/b", BLOB_DIGEST, size=len(BLOB)) == BLOB
    assert fake.blobs[BLOB_DIGEST] == BLOB
    assert [r.method for r in fake.requests(path="/blobs/uploads/")] == ["POST", "PUT"]
    put = fake.requests("PUT")[0]
    assert put.headers["content-length"] == str(len(BLOB))
    assert put.headers["content-type"] == "application/octet-stream"
    assert f"digest={BLOB_DIGEST.replace(':', '%3A')}" in put.path


def test_upload_from_a_file(fake: FakeRegistry) -> None:
    with make_client(fake) as client:
        stream = io.BytesIO(b"xx" + BLOB)
        stream.seek(2)
        body = io.BytesIO(BLOB)
        assert client.upload_blob("a/b", body, BLOB_DIGEST) == "uploaded"
        assert client.upload_blob("a/c", body, BLOB_DIGEST, chunk_size=300_000) == "uploaded"
    assert fake.repo_blobs["a/c"] == {BLOB_DIGEST}


def test_chunked_upload(fake: FakeRegistry) -> None:
    with make_client(fake) as client:
        client.upload_blob("a/b", BLOB, BLOB_DIGEST, chunk_size=400_000)
    patches = fake.requests("PATCH")
    assert [p.headers["content-range"] for p in patches] == [
        "0-399999",
        "400000-799999",
        f"800000-{len(BLOB) - 1}",
    ]
    final = fake.requests("PUT")[0]
    assert final.headers["content-length"] == "0"
    assert fake.blobs[BLOB_DIGEST] == BLOB


def test_chunked_upload_resumes_after_a_dropped_connection(fake: FakeRegistry) -> None:
    fake.add_rule(Rule("PATCH", "/blobs/uploads/", times=1))  # the first chunk goes through
    # the second chunk's connection drops after the registry took 123 of its bytes
    fake.add_rule(Rule("PATCH", "/blobs/uploads/", drop=True, keep=123, times=1))
    sleeps = Sleeps()
    with make_client(fake, sleeps) as client:
        client.upload_blob("a/b", BLOB, BLOB_DIGEST, chunk_size=400_000)
    assert fake.blobs[BLOB_DIGEST] == BLOB
    methods = [(r.method, r.headers.get("content-range")) for r in fake.requests(path="uploads")]
    assert methods == [
        ("POST", None),
        ("PATCH", "0-399999"),
        ("PATCH", "400000-799999"),  # dropped after 123 bytes
        ("GET", None),  # how much arrived?  Range: 0-400122
        ("PATCH", "400123-800122"),
        ("PATCH", f"800123-{len(BLOB) - 1}"),
        ("PUT", None),
    ]
    assert len(sleeps) == 1


def test_chunked_upload_416_asks_where_to_go_on(fake: FakeRegistry) -> None:
    fake.add_rule(Rule("PATCH", "/blobs/uploads/", status=416, times=1))
    with make_client(fake) as client:
        client.upload_blob("a/b", BLOB, BLOB_DIGEST, chunk_size=600_000)
    assert fake.blobs[BLOB_DIGEST] == BLOB
    methods = [(r.method, r.headers.get("content-range")) for r in fake.requests(path="uploads")]
    assert methods == [
        ("POST", None),
        ("PATCH", "0-599999"),  # 416
        ("GET", None),  # Range: 0-0: nothing yet
        ("PATCH", "0-599999"),
        ("PATCH", f"600000-{len(BLOB) - 1}"),
        ("PUT", None),
    ]


def test_lost_upload_session_starts_over(fake: FakeRegistry) -> None:
    fake.add_rule(Rule("PATCH", "/blobs/uploads/", status=404, code="BLOB_UPLOAD_UNKNOWN", times=1))
    with make_client(fake) as client:
        client.upload_blob("a/b", BLOB, BLOB_DIGEST, chunk_size=600_000)
    assert fake.blobs[BLOB_DIGEST] == BLOB
    assert [r.method for r in fake.requests(path="uploads")] == [
        "POST",
        "PATCH",  # 404: the session is gone
        "POST",
        "PATCH",
        "PATCH",
        "PUT",
    ]


def test_dropped_monolithic_upload_starts_over(fake: FakeRegistry) -> None:
    fake.add_rule(Rule("PUT", "/blobs/uploads/", drop=True, times=1))
    with make_client(fake) as client:
        assert client.upload_blob("a/b", BLOB, BLOB_DIGEST) == "uploaded"
    assert [r.method for r in fake.requests(path="uploads")] == ["POST", "PUT", "POST", "PUT"]


def test_a_lost_answer_to_an_upload_is_not_uploaded_again(fake: FakeRegistry) -> None:
    fake.add_rule(Rule("PUT", "/blobs/uploads/", lose_answer=True, times=1))
    with make_client(fake) as client:
        assert client.upload_blob("a/b", BLOB, BLOB_DIGEST) == "uploaded"
    assert fake.blobs[BLOB_DIGEST] == BLOB
    assert [r.method for r in fake.requests(path="/blobs/")] == ["POST", "PUT", "HEAD"]


def test_upload_gives_up(fake: FakeRegistry) -> None:
    fake.add_rule(Rule("PUT", "/blobs/uploads/", drop=True, times=100))
    sleeps = Sleeps()
    with (
        make_client(fake, sleeps, retry=RetryPolicy(attempts=3)) as client,
        pytest.raises(RegistryError) as info,
    ):
        client.upload_blob("a/b", BLOB, BLOB_DIGEST)
    message = str(info.value)
    assert message.startswith(f"{fake.host}/a/b: upload blob {BLOB_DIGEST}: ")
    assert "connection broken" in message
    assert message.endswith("(after 3 attempts)")
    assert len(sleeps) == 2


def test_wrong_digest_upload_is_refused(fake: FakeRegistry) -> None:
    wrong = digest_of(b"other")
    with (
        make_client(fake, retry=RetryPolicy(attempts=2)) as client,
        pytest.raises(RegistryError) as info,
    ):
        client.upload_blob("a/b", BLOB, wrong)
    assert "DIGEST_INVALID" in str(info.value)
    assert wrong not in fake.blobs


def test_mount(fake: FakeRegistry) -> None:
    fake.put_blob("src/repo", BLOB)
    with make_client(fake) as client:
        assert client.mount_blob("dst/repo", BLOB_DIGEST, "src/repo") is True
        assert client.blob_exists("dst/repo", BLOB_DIGEST) == len(BLOB)
        other = digest_of(b"not there")
        assert client.mount_blob("dst/repo", other, "src/repo") is False
        assert fake.uploads == {}  # the session the registry opened was cancelled
        assert client.upload_blob("x/y", BLOB, BLOB_DIGEST, mount_from="src/repo") == "mounted"
        assert client.upload_blob("x/z", b"new", digest_of(b"new"), mount_from="src/repo") == (
            "uploaded"
        )
    posts = [r.path for r in fake.requests("POST")]
    assert posts[0] == f"/v2/dst/repo/blobs/uploads/?mount={BLOB_DIGEST.replace(':', '%3A')}" + (
        "&from=src%2Frepo"
    )


# -- downloads ---------------------------------------------------------------------------------


def test_download_into_a_sink(fake: FakeRegistry) -> None:
    fake.put_blob("a/b", BLOB)
    got: list[bytes] = []

    def sink(fh: IO[bytes]) -> str:
        got.append(fh.read())
        return "stored"

    with make_client(fake) as client:
        assert client.get_blob("a/b", BLOB_DIGEST, sink, size=len(BLOB)) == "stored"
    assert got == [BLOB]


def test_corrupt_blob_is_refused_and_nothing_stored(fake: FakeRegistry) -> None:
    fake.put_blob("a/b", BLOB)
    fake.add_rule(Rule("GET", "/blobs/", corrupt=True, times=10))
    called: list[bool] = []
    with make_client(fake) as client:
        with pytest.raises(DigestMismatch) as info:
            client.get_blob("a/b", BLOB_DIGEST, lambda fh: called.append(True))
        with pytest.raises(DigestMismatch):
            client.get_blob("a/b", BLOB_DIGEST)
    assert not called
    message = str(info.value)
    assert message.startswith(f"{fake.host}/a/b: blob {BLOB_DIGEST}: the received bytes hash to")
    assert message.endswith("nothing was stored")
    assert info.value.registry == fake.host
    assert info.value.repository == "a/b"


def test_blob_of_the_wrong_size_is_refused(fake: FakeRegistry) -> None:
    fake.put_blob("a/b", BLOB)
    with make_client(fake) as client:
        with pytest.raises(DigestMismatch, match="more than the 1000 bytes expected"):
            client.get_blob("a/b", BLOB_DIGEST, size=1000)
        with pytest.raises(DigestMismatch, match=f"received {len(BLOB)} bytes, expected"):
            client.get_blob("a/b", BLOB_DIGEST, size=len(BLOB) + 1)


def test_download_resumes_with_a_range(fake: FakeRegistry) -> None:
    fake.put_blob("a/b", BLOB)
    fake.add_rule(Rule("GET", "/blobs/", cut=300_000, times=1))
    seen: list[int] = []
    with make_client(fake) as client:
        assert client.get_blob("a/b", BLOB_DIGEST, progress=seen.append) == BLOB
    gets = fake.requests("GET", "/blobs/")
    assert [g.headers.get("range") for g in gets] == [None, "bytes=300000-"]
    assert seen[-1] == len(BLOB)
    assert 300_000 in seen


def test_redirected_download_keeps_the_token_home() -> None:
    with FakeRegistry(auth="bearer", users={"u": "p"}, redirect_blobs=True) as fake:
        fake.put_blob("a/b", BLOB)
        with make_client(fake, credentials=Credential("u", "p")) as client:
            assert client.get_blob("a/b", BLOB_DIGEST) == BLOB
        assert fake.storage.authorizations == [None]
        assert fake.requests("GET", "/blobs/")[-1].headers["authorization"].startswith("Bearer ")


# -- manifests ---------------------------------------------------------------------------------


def test_manifests(fake: FakeRegistry) -> None:
    data = _manifest()
    digest = digest_of(data)
    with make_client(fake) as client:
        assert client.put_manifest("a/b", "v1", data, OCI_MANIFEST) == digest
        got = client.get_manifest("a/b", "v1")
        assert got == RawManifest(data, OCI_MANIFEST, digest)
        assert got.descriptor == Descriptor(OCI_MANIFEST, digest, len(data))
        assert client.get_manifest("a/b", digest) == got
        assert client.head_manifest("a/b", "v1") == got.descriptor
        assert client.head_manifest("a/b", "nope") is None
        index = index_bytes([got.descriptor])
        assert client.put_manifest("a/b", digest_of(index), index, OCI_INDEX) == digest_of(index)
        assert client.get_manifest("a/b", digest_of(index)).media_type == OCI_INDEX
    accept = fake.requests("GET", "/manifests/")[0].headers["accept"]
    assert accept.split(", ") == list(MANIFEST_ACCEPT)


def test_manifest_put_by_the_wrong_digest(fake: FakeRegistry) -> None:
    with make_client(fake) as client, pytest.raises(DigestMismatch):
        client.put_manifest("a/b", digest_of(b"x"), _manifest(), OCI_MANIFEST)
    assert fake.requests("PUT") == []


def test_manifest_without_digest_header_is_hashed_here() -> None:
    with FakeRegistry(send_digest=False) as fake:
        data = _manifest()
        fake.manifests["a/b"] = {digest_of(data): (data, "text/plain")}
        fake.tags["a/b"] = {"v1": digest_of(data)}
        with make_client(fake) as client:
            got = client.get_manifest("a/b", "v1")
            # no usable Content-Type: the media type comes from the document
            assert got == RawManifest(data, OCI_MANIFEST, digest_of(data))
            assert client.head_manifest("a/b", "v1") == got.descriptor


def test_tampered_manifest_is_refused(fake: FakeRegistry) -> None:
    good = _manifest()
    bad = _manifest(config=b"{ }")
    fake.manifests["a/b"] = {digest_of(good): (bad, DOCKER_MANIFEST)}
    fake.tags["a/b"] = {"v1": digest_of(good)}
    with make_client(fake) as client:
        with pytest.raises(DigestMismatch) as by_digest:
            client.get_manifest("a/b", digest_of(good))
        with pytest.raises(DigestMismatch) as by_tag:
            client.get_manifest("a/b", "v1")
    assert str(by_digest.value) == (
        f"{fake.host}/a/b: manifest {digest_of(good)}: the received manifest hashes to "
        f"{digest_of(bad)}, not {digest_of(good)}"
    )
    assert "manifest v1" in str(by_tag.value)


def test_missing_manifest_error(fake: FakeRegistry) -> None:
    with make_client(fake) as client, pytest.raises(RegistryError) as info:
        client.get_manifest("a/b", "v9")
    assert str(info.value) == (
        f"{fake.host}/a/b: manifest v9: HTTP 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)"
    )
    assert info.value.status == 404
    assert info.value.codes == ("MANIFEST_UNKNOWN",)
    assert info.value.repository == "a/b"


def test_tags_pagination(fake: FakeRegistry) -> None:
    data = _manifest()
    names = [f"t{i:02d}" for i in range(7)]
    with make_client(fake) as client:
        for name in names:
            client.put_manifest("a/b", name, data, OCI_MANIFEST)
        assert client.list_tags("a/b", page_size=3) == names
        assert len(fake.requests("GET", "/tags/list")) == 3
        fake.page_size = 2
        assert client.list_tags("a/b") == names
        with pytest.raises(RegistryError, match="NAME_UNKNOWN"):
            client.list_tags("nope")
    paths = [r.path for r in fake.requests("GET", "/tags/list")]
    assert paths[:3] == [
        "/v2/a/b/tags/list?n=3",
        "/v2/a/b/tags/list?n=3&last=t02",
        "/v2/a/b/tags/list?n=3&last=t05",
    ]


def test_delete(fake: FakeRegistry) -> None:
    data = _manifest()
    fake.put_blob("a/b", BLOB)
    with make_client(fake) as client:
        client.put_manifest("a/b", "v1", data, OCI_MANIFEST)
        client.delete_manifest("a/b", digest_of(data))
        assert client.head_manifest("a/b", "v1") is None
        client.delete_blob("a/b", BLOB_DIGEST)
        assert client.blob_exists("a/b", BLOB_DIGEST) is None


def test_delete_not_allowed() -> None:
    with FakeRegistry(delete=False) as fake, make_client(fake) as client:
        client.put_manifest("a/b", "v1", _manifest(), OCI_MANIFEST)
        with pytest.raises(RegistryError) as info:
            client.delete_manifest("a/b", digest_of(_manifest()))
    assert str(info.value) == (
        f"{fake.host}/a/b: delete manifest {digest_of(_manifest())}: HTTP 405 Method Not "
        "Allowed (UNSUPPORTED: The operation is unsupported.) - this registry does not allow "
        "deleting"
    )
    assert info.value.status == 405


# -- retries -----------------------------------------------------------------------------------


def test_retries_on_5xx_with_backoff(fake: FakeRegistry) -> None:
    fake.put_blob("a/b", BLOB)
    fake.add_rule(Rule("HEAD", "/blobs/", status=503, times=2))
    sleeps = Sleeps()
    with make_client(fake, sleeps, retry=RetryPolicy(backoff=0.5)) as client:
        assert client.blob_exists("a/b", BLOB_DIGEST) == len(BLOB)
    # rand() == 0.5: three quarters of 0.5 s, then of 1 s
    assert sleeps == [0.375, 0.75]


def test_retry_after_is_honoured_and_capped(fake: FakeRegistry) -> None:
    fake.add_rule(Rule("GET", "/manifests/", status=429, headers={"Retry-After": "7"}))
    fake.add_rule(Rule("GET", "/manifests/", status=503, headers={"Retry-After": "3600"}))
    fake.put_blob("a/b", b"{}")
    data = _manifest()
    fake.manifests["a/b"] = {digest_of(data): (data, OCI_MANIFEST)}
    sleeps = Sleeps()
    with make_client(fake, sleeps) as client:
        assert client.get_manifest("a/b", digest_of(data)).data == data
    assert sleeps == [7.0, 30.0]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(fake: FakeRegistry, status: int) -> None:
    fake.add_rule(Rule("GET", "/tags/list", status=status, times=1))
    fake.tags["a/b"] = {"x": "sha256:" + "0" * 64}
    sleeps = Sleeps()
    with make_client(fake, sleeps) as client:
        assert client.list_tags("a/b") == ["x"]
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_other_statuses_fail_at_once(fake: FakeRegistry, status: int) -> None:
    fake.add_rule(Rule("GET", "/tags/list", status=status, code="DENIED", times=5))
    sleeps = Sleeps()
    with make_client(fake, sleeps) as client, pytest.raises(RegistryError) as info:
        client.list_tags("a/b")
    assert sleeps == []
    assert f"{fake.host}/a/b: list tags: HTTP {status}" in str(info.value)
    assert "(DENIED: injected)" in str(info.value)


def test_gives_up_after_the_last_attempt(fake: FakeRegistry) -> None:
    fake.add_rule(Rule("GET", "/tags/list", status=503, times=50))
    sleeps = Sleeps()
    with (
        make_client(fake, sleeps, retry=RetryPolicy(attempts=4)) as client,
        pytest.raises(RegistryError) as info,
    ):
        client.list_tags("a/b")
    assert str(info.value) == (
        f"{fake.host}/a/b: list tags: HTTP 503 Service Unavailable (after 4 attempts)"
    )
    assert info.value.status == 503
    assert len(sleeps) == 3


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    with (
        make_client(f"127.0.0.1:{port}", sleeps, retry=RetryPolicy(attempts=2)) as client,
        pytest.raises(RegistryError) as info,
    ):
        client.ping()
    assert str(info.value) == f"127.0.0.1:{port}: ping: connection refused (after 2 attempts)"
    assert info.value.status is None


def test_dropped_connection_on_read_is_retried(fake: FakeRegistry) -> None:
    fake.add_rule(Rule("GET", "/tags/list", drop=True, times=1))
    fake.tags["a/b"] = {"x": "sha256:" + "0" * 64}
    with make_client(fake) as client:
        assert client.list_tags("a/b") == ["x"]


def test_insecure_registry_falls_back_to_plain_http(fake: FakeRegistry) -> None:
    with make_client(fake, insecure=[fake.host]) as client:
        client.ping()
        assert client.base_url() == f"http://{fake.host}"


def test_unsupported_digest_algorithm(fake: FakeRegistry) -> None:
    with make_client(fake) as client, pytest.raises(RegistryError, match="unsupported digest"):
        client.get_blob("a/b", "md5:" + "0" * 32)


def test_manifest_digest_of_config_blob_upload(fake: FakeRegistry) -> None:
    config = canonical_json({"architecture": "amd64", "os": "linux"})
    with make_client(fake) as client:
        client.upload_blob("a/b", config, digest_of(config))
        assert json.loads(client.get_blob("a/b", digest_of(config))) == {
            "architecture": "amd64",
            "os": "linux",
        }
    assert hashlib.sha256(fake.blobs[digest_of(config)]).hexdigest() in digest_of(config)


def test_exports() -> None:
    assert sorted(client_module.__all__) == [
        "MANIFEST_ACCEPT",
        "MAX_MANIFEST_SIZE",
        "RawManifest",
        "RegistryClient",
        "StoredManifest",
    ]


def test_insecure_tls_registry_is_spoken_to_without_verification() -> None:
    with FakeRegistry(tls=True) as fake:
        fake.put_blob("a/b", BLOB)
        with make_client(fake, insecure=[fake.host]) as client:
            assert client.base_url() == f"https://{fake.host}"
            assert client.get_blob("a/b", BLOB_DIGEST) == BLOB


def test_token_service_certificates_stay_verified() -> None:
    with FakeRegistry(tls=True) as token_service:
        realm = f'Bearer realm="https://{token_service.host}/token",service="x"'
        with FakeRegistry(auth="bearer", www_authenticate=realm) as fake:
            fake.put_blob("a/b", BLOB)
            sleeps = Sleeps()
            with (
                make_client(fake, sleeps, insecure=[fake.host]) as client,
                pytest.raises(RegistryError) as info,
            ):
                client.get_blob("a/b", BLOB_DIGEST)
    assert str(info.value) == (
        f"{fake.host}: the TLS certificate of {token_service.host} could not be verified"
    )
    assert info.value.hint is None
    assert sleeps == []  # not retried
    assert token_service.log == []
