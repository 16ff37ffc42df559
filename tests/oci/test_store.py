"""The local image store: names, resolution, listing, removal, gc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import alpenglow.oci.store as store_module
from alpenglow.errors import AlpenglowError, FormatError, ImageNotFound, InvalidReference
from alpenglow.oci.image import (
    OCI_EMPTY,
    OCI_MANIFEST,
    Descriptor,
    ImageBundle,
    digest_of,
    manifest_bytes,
)
from alpenglow.oci.store import ImageName, ImageStore, default_store_path, parse_name, short_id
from tests.oci.images import make_image, make_index, skopeo


def test_exports() -> None:
    assert sorted(dir(store_module)) == sorted(store_module.__all__)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"ALPENGLOW_STORE": "/s", "XDG_DATA_HOME": "/x", "HOME": "/h"}, "/s"),
        ({"XDG_DATA_HOME": "/x", "HOME": "/h"}, "/x/alpenglow/images"),
        ({"XDG_DATA_HOME": "relative", "HOME": "/h"}, "/h/.local/share/alpenglow/images"),
        ({"HOME": "/h"}, "/h/.local/share/alpenglow/images"),
    ],
)
def test_default_store_path(environ: dict[str, str], expected: str) -> None:
    assert default_store_path(environ) == Path(expected)


DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpine-base", ImageName("alpine-base", "latest")),
        ("alpine:3.22", ImageName("alpine", "3.22")),
        ("docker.io/library/alpine", ImageName("alpine", "latest")),
        ("docker.io/alpine", ImageName("alpine", "latest")),
        ("docker.io/user/app:1", ImageName("user/app", "1")),
        ("index.docker.io/library/alpine:edge", ImageName("alpine", "edge")),
        ("localhost:5000/x/y:1", ImageName("localhost:5000/x/y", "1")),
        ("localhost/x", ImageName("localhost/x", "latest")),
        ("ghcr.io/o/r/n:v1.0_rc-1", ImageName("ghcr.io/o/r/n", "v1.0_rc-1")),
        ("Registry.Example.COM/a__b/c.d:X", ImageName("Registry.Example.COM/a__b/c.d", "X")),
        (f"alpine@{DIGEST}", ImageName("alpine", "", DIGEST)),
        (f"alpine:3@{DIGEST}", ImageName("alpine", "3", DIGEST)),
    ],
)
def test_parse_name(text: str, expected: ImageName) -> None:
    assert parse_name(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Alpine", "names must be lower case"),
        ("", "no repository name"),
        (":tag", "no repository name"),
        ("a:-x", "bad tag"),
        ("a:" + "x" * 129, "bad tag"),
        ("a/../b", "bad name part '..'"),
        ("a//b", "bad name part ''"),
        ("-a", "bad name part"),
        ("a@sha256:abc", "bad digest"),
        ("bad_host:5000/x", "bad registry host 'bad_host:5000'"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_bad_names(text: str, problem: str) -> None:
    with pytest.raises(InvalidReference, match=problem):
        parse_name(text)


def test_ref_names() -> None:
    assert parse_name("a").ref_name == "a:latest"
    assert parse_name(f"a@{DIGEST}").ref_name == f"a@{DIGEST}"
    assert str(parse_name(f"a:1@{DIGEST}")) == f"a:1@{DIGEST}"
    assert short_id(DIGEST) == "0123456789ab"


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


def test_empty_store_is_not_created_by_reading(store: ImageStore) -> None:
    assert store.list() == []
    with pytest.raises(ImageNotFound, match="no such image in the store: x:latest"):
        store.resolve("x")
    assert store.gc().blobs == 0
    assert not store.path.exists()


def test_add_list_resolve(store: ImageStore) -> None:
    index = make_index(("x86_64", "aarch64"))
    single = make_image("armv7")
    store.add(index, ["alpine-base", "alpine-base:3.22", "localhost:5000/x/y:1"])
    store.add(single, ["docker.io/library/solo:v1"])
    rows = store.list()
    assert [(r.repository, r.tag) for r in rows] == [
        ("alpine-base", "3.22"),
        ("alpine-base", "latest"),
        ("localhost:5000/x/y", "1"),
        ("solo", "v1"),
    ]
    first = rows[0]
    assert first.image_id == index.root.digest[7:19]
    assert first.platforms == ("linux/amd64", "linux/arm64/v8")
    assert first.size == index.size
    assert first.size == sum(i.compressed_size for i in index.images())
    assert first.created == "2024-01-01T00:00:00Z"
    assert rows[3].platforms == ("linux/arm/v7",)
    for text in (
        "alpine-base",
        "alpine-base:latest",
        "docker.io/library/alpine-base",
        index.root.digest,
        "@" + index.root.digest,
        f"alpine-base@{index.root.digest}",
        index.root.digest[7:19],
        index.root.digest[7:11],
        "sha256:" + index.root.digest[7:19],
    ):
        assert store.resolve(text).digest == index.root.digest, text
    bundle = store.get("solo:v1")
    bundle.verify()
    assert bundle.root == single.root
    assert bundle.source == "solo:v1"
    assert store.names(index.root.digest) == (
        "alpine-base:3.22",
        "alpine-base:latest",
        "localhost:5000/x/y:1",
    )


def test_the_store_is_an_oci_layout_skopeo_reads(store: ImageStore) -> None:
    index = make_index(("x86_64", "aarch64"))
    store.add(index, ["alpine-base"])
    raw = skopeo("inspect", "--raw", f"oci:{store.path}:alpine-base:latest").stdout
    assert raw.encode() == index.blobs[index.root.digest]


def test_resolution_errors(store: ImageStore) -> None:
    store.add(make_image(), ["a"])
    with pytest.raises(ImageNotFound, match="no such image in the store: b:latest"):
        store.resolve("b")
    with pytest.raises(ImageNotFound, match="no image with digest"):
        store.resolve(DIGEST)
    with pytest.raises(InvalidReference, match="invalid image digest"):
        store.resolve("sha256:" + "z" * 64)
    with pytest.raises(InvalidReference, match="lower case"):
        store.resolve("NotAName")
    with pytest.raises(ImageNotFound):
        store.resolve(f"a@{DIGEST}")


def test_an_ambiguous_id_prefix(store: ImageStore) -> None:
    # Two documents whose digests share 4 hex digits; resolution only reads index.json.
    seen: dict[str, bytes] = {}
    pair: tuple[bytes, bytes] | None = None
    for i in range(100_000):
        data = b"doc %d" % i
        prefix = digest_of(data)[7:11]
        if prefix in seen:
            pair = (seen[prefix], data)
            break
        seen[prefix] = data
    assert pair is not None
    a, b = (Descriptor.of(OCI_MANIFEST, d) for d in pair)
    store.layout.set_refs({"a:1": a, "b:1": b})
    with pytest.raises(AlpenglowError, match="is ambiguous"):
        store.resolve(a.digest[7:11])
    assert store.resolve(a.digest[7:13] if a.digest[11:13] != b.digest[11:13] else a.digest).digest
    assert store.resolve("a:1").digest == a.digest


def test_a_name_wins_over_an_id_prefix(store: ImageStore) -> None:
    first = make_image("x86_64")
    second = make_image("aarch64")
    store.add(first, ["x"])
    store.add(second, [first.root.digest[7:15]])
    assert store.resolve(first.root.digest[7:15]).digest == second.root.digest


def test_moving_a_tag_keeps_blobs_until_gc(store: ImageStore) -> None:
    old = make_image("x86_64", {"v": "1"})
    new = make_image("x86_64", {"v": "2"})
    store.add(old, ["app:1", "app:latest"])
    store.add(new, ["app:latest"])
    assert store.resolve("app").digest == new.root.digest
    assert store.resolve("app:1").digest == old.root.digest
    assert store.gc().blobs == 0
    result = store.remove("app:1")
    assert result.untagged == ("app:1",)
    assert result.gc.blobs == len(old.digests() - new.digests())
    assert store.layout.blob_digests() == new.digests()


def test_remove_by_id_needs_force_for_several_names(store: ImageStore) -> None:
    image = make_image()
    store.add(image, ["a", "b"])
    with pytest.raises(AlpenglowError, match=r"has several names \(a:latest, b:latest\)"):
        store.remove(image.root.digest[7:19])
    result = store.remove(image.root.digest[7:19], force=True)
    assert sorted(result.untagged) == ["a:latest", "b:latest"]
    assert store.list() == []
    assert store.layout.blob_digests() == set()
    with pytest.raises(ImageNotFound):
        store.remove("a")


def test_tag(store: ImageStore) -> None:
    image = make_image()
    store.add(image, ["a"])
    assert store.tag("a", "registry.local:5000/team/a:2") == "registry.local:5000/team/a:2"
    assert store.resolve("registry.local:5000/team/a:2").digest == image.root.digest
    with pytest.raises(InvalidReference):
        store.tag("a", "Bad")


def test_a_failed_add_writes_no_name(store: ImageStore) -> None:
    image = make_image()
    store.add(make_image("aarch64"), ["keep"])
    before = (store.path / "index.json").read_bytes()
    layer = image.manifest().layers[0].digest
    broken = ImageBundle(image.root, {k: v for k, v in image.blobs.items() if k != layer})
    with pytest.raises(FormatError, match="is missing"):
        store.add(broken, ["new"])
    with pytest.raises(InvalidReference):
        store.add(image, ["good", "Bad"])
    with pytest.raises(InvalidReference, match="at least one name"):
        store.add(image, [])
    assert (store.path / "index.json").read_bytes() == before


def test_a_damaged_image_is_listed_with_its_problem(store: ImageStore) -> None:
    image = make_image()
    store.add(image, ["broken"])
    store.add(make_image("aarch64"), ["fine"])
    store.layout.blob_path(image.root.digest).write_bytes(b"{}")
    rows = {r.repository: r for r in store.list()}
    assert "has 2 bytes, its descriptor says" in rows["broken"].problem
    assert rows["broken"].platforms == ()
    assert rows["fine"].problem == ""


def test_referrers_are_kept_hidden_and_collected(store: ImageStore) -> None:
    image = make_image()
    empty = b"{}"
    sbom = json.dumps({"spdxVersion": "SPDX-2.3"}).encode()
    data = manifest_bytes(
        Descriptor.of(OCI_EMPTY, empty),
        [Descriptor.of("application/spdx+json", sbom)],
        subject=image.root.with_platform(None),
        artifact_type="application/spdx+json",
    )
    artifact = ImageBundle(
        Descriptor.of(OCI_MANIFEST, data),
        {digest_of(data): data, digest_of(empty): empty, digest_of(sbom): sbom},
    )
    store.add(image, ["app"], referrers=[artifact])
    assert [r.repository for r in store.list()] == ["app"]
    (found,) = store.referrers(image.root.digest)
    assert found.digest == artifact.root.digest
    assert store.layout.has_blob(digest_of(sbom))
    store.remove("app")
    assert store.layout.entries() == ()
    assert store.layout.blob_digests() == set()
