"""push and pull: against the small registry of fake_registry.py (exact request sequences,
faults) and against Debian's docker-registry (plain, basic auth, token auth), checked with
skopeo both ways."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alpenglow.apk.fetch import RetryPolicy
from alpenglow.distribution import transfer as transfer_module
from alpenglow.distribution.auth import Credential
from alpenglow.distribution.client import RegistryClient
from alpenglow.distribution.reference import parse_reference
from alpenglow.distribution.transfer import NullProgress, pull, push, referrers_tag
from alpenglow.errors import AlpenglowError, DigestMismatch, ImageNotFound, RegistryError
from alpenglow.oci.image import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ImageBundle,
    digest_of,
    manifest_bytes,
)
from alpenglow.oci.layout import Layout
from alpenglow.oci.platform import parse_platform
from alpenglow.oci.store import ImageStore
from alpenglow.oci.transport import read_oci
from tests.distribution.conftest import PASSWORD, USER
from tests.distribution.fake_registry import FakeRegistry, Rule
from tests.oci.images import make_image, make_index, skopeo
from tests.support.fixture_image import random_image
from tests.support.registry import FaultProxy, RegistryServer


class Recorder:
    """A thread-safe Progress that keeps every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []
        self.lock = threading.Lock()

    def started(self, digest: str, total: int) -> None:
        with self.lock:
            self.events.append(("started", digest, total))

    def advanced(self, digest: str, done: int) -> None:
        with self.lock:
            self.events.append(("advanced", digest, done))

    def finished(self, digest: str, outcome: str) -> None:
        with self.lock:
            self.events.append(("finished", digest, outcome))

    def outcomes(self) -> dict[str, str]:
        return {d: str(o) for kind, d, o in self.events if kind == "finished"}


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


def client_for(host: str, **kwargs: object) -> RegistryClient:
    kwargs.setdefault("sleep", lambda _: None)
    return RegistryClient(host, timeout=20.0, **kwargs)  # type: ignore[arg-type]


def leaves(bundle: ImageBundle) -> set[str]:
    return {
        d.digest
        for d in bundle.descriptors()
        if d.media_type not in MANIFEST_TYPES and d.media_type not in INDEX_TYPES
    }


def same_image(a: ImageBundle, b: ImageBundle) -> None:
    assert a.root.digest == b.root.digest
    assert a.digests() == b.digests()
    for digest in a.digests():
        assert a.blob(digest) == b.blob(digest)


# -- against the small registry ----------------------------------------------------------------


def test_push_then_pull(fake: FakeRegistry) -> None:
    image = make_index()
    ref = parse_reference(f"{fake.host}/multi/img:1")
    progress = Recorder()
    with client_for(fake.host) as client:
        root = push(image, ref, client, progress=progress)
        assert root == image.root
        assert progress.outcomes() == dict.fromkeys(leaves(image), "uploaded")
        pulled = pull(ref, client, progress=progress)
    pulled.verify()
    same_image(pulled, image)
    assert pulled.source == str(ref)
    assert fake.tags["multi/img"] == {"1": image.root.digest}
    # every child manifest went up by digest before the index went up under the tag
    puts = [r.path.rsplit("/", 1)[1] for r in fake.requests("PUT", "/manifests/")]
    children = {d.digest for d in image.index().manifests}
    assert set(puts[:-1]) == children
    assert puts[-1] == "1"


def test_a_second_push_uploads_nothing(fake: FakeRegistry) -> None:
    image = make_index()
    ref = parse_reference(f"{fake.host}/multi/img:1")
    with client_for(fake.host) as client:
        push(image, ref, client)
        before = len(fake.requests("POST"))
        progress = Recorder()
        push(image, ref.with_tag("2"), client, progress=progress)
    assert len(fake.requests("POST")) == before
    assert set(progress.outcomes().values()) == {"exists"}
    assert fake.tags["multi/img"] == {"1": image.root.digest, "2": image.root.digest}


def test_push_mounts_from_a_sibling_repository(fake: FakeRegistry) -> None:
    image = make_index()
    with client_for(fake.host) as client:
        push(image, parse_reference(f"{fake.host}/team/base:1"), client)
        progress = Recorder()
        push(
            image,
            parse_reference(f"{fake.host}/team/app:1"),
            client,
            progress=progress,
            mount_from="team/base",
        )
    assert set(progress.outcomes().values()) == {"mounted"}
    assert fake.repo_blobs["team/app"] == leaves(image)


def test_chunked_push(fake: FakeRegistry) -> None:
    image = random_image(300_000)
    with client_for(fake.host) as client:
        push(image, parse_reference(f"{fake.host}/big/img:x"), client, chunk_size=100_000)
        pulled = pull(parse_reference(f"{fake.host}/big/img:x"), client)
    same_image(pulled, image)
    assert len(fake.requests("PATCH")) >= 3


def test_push_by_digest_only(fake: FakeRegistry) -> None:
    image = make_image("x86_64")
    ref = parse_reference(f"{fake.host}/a/b@{image.root.digest}")
    with client_for(fake.host) as client:
        push(image, ref, client)
        same_image(pull(ref, client), image)
    assert fake.tags.get("a/b", {}) == {}
    with client_for(fake.host) as client, pytest.raises(AlpenglowError, match="not sha256:0"):
        push(image, parse_reference(f"{fake.host}/a/b@sha256:{'0' * 64}"), client)


def sbom(
    subject: Descriptor,
    text: str,
    *,
    artifact_type: str = "application/spdx+json",
    annotations: dict[str, str] | None = None,
) -> ImageBundle:
    """An artifact manifest about ``subject``: an empty config and one SBOM layer."""
    document = text.encode()
    empty = b"{}"
    config = Descriptor.of(OCI_EMPTY, empty)
    artifact = manifest_bytes(
        config,
        [Descriptor.of("application/spdx+json", document)],
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
        artifact_type=artifact_type,
        annotations=annotations,
    )
    root = Descriptor.of(OCI_MANIFEST, artifact)
    blobs = {root.digest: artifact, digest_of(document): document, digest_of(empty): empty}
    return ImageBundle(root, blobs, f"sbom {text}")


def listed(fake: FakeRegistry, repo: str, subject: str) -> dict[str, Any]:
    """The referrers index under the tag of ``subject`` (its JSON)."""
    digest = fake.tags[repo][referrers_tag(subject)]
    data, media_type = fake.manifests[repo][digest]
    assert media_type == OCI_INDEX
    return json.loads(data)  # type: ignore[no-any-return]


def tag_puts(fake: FakeRegistry) -> list[str]:
    return [r.path for r in fake.requests("PUT", "/manifests/sha256-")]


def test_referrers_tag_follows_the_spec() -> None:
    assert referrers_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64
    assert referrers_tag("sha512:" + "a" * 128) == "sha512-" + "a" * 64
    odd = (
        "test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall"
        "+truncation:alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOf"
        "CharactersToExcerciseEncodedTruncation"
    )
    assert referrers_tag(odd) == (
        "test-algorithm-using-algorithm-s-"
        "alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot"
    )


def test_push_lists_referrers_under_the_tag_schema(fake: FakeRegistry) -> None:
    image = make_index()
    amd, arm = image.index().manifests[:2]
    spdx = sbom(amd, "amd spdx", annotations={"org.opencontainers.image.created": "2024"})
    cdx = sbom(amd, "amd cdx", artifact_type="")  # no artifactType: its config's media type
    other = sbom(arm, "arm spdx")
    about_index = sbom(image.root, "index")
    ref = parse_reference(f"{fake.host}/a/b:1")
    progress = Recorder()
    with client_for(fake.host) as client:
        push(image, ref, client, referrers=[spdx, cdx, other, about_index], progress=progress)
        for artifact in (spdx, cdx, other, about_index):
            assert client.get_manifest("a/b", artifact.root.digest).data == artifact.blob(
                artifact.root.digest
            )
            for digest in leaves(artifact):
                assert client.get_blob("a/b", digest) == artifact.blob(digest)
    assert fake.tags["a/b"]["1"] == image.root.digest  # the image's own tag is the image
    assert listed(fake, "a/b", amd.digest) == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": spdx.root.digest,
                "size": spdx.root.size,
                "artifactType": "application/spdx+json",
                "annotations": {"org.opencontainers.image.created": "2024"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": cdx.root.digest,
                "size": cdx.root.size,
                "artifactType": OCI_EMPTY,
            },
        ],
    }
    assert [m["digest"] for m in listed(fake, "a/b", arm.digest)["manifests"]] == [
        other.root.digest
    ]
    assert [m["digest"] for m in listed(fake, "a/b", image.root.digest)["manifests"]] == [
        about_index.root.digest
    ]
    # the artifacts go up once the image's platform manifests are (a referrer of the index
    # once the index is), and the lists last, once the image and every artifact are up
    puts = [r.path.rsplit("/", 1)[1] for r in fake.requests("PUT", "/manifests/")]
    lists = {referrers_tag(d) for d in (amd.digest, arm.digest, image.root.digest)}
    assert set(puts[-3:]) == lists
    platforms = [d.digest for d in image.index().manifests]
    assert max(map(puts.index, platforms)) < min(
        puts.index(a.root.digest) for a in (spdx, cdx, other)
    )
    assert puts.index("1") < puts.index(about_index.root.digest)
    # the empty config is one blob for all three
    assert list(progress.outcomes()).count(digest_of(b"{}")) == 1


def test_push_merges_with_the_listed_referrers(fake: FakeRegistry) -> None:
    image = make_image("x86_64")
    subject = image.root
    theirs = {
        "mediaType": OCI_MANIFEST,
        "digest": "sha256:" + "1" * 64,
        "size": 99,
        "artifactType": "application/vnd.example.signature",
        "annotations": {"who": "someone else"},
        "data": "e30=",  # a field of theirs we do not know: kept as it is
    }
    mine = sbom(subject, "x86 spdx")
    existing = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [theirs],
        "annotations": {"kept": "yes"},
    }
    ref = parse_reference(f"{fake.host}/a/b:1")
    with client_for(fake.host) as client:
        client.put_manifest(
            "a/b", referrers_tag(subject.digest), json.dumps(existing).encode(), OCI_INDEX
        )
        push(image, ref, client, referrers=[mine])
    now = listed(fake, "a/b", subject.digest)
    assert now["annotations"] == {"kept": "yes"}
    assert now["manifests"][0] == theirs
    assert [m["digest"] for m in now["manifests"]] == [theirs["digest"], mine.root.digest]


def test_a_second_push_writes_no_list(fake: FakeRegistry) -> None:
    image = make_index()
    amd = image.index().manifests[0]
    first, second = sbom(amd, "one"), sbom(amd, "two")
    ref = parse_reference(f"{fake.host}/a/b:1")
    with client_for(fake.host) as client:
        push(image, ref, client, referrers=[first])
        assert len(tag_puts(fake)) == 1
        written = fake.tags["a/b"][referrers_tag(amd.digest)]
        push(image, ref, client, referrers=[first])
        push(image, ref.with_tag("2"), client, referrers=[first, first])
        assert len(tag_puts(fake)) == 1  # the list was read, and left as it was
        assert fake.tags["a/b"][referrers_tag(amd.digest)] == written
        push(image, ref, client, referrers=[second, first])  # one new: added, once
    assert len(tag_puts(fake)) == 2
    entries = listed(fake, "a/b", amd.digest)["manifests"]
    assert [m["digest"] for m in entries] == [first.root.digest, second.root.digest]


def test_a_registry_with_the_referrers_api_keeps_no_list() -> None:
    image = make_index()
    amd = image.index().manifests[0]
    artifact = sbom(amd, "spdx")
    with FakeRegistry(referrers_api=True) as fake, client_for(fake.host) as client:
        push(image, parse_reference(f"{fake.host}/a/b:1"), client, referrers=[artifact])
        assert client.get_manifest("a/b", artifact.root.digest).digest == artifact.root.digest
        assert tag_puts(fake) == []
        assert fake.requests("GET", "/manifests/sha256-") == []
        assert fake.tags["a/b"] == {"1": image.root.digest}


def test_a_tag_in_the_way_of_the_list(fake: FakeRegistry) -> None:
    image = make_image("x86_64")
    other = make_image("aarch64")
    artifact = sbom(image.root, "spdx")
    ref = parse_reference(f"{fake.host}/a/b:1")
    with client_for(fake.host) as client:
        push(other, ref.with_tag(referrers_tag(image.root.digest)), client)
        with pytest.raises(AlpenglowError) as info:
            push(image, ref, client, referrers=[artifact])
        assert "not the image index listing the referrers" in str(info.value)
        assert fake.tags["a/b"]["1"] == image.root.digest  # the image went up all the same
        with pytest.raises(AlpenglowError, match="is the tag that lists the referrers"):
            push(
                image, ref.with_tag(referrers_tag(image.root.digest)), client, referrers=[artifact]
            )


def test_pull_one_platform(fake: FakeRegistry) -> None:
    image = make_index()
    ref = parse_reference(f"{fake.host}/multi/img:1")
    with client_for(fake.host) as client:
        push(image, ref, client)
        arm = pull(ref, client, platform=parse_platform("linux/arm64"))
        with pytest.raises(ImageNotFound) as info:
            pull(ref, client, platform=parse_platform("s390x"))
    arm.verify()
    wanted = next(
        d for d in image.index().manifests if d.platform and d.platform.architecture == "arm64"
    )
    assert arm.root == wanted
    assert set(arm.blobs) == {wanted.digest} | {
        d.digest for d in (image.manifest(wanted).config, *image.manifest(wanted).layers)
    }
    assert str(info.value) == (
        f"{ref}: no image for linux/s390x (it has linux/amd64, linux/arm64/v8, linux/arm/v7)"
    )


def test_pull_single_image_with_platform(fake: FakeRegistry) -> None:
    image = make_image("aarch64")
    ref = parse_reference(f"{fake.host}/single/img:1")
    with client_for(fake.host) as client:
        push(image, ref, client)
        got = pull(ref, client, platform=parse_platform("arm64"))
        assert got.root.platform is not None
        assert got.root.digest == image.root.digest
        with pytest.raises(ImageNotFound, match="the image is for linux/arm64/v8, not linux/amd64"):
            pull(ref, client, platform=parse_platform("amd64"))


def test_pull_into_a_layout_then_the_store(fake: FakeRegistry, tmp_path: Path) -> None:
    image = make_index()
    ref = parse_reference(f"{fake.host}/multi/img:1")
    store = ImageStore(tmp_path / "store")
    with client_for(fake.host) as client:
        push(image, ref, client)
        pulled = pull(ref, client, layout=store.layout)
        store.add(pulled, [ref.familiar])
        progress = Recorder()
        again = pull(ref, client, layout=store.layout, progress=progress)
    assert set(progress.outcomes().values()) == {"cached"}
    same_image(store.get(ref.familiar), image)
    same_image(again, image)


def test_corrupt_blob_stores_nothing(fake: FakeRegistry, tmp_path: Path) -> None:
    image = make_image("x86_64")
    ref = parse_reference(f"{fake.host}/a/b:1")
    layer = image.manifest().layers[0].digest
    layout = Layout.create(tmp_path / "layout")
    progress = Recorder()
    with client_for(fake.host) as client:
        push(image, ref, client)
        fake.add_rule(Rule("GET", f"/blobs/{layer}", corrupt=True, times=10))
        with pytest.raises(DigestMismatch) as info:
            pull(ref, client, layout=layout, progress=progress)
    assert f"{fake.host}/a/b: blob {layer}: the received bytes hash to" in str(info.value)
    assert not layout.has_blob(layer)
    assert not layout.has_blob(image.root.digest)
    assert progress.outcomes()[layer] == "failed"
    assert [p.name for p in (tmp_path / "layout" / "blobs" / "sha256").iterdir()] == [
        image.manifest().config.digest.partition(":")[2]
    ] or not any((tmp_path / "layout" / "blobs" / "sha256").iterdir())
    assert not any(p.name.startswith(".tmp") for p in (tmp_path / "layout").rglob("*"))


def test_a_failing_upload_stops_the_push(fake: FakeRegistry) -> None:
    image = make_index()
    fake.add_rule(Rule("PUT", "/blobs/uploads/", status=400, code="DENIED", times=1000))
    progress = Recorder()
    with client_for(fake.host) as client, pytest.raises(RegistryError, match="DENIED"):
        push(image, parse_reference(f"{fake.host}/a/b:1"), client, progress=progress)
    assert "failed" in progress.outcomes().values()
    assert fake.requests("PUT", "/manifests/") == []  # no manifest and no tag


def test_null_progress_and_exports() -> None:
    progress = NullProgress()
    progress.started("d", 1)
    progress.advanced("d", 1)
    progress.finished("d", "uploaded")
    assert sorted(transfer_module.__all__) == [
        "NullProgress",
        "Progress",
        "pull",
        "push",
        "referrers_tag",
    ]


# -- against docker-registry -------------------------------------------------------------------


def skopeo_inspect(reference: str, *extra: str) -> dict[str, object]:
    done = skopeo("inspect", "--raw", "--tls-verify=false", *extra, f"docker://{reference}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_push_pull_docker_registry(registry: RegistryServer, tmp_path: Path) -> None:
    image = make_index()
    ref = parse_reference(f"{registry.host}/alpenglow/multi:1.0")
    with client_for(registry.host) as client:
        client.ping()
        push(image, ref, client)
        pulled = pull(ref, client)
        assert client.list_tags("alpenglow/multi") == ["1.0"]
    same_image(pulled, image)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout
    assert digest_of(raw.encode()) == image.root.digest
    # skopeo reads what we pushed, and we read what skopeo pushed
    skopeo(
        "copy", "--all", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path / 'oci'}:x"
    )
    same_image(read_oci(tmp_path / "oci", "x"), image)
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"oci:{tmp_path / 'oci'}:x",
        f"docker://{registry.host}/from/skopeo:2",
    )
    with client_for(registry.host) as client:
        same_image(pull(parse_reference(f"{registry.host}/from/skopeo:2"), client), image)


def test_fixture_image_round_trip(registry: RegistryServer, fixture_image: ImageBundle) -> None:
    ref = parse_reference(f"{registry.host}/alpine-base:latest")
    with client_for(registry.host) as client:
        push(fixture_image, ref, client, jobs=8)
        pulled = pull(ref, client, jobs=8)
    same_image(pulled, fixture_image)
    assert digest_of(
        skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout.encode()
    ) == (fixture_image.root.digest)


def test_docker_registry_chunked_and_tags(registry: RegistryServer) -> None:
    image = random_image(3_000_000)
    ref = parse_reference(f"{registry.host}/big/img:a")
    with client_for(registry.host) as client:
        push(image, ref, client, chunk_size=1 << 20)
        for tag in "bcde":
            push(image, ref.with_tag(tag), client)
        assert sorted(client.list_tags("big/img", page_size=2)) == list("abcde")
        same_image(pull(ref, client), image)
        client.delete_manifest("big/img", image.root.digest)
        assert client.head_manifest("big/img", "a") is None


def test_docker_registry_tampered_blob(registry: RegistryServer, tmp_path: Path) -> None:
    image = make_image("x86_64")
    ref = parse_reference(f"{registry.host}/a/b:1")
    layer = image.manifest().layers[0].digest
    layout = Layout.create(tmp_path / "layout")
    with client_for(registry.host) as client:
        push(image, ref, client)
        registry.tamper_blob(layer)
        with pytest.raises(DigestMismatch) as info:
            pull(ref, client, layout=layout)
    assert str(info.value).startswith(f"{registry.host}/a/b: blob {layer}: the received bytes")
    assert not layout.has_blob(layer)


def test_docker_registry_restarted_during_a_chunked_upload(registry: RegistryServer) -> None:
    image = random_image(6_000_000)
    ref = parse_reference(f"{registry.host}/big/restart:1")
    with (
        client_for(
            registry.host, retry=RetryPolicy(attempts=8, backoff=0.2), sleep=time.sleep
        ) as client,
        registry.interrupt_upload("big/restart", min_bytes=2_500_000, down_for=0.5) as fired,
    ):
        push(image, ref, client, chunk_size=1 << 20)
    assert fired.is_set()
    assert registry.restarts == 1
    # the client asked the registry how much had arrived; distribution 2.8 cancels an
    # upload whose stored size differs from its state token (the chunk arrived, the answer
    # did not), so the upload then started over
    log = registry.log_path.read_text()
    assert re.search(r'"GET /v2/big/restart/blobs/uploads/[0-9a-f-]+\?_state=', log)
    with client_for(registry.host) as client:
        same_image(pull(ref, client), image)


def test_basic_auth_registry(basic_registry: RegistryServer) -> None:
    image = make_index()
    ref = parse_reference(f"{basic_registry.host}/private/img:1")
    with client_for(basic_registry.host, credentials=Credential(USER, PASSWORD)) as client:
        push(image, ref, client)
        same_image(pull(ref, client), image)
    with client_for(basic_registry.host) as client, pytest.raises(RegistryError) as info:
        pull(ref, client)
    assert info.value.status == 401
    assert "alpenglow login" in str(info.value.hint)
    with (
        client_for(basic_registry.host, credentials=Credential(USER, "wrong")) as client,
        pytest.raises(RegistryError, match="HTTP 401"),
    ):
        pull(ref, client)


def test_token_auth_registry(token_registry: RegistryServer) -> None:
    image = make_index()
    public = parse_reference(f"{token_registry.host}/public/alpine:3")
    private = parse_reference(f"{token_registry.host}/team/app:1")
    with client_for(token_registry.host, credentials=Credential(USER, PASSWORD)) as client:
        push(image, public, client)
        push(image, private, client, mount_from="public/alpine")
        assert client.auth.scheme == "bearer"
    with client_for(token_registry.host) as anonymous:
        same_image(pull(public, anonymous), image)
        with pytest.raises(RegistryError) as info:
            pull(private, anonymous)
    assert info.value.status == 401
    assert token_registry.issuer is not None
    scopes = [r.scopes for r in token_registry.issuer.requests]
    assert ("repository:team/app:pull,push", "repository:public/alpine:pull") in scopes or (
        "repository:public/alpine:pull",
        "repository:team/app:pull,push",
    ) in scopes
    with (
        client_for(token_registry.host, credentials=Credential(USER, "nope")) as client,
        pytest.raises(RegistryError, match="refused the credentials"),
    ):
        pull(public, client)


def test_retries_through_a_faulty_proxy(fault_proxy: FaultProxy) -> None:
    image = make_index()
    ref = parse_reference(f"{fault_proxy.host}/flaky/img:1")
    fault_proxy.fail(503, times=3, method="HEAD")
    fault_proxy.fail(429, times=2, method="PUT", path="/manifests/", retry_after=0)
    fault_proxy.cut_request(100, times=1, method="PUT", path="/blobs/uploads/")
    fault_proxy.cut_response(50, times=2, method="GET", path="/blobs/")
    with client_for(fault_proxy.host) as client:
        push(image, ref, client)
        same_image(pull(ref, client), image)
    assert len(fault_proxy.outcomes("status")) == 5


def test_pull_by_digest_verifies(registry: RegistryServer) -> None:
    image = make_image("x86_64")
    with client_for(registry.host) as client:
        push(image, parse_reference(f"{registry.host}/a/b:1"), client)
        by_digest = parse_reference(f"{registry.host}/a/b@{image.root.digest}")
        same_image(pull(by_digest, client), image)
        with pytest.raises(RegistryError, match="MANIFEST_UNKNOWN"):
            pull(parse_reference(f"{registry.host}/a/b@sha256:{'1' * 64}"), client)


def test_a_damaged_blob_in_the_layout_is_downloaded_again(
    fake: FakeRegistry, tmp_path: Path
) -> None:
    image = make_image("x86_64")
    ref = parse_reference(f"{fake.host}/a/b:1")
    layer = image.manifest().layers[0].digest
    layout = Layout.create(tmp_path / "layout")
    with client_for(fake.host) as client:
        push(image, ref, client)
        pull(ref, client, layout=layout)
        path = layout.blob_path(layer)
        damaged = bytearray(path.read_bytes())
        damaged[0] ^= 0xFF
        path.write_bytes(bytes(damaged))
        progress = Recorder()
        again = pull(ref, client, layout=layout, progress=progress)
    assert progress.outcomes()[layer] == "downloaded"
    same_image(again, image)


def test_check_login_on_docker_registry(
    basic_registry: RegistryServer, token_registry: RegistryServer
) -> None:
    for server in (basic_registry, token_registry):
        with client_for(server.host, credentials=Credential(USER, PASSWORD)) as client:
            client.check_login()
        with (
            client_for(server.host, credentials=Credential(USER, "wrong")) as client,
            pytest.raises(RegistryError, match="refused the credentials"),
        ):
            client.check_login()
