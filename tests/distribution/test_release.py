"""alpenglow.distribution.release against a real registry: the Alpine release sequence, re-runs,
an interrupted release, and a version that already names another image."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import alpenglow.distribution.release as release_module
from alpenglow.distribution.client import RegistryClient
from alpenglow.distribution.reference import Reference, parse_reference
from alpenglow.distribution.release import RemoteTags, plan_remote_release, release_push
from alpenglow.errors import AlpenglowError, RegistryError
from alpenglow.oci.image import ImageBundle, index_bundle
from tests.oci.images import make_image, make_index
from tests.support.registry import FAST_RETRY, FaultProxy, Outcomes, RegistryServer


def image(n: int) -> ImageBundle:
    """A distinct two-platform image per ``n``."""
    return index_bundle(
        [
            make_image("x86_64", {"etc/release": f"{n} amd64\n"}),
            make_image("aarch64", {"etc/release": f"{n} arm64\n"}),
        ]
    )


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[RegistryClient]:
    with RegistryClient(registry.host, retry=FAST_RETRY) as c:
        yield c


def repo(registry: RegistryServer, name: str = "alpine/base") -> Reference:
    return parse_reference(f"{registry.host}/{name}", default_tag="")


def tags_now(client: RegistryClient, ref: Reference) -> dict[str, str]:
    out = {}
    for tag in client.list_tags(ref.repository):
        desc = client.head_manifest(ref.repository, tag)
        assert desc is not None
        out[tag] = desc.digest
    return out


def test_exports() -> None:
    assert sorted(dir(release_module)) == sorted(release_module.__all__)


def test_alpine_release_sequence(registry: RegistryServer, client: RegistryClient) -> None:
    ref = repo(registry)
    images = {v: image(i) for i, v in enumerate(["3.22.4", "3.22.3", "3.21.9", "3.23.0_rc1"])}
    digests = {v: b.root.digest for v, b in images.items()}

    result = release_push(images["3.22.4"], ref, "3.22.4", client)
    assert result.written == ("3.22.4", "3.22", "3", "latest")
    result = release_push(images["3.22.3"], ref, "3.22.3", client)
    assert result.written == ("3.22.3",)
    assert [m.action for m in result.moves] == ["create", "keep", "keep", "keep"]
    result = release_push(images["3.21.9"], ref, "3.21.9", client)
    assert result.written == ("3.21.9", "3.21")
    result = release_push(images["3.23.0_rc1"], ref, "3.23.0_rc1", client, edge=True)
    assert result.written == ("3.23.0_rc1", "edge")

    assert tags_now(client, ref) == {
        "3.22.4": digests["3.22.4"],
        "3.22": digests["3.22.4"],
        "3": digests["3.22.4"],
        "latest": digests["3.22.4"],
        "3.22.3": digests["3.22.3"],
        "3.21.9": digests["3.21.9"],
        "3.21": digests["3.21.9"],
        "3.23.0_rc1": digests["3.23.0_rc1"],
        "edge": digests["3.23.0_rc1"],
    }
    # every tag names a complete image: each platform manifest and blob is there
    for version, bundle in images.items():
        for digest in bundle.digests():
            if digest == bundle.root.digest or any(
                digest == i.descriptor.digest for i in bundle.images()
            ):
                assert client.head_manifest(ref.repository, digest) is not None, version
            else:
                assert client.blob_exists(ref.repository, digest) is not None, version


def test_a_rerun_uploads_nothing_and_moves_nothing(
    registry: RegistryServer, client: RegistryClient
) -> None:
    ref = repo(registry)
    bundle = image(1)
    first = release_push(bundle, ref, "1.2.3", client, edge=True)
    assert first.written == ("1.2.3", "1.2", "1", "latest", "edge")
    seen = Outcomes()
    again = release_push(bundle, ref, "1.2.3", client, edge=True, progress=seen)
    assert again.written == ()
    assert {m.action for m in again.moves} == {"keep"}
    assert set(seen.outcomes.values()) == {"exists"}


def test_a_version_naming_another_image_stops_before_any_upload(
    registry: RegistryServer, fault_proxy: FaultProxy
) -> None:
    with RegistryClient(registry.host, retry=FAST_RETRY) as direct:
        release_push(image(1), repo(registry), "2.0.0", direct)
    ref = parse_reference(f"{fault_proxy.host}/alpine/base", default_tag="")
    other = image(2)
    with (
        RegistryClient(fault_proxy.host, retry=FAST_RETRY) as client,
        pytest.raises(AlpenglowError, match=r"tag 2\.0\.0 already points at sha256:"),
    ):
        release_push(other, ref, "2.0.0", client)
    writes = [r for r in fault_proxy.records if r.method in ("POST", "PUT", "PATCH")]
    assert writes == []


def test_an_interrupted_release_leaves_valid_tags_and_a_rerun_finishes(
    registry: RegistryServer, fault_proxy: FaultProxy
) -> None:
    ref = parse_reference(f"{fault_proxy.host}/alpine/base", default_tag="")
    with RegistryClient(fault_proxy.host, retry=FAST_RETRY) as client:
        release_push(image(1), ref, "3.21.0", client)
        bundle = image(2)
        # the registry refuses the third tag for good (a 400 is not retried)
        fault_proxy.fail(400, method="PUT", path=r"/manifests/3$", times=1)
        with pytest.raises(RegistryError, match="manifest 3: HTTP 400"):
            release_push(bundle, ref, "3.22.0", client)
        now = tags_now(client, ref)
        assert now["3.22.0"] == bundle.root.digest
        assert now["3.22"] == bundle.root.digest
        assert now["3"] == image(1).root.digest  # not moved yet
        assert now["latest"] == image(1).root.digest
        for digest in set(now.values()):  # every tag names a manifest that is there
            assert client.head_manifest(ref.repository, digest) is not None
        done = release_push(bundle, ref, "3.22.0", client)
        assert done.written == ("3", "latest")
        old, new = image(1).root.digest, bundle.root.digest
        assert tags_now(client, ref) == {
            "3.21.0": old,
            "3.21": old,
            "3.22.0": new,
            "3.22": new,
            "3": new,
            "latest": new,
        }


def test_everything_is_uploaded_before_the_first_tag(
    registry: RegistryServer, fault_proxy: FaultProxy
) -> None:
    ref = parse_reference(f"{fault_proxy.host}/alpine/base", default_tag="")
    bundle = make_index()
    with RegistryClient(fault_proxy.host, retry=FAST_RETRY) as client:
        release_push(bundle, ref, "1.0.0", client)
    writes = [r.path for r in fault_proxy.records if r.method in ("PUT", "POST", "PATCH")]
    first_tag = next(i for i, p in enumerate(writes) if p.endswith("/manifests/1.0.0"))
    digests = {d.partition(":")[2] for d in bundle.digests()}
    before = "".join(writes[:first_tag])
    for digest in digests:  # every blob and manifest went up before the first tag
        assert digest in before
    assert all("/manifests/sha256:" not in p for p in writes[first_tag:])


def test_remote_tags_of_a_new_repository(registry: RegistryServer, client: RegistryClient) -> None:
    tags = RemoteTags(client, "does/not-exist")
    assert list(tags) == []
    assert "latest" not in tags
    plan = plan_remote_release(
        client, repo(registry, "does/not-exist"), "1.0", "sha256:x", edge=False
    )
    assert [(m.tag, m.action) for m in plan] == [
        ("1.0", "create"),
        ("1", "create"),
        ("latest", "create"),
    ]
