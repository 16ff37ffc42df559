"""The OCI/Docker model: JSON, digests, parsing of both formats, bundles."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

import alpenglow.oci.image as image_module
from alpenglow.errors import FormatError
from alpenglow.oci.image import (
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    ORG_REF_NAME,
    Descriptor,
    ImageBundle,
    Platform,
    canonical_json,
    check_digest,
    digest_of,
    image_bundle,
    index_bundle,
    index_bytes,
    manifest_bytes,
    parse_config,
    parse_index,
    parse_manifest,
    verify_blob,
)
from tests.oci.images import config_for, layer_tar, make_image, make_index

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def test_exports() -> None:
    assert sorted(dir(image_module)) == sorted(image_module.__all__)
    for name in image_module.__all__:
        assert hasattr(image_module, name)
    assert ORG_REF_NAME == "org.opencontainers.image.ref.name"


# -- canonical JSON and digests ---------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8() -> None:
    a = canonical_json({"z": 1, "a": {"y": [1, 2], "b": "é"}})
    b = canonical_json({"a": {"b": "é", "y": [1, 2]}, "z": 1})
    assert a == b == '{"a":{"b":"é","y":[1,2]},"z":1}'.encode()


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"x": float("nan")})


def test_digest_of() -> None:
    assert digest_of(b"abc") == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize(
    "digest",
    ["sha256:" + "0" * 64, "sha512:" + "f" * 128],
)
def test_good_digests(digest: str) -> None:
    assert check_digest(digest) == digest


@pytest.mark.parametrize(
    ("digest", "problem"),
    [
        ("sha256:" + "A" * 64, "lower-case hex"),
        ("sha256:" + "0" * 63, "64 lower-case hex"),
        ("sha256:../../../etc/passwd", "not a valid digest"),
        ("md5:" + "0" * 32, "unsupported digest algorithm"),
        ("0" * 64, "is not a digest"),
        ("", "is not a digest"),
    ],
)
def test_bad_digests(digest: str, problem: str) -> None:
    with pytest.raises(FormatError, match=problem):
        check_digest(digest, "here")


def test_verify_blob() -> None:
    verify_blob(b"abc", digest_of(b"abc"), 3)
    with pytest.raises(FormatError, match="has 3 bytes, its descriptor says 4"):
        verify_blob(b"abc", digest_of(b"abc"), 4, "x")
    with pytest.raises(FormatError, match=r"x: blob sha256:a+ is corrupt"):
        verify_blob(b"abc", D1, None, "x")


# -- descriptors -------------------------------------------------------------------------------


def test_descriptor_annotations_are_sorted_and_hashable() -> None:
    a = Descriptor(OCI_MANIFEST, D1, 10, annotations=(("b", "2"), ("a", "1")))
    b = Descriptor.of(OCI_MANIFEST, b"x").with_annotations({"b": "2", "a": "1"})
    assert a.annotations == b.annotations == (("a", "1"), ("b", "2"))
    assert hash(a) != hash(b) or a == b
    assert {a, a} == {a}
    assert a.annotation("b") == "2"
    assert a.annotation("zz", "none") == "none"
    assert a.with_annotations({ORG_REF_NAME: "v1"}).ref_name == "v1"


def test_descriptor_json_round_trip() -> None:
    desc = Descriptor(
        OCI_MANIFEST,
        D1,
        7,
        platform=Platform("windows", "amd64", "", "10.0.17763", ("win32k",)),
        annotations=(("k", "v"),),
        urls=("https://example.com/x",),
        artifact_type="application/x",
    )
    data = index_bytes([desc])
    assert parse_index(data).manifests == (desc,)
    assert json.loads(data)["manifests"][0]["platform"] == {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763",
        "os.features": ["win32k"],
    }


def test_platform_str() -> None:
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"
    assert str(Platform("linux", "amd64")) == "linux/amd64"


# -- parsing ---------------------------------------------------------------------------------

DOCKER_MANIFEST_TEXT = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": 1472, "digest": D1},
        "layers": [{"mediaType": DOCKER_LAYER_GZIP, "size": 3408729, "digest": D2}],
    },
    indent=3,
)

DOCKER_LIST_TEXT = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST,
                "size": 528,
                "digest": D1,
                "platform": {"architecture": "arm", "os": "linux", "variant": "v6"},
            }
        ],
    },
    indent=3,
)


def test_parse_docker_manifest() -> None:
    m = parse_manifest(DOCKER_MANIFEST_TEXT.encode())
    assert m.media_type == DOCKER_MANIFEST
    assert m.config == Descriptor(DOCKER_CONFIG, D1, 1472)
    assert m.layers == (Descriptor(DOCKER_LAYER_GZIP, D2, 3408729),)
    assert m.is_image


def test_parse_docker_manifest_list() -> None:
    index = parse_index(DOCKER_LIST_TEXT.encode())
    assert index.media_type == DOCKER_MANIFEST_LIST
    assert index.manifests[0].platform == Platform("linux", "arm", "v6")


def test_oci_manifest_without_media_type_is_oci() -> None:
    doc = {"schemaVersion": 2, "config": Descriptor(OCI_CONFIG, D1, 2).to_json(), "layers": []}
    assert parse_manifest(canonical_json(doc)).media_type == OCI_MANIFEST


def test_manifest_round_trip_with_subject_and_artifact() -> None:
    config = Descriptor(OCI_EMPTY, digest_of(b"{}"), 2)
    layer = Descriptor("application/spdx+json", D2, 100, annotations=(("t", "sbom"),))
    subject = Descriptor(OCI_MANIFEST, D1, 500)
    data = manifest_bytes(
        config,
        [layer],
        annotations={"a": "b"},
        subject=subject,
        artifact_type="application/spdx+json",
    )
    m = parse_manifest(data)
    assert (m.config, m.layers, m.subject) == (config, (layer,), subject)
    assert m.artifact_type == "application/spdx+json"
    assert m.annotations == (("a", "b"),)
    assert not m.is_image
    assert data == manifest_bytes(
        config,
        [layer],
        annotations=(("a", "b"),),
        subject=subject,
        artifact_type="application/spdx+json",
    )


def _manifest_doc(**changes: Any) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": D1, "size": 3},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": D2, "size": 4}],
    }
    for key, value in changes.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "src: not valid JSON: .* at line 1 column 2"),
        (b'{"a": "\xff"}', "src: not valid UTF-8 JSON"),
        (b"[]", "src: expected a JSON object, got list"),
        (_manifest_doc(config=None), "src: manifest: missing field 'config'"),
        (_manifest_doc(layers=None), "src: manifest: field 'layers' must be a list"),
        (_manifest_doc(schemaVersion=1), "Docker schema 1 manifests are not supported"),
        (_manifest_doc(schemaVersion=3), "'schemaVersion' must be 2"),
        (_manifest_doc(mediaType=OCI_INDEX), "this is an image index, not a manifest"),
        (_manifest_doc(mediaType="text/plain"), "manifest: unexpected mediaType 'text/plain'"),
        (
            _manifest_doc(config={"mediaType": OCI_CONFIG, "digest": D1}),
            "src: config: field 'size' must be a non-negative integer",
        ),
        (
            _manifest_doc(config={"mediaType": OCI_CONFIG, "digest": D1, "size": -1}),
            "field 'size' must be a non-negative integer",
        ),
        (
            _manifest_doc(config={"mediaType": OCI_CONFIG, "digest": D1, "size": True}),
            "field 'size' must be a non-negative integer",
        ),
        (
            _manifest_doc(layers=[{"mediaType": OCI_LAYER_GZIP, "digest": "sha256:x", "size": 1}]),
            r"src: layers\[0\]: 'sha256:x' is not a valid digest",
        ),
        (
            _manifest_doc(layers=[{"digest": D1, "size": 1}]),
            r"src: layers\[0\]: missing field 'mediaType'",
        ),
        (
            _manifest_doc(annotations={"a": 1}),
            "src: annotations: must be an object of strings",
        ),
        (
            json.dumps({"schemaVersion": 2, "manifests": []}).encode(),
            "this is an image index, not a manifest",
        ),
    ],
)
def test_bad_manifests(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_manifest(data, "src")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"schemaVersion": 2}', "field 'manifests' must be a list"),
        (_manifest_doc(), "this is an image manifest, not an index"),
        (
            json.dumps(
                {
                    "schemaVersion": 2,
                    "manifests": [
                        {
                            "mediaType": OCI_MANIFEST,
                            "digest": D1,
                            "size": 1,
                            "platform": {"os": "linux"},
                        }
                    ],
                }
            ).encode(),
            r"manifests\[0\].platform: missing field 'architecture'",
        ),
    ],
)
def test_bad_indexes(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_index(data, "src")


def test_parse_config_reads_what_tools_act_on() -> None:
    data = canonical_json(
        {
            "architecture": "arm",
            "variant": "v7",
            "os": "linux",
            "created": "2024-05-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/bin"],
                "Entrypoint": ["/bin/tini"],
                "Cmd": None,
                "User": "1000:1000",
                "WorkingDir": "/srv",
                "StopSignal": "SIGQUIT",
                "Labels": {"b": "2", "a": "1"},
                "ExposedPorts": {"80/tcp": {}},
                "Volumes": {"/data": {}},
            },
            "rootfs": {"type": "layers", "diff_ids": [D1]},
            "history": [{"created_by": "x", "empty_layer": True}],
        }
    )
    c = parse_config(data)
    assert c.platform == Platform("linux", "arm", "v7")
    assert c.env == ("PATH=/bin",)
    assert c.entrypoint == ("/bin/tini",)
    assert c.cmd is None
    assert (c.user, c.working_dir, c.stop_signal) == ("1000:1000", "/srv", "SIGQUIT")
    assert c.labels == (("a", "1"), ("b", "2"))
    assert c.exposed_ports == ("80/tcp",)
    assert c.volumes == ("/data",)
    assert c.diff_ids == (D1,)
    assert c.history[0].empty_layer


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"os": "linux", "rootfs": {"diff_ids": []}}, "missing field 'architecture'"),
        ({"os": "linux", "architecture": "amd64"}, "missing field 'rootfs'"),
        (
            {"os": "linux", "architecture": "amd64", "rootfs": {"diff_ids": ["nope"]}},
            r"rootfs.diff_ids\[0\]: 'nope' is not a digest",
        ),
        (
            {
                "os": "linux",
                "architecture": "amd64",
                "rootfs": {"diff_ids": []},
                "config": {"Env": "PATH=/bin"},
            },
            "config.Env: must be a list of strings",
        ),
    ],
)
def test_bad_configs(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_config(canonical_json(doc), "cfg")


# -- bundles -----------------------------------------------------------------------------------


def test_image_bundle_is_complete_and_reproducible() -> None:
    a = make_image("aarch64")
    b = make_image("aarch64")
    assert a == b
    a.verify()
    assert a.root.platform == Platform("linux", "arm64", "v8")
    assert set(a.blobs) == a.digests()
    (only,) = a.images()
    assert only.platform == Platform("linux", "arm64", "v8")
    assert only.compressed_size == sum(len(a.blobs[d]) for d in a.digests() if d != a.root.digest)


def test_index_bundle_images_and_select() -> None:
    index = make_index(("x86_64", "armv7"))
    index.verify()
    assert index.is_index
    assert [str(p) for p in index.platforms()] == ["linux/amd64", "linux/arm/v7"]
    arm = index.select(index.images()[1])
    arm.verify()
    assert arm.root.platform == Platform("linux", "arm", "v7")
    assert arm.digests() == {
        arm.root.digest,
        *(d.digest for d in arm.manifest().layers),
        arm.manifest().config.digest,
    }
    assert index.size == sum(i.compressed_size for i in index.images())


def test_size_counts_shared_blobs_once() -> None:
    same = make_image("x86_64")
    config = same.manifest().config
    twin = same.root.with_platform(Platform("linux", "amd64", "v2"))
    data = index_bytes([same.root, twin])
    blobs = {**same.blobs, digest_of(data): data}
    index = ImageBundle(Descriptor.of(OCI_INDEX, data), blobs)
    assert len(index.images()) == 1  # the same manifest twice is one image
    assert index.size == config.size + same.manifest().layers[0].size


def test_missing_and_corrupt_blobs_are_named() -> None:
    image = make_image()
    layer = image.manifest().layers[0].digest
    missing = ImageBundle(image.root, {k: v for k, v in image.blobs.items() if k != layer}, "src")
    with pytest.raises(FormatError, match=f"src: blob {layer} .* is missing"):
        missing.verify()
    corrupt = ImageBundle(image.root, {**image.blobs, layer: b"garbage"}, "src")
    with pytest.raises(FormatError, match=f"src: blob {layer} has 7 bytes"):
        corrupt.verify()


def test_diff_id_count_must_match_layers() -> None:
    raw = layer_tar({"a": "1"})
    config = config_for("x86_64", [])
    bundle = image_bundle(config, [(OCI_LAYER_GZIP, gzip.compress(raw, mtime=0))])
    with pytest.raises(FormatError, match="lists 0 diff_ids for 1 layers"):
        bundle.verify()


def test_attestations_and_artifacts_are_not_images() -> None:
    image = make_image()
    empty = b"{}"
    sbom = b'{"spdxVersion":"SPDX-2.3"}'
    artifact = manifest_bytes(
        Descriptor.of(OCI_EMPTY, empty),
        [Descriptor.of("application/spdx+json", sbom)],
        subject=image.root.with_platform(None),
        artifact_type="application/spdx+json",
    )
    attestation = Descriptor.of(OCI_MANIFEST, artifact, platform=Platform("unknown", "unknown"))
    data = index_bytes([image.root, attestation])
    blobs = {
        **image.blobs,
        digest_of(artifact): artifact,
        digest_of(empty): empty,
        digest_of(sbom): sbom,
        digest_of(data): data,
    }
    bundle = ImageBundle(Descriptor.of(OCI_INDEX, data), blobs)
    bundle.verify()
    assert [i.descriptor.digest for i in bundle.images()] == [image.root.digest]
    assert digest_of(sbom) in bundle.digests()


def test_nested_index_is_followed() -> None:
    inner = make_index(("x86_64", "aarch64"))
    data = index_bytes([inner.root])
    outer = ImageBundle(Descriptor.of(OCI_INDEX, data), {**inner.blobs, digest_of(data): data})
    outer.verify()
    assert [str(p) for p in outer.platforms()] == ["linux/amd64", "linux/arm64/v8"]


def test_foreign_layers_may_be_absent() -> None:
    config = config_for("x86_64", [D1])
    foreign = Descriptor(DOCKER_FOREIGN_LAYER, D1, 100, urls=("https://example.com/l",))
    cfg = Descriptor.of(DOCKER_CONFIG, config)
    manifest = manifest_bytes(cfg, [foreign], media_type=DOCKER_MANIFEST)
    bundle = ImageBundle(
        Descriptor.of(DOCKER_MANIFEST, manifest),
        {cfg.digest: config, digest_of(manifest): manifest},
    )
    bundle.verify()
    assert D1 not in bundle.digests()


def test_platform_from_config_when_the_root_has_none() -> None:
    image = make_image("armv7")
    bare = ImageBundle(image.root.with_platform(None), image.blobs)
    assert bare.platforms() == (Platform("linux", "arm", "v7"),)
    index = index_bundle([bare])
    assert index.index().manifests[0].platform == Platform("linux", "arm", "v7")


def test_docker_media_types_build_too() -> None:
    raw = layer_tar({"a": "1"})
    config = config_for("x86_64", [digest_of(raw)])
    bundle = image_bundle(
        config,
        [(DOCKER_LAYER_GZIP, gzip.compress(raw, mtime=0))],
        config_media_type=DOCKER_CONFIG,
        manifest_media_type=DOCKER_MANIFEST,
    )
    bundle.verify()
    index = index_bundle([bundle], media_type=DOCKER_MANIFEST_LIST)
    index.verify()
    assert json.loads(index.blobs[index.root.digest])["mediaType"] == DOCKER_MANIFEST_LIST
    with pytest.raises(ValueError, match="not an index media type"):
        index_bytes([], media_type=OCI_MANIFEST)
