"""What a layout costs: how often it fsyncs (and what it does with what a crash may leave of
the files it does not fsync: the marker and empty index.json of a new layout), and how often
a bundle read from it hashes its blobs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from alpenglow.errors import FormatError
from alpenglow.oci import image as image_module
from alpenglow.oci.image import OCI_INDEX, ImageBundle
from alpenglow.oci.layout import Layout, LayoutBlobs
from alpenglow.oci.store import ImageStore
from tests.oci.images import make_index, umoci


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files fsynced (by path), while still fsyncing them."""
    synced: list[str] = []
    real = os.fsync

    def counting(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return synced


def test_storing_an_image_in_a_new_store_fsyncs_once(tmp_path: Path, fsyncs: list[str]) -> None:
    store = ImageStore(tmp_path / "store")
    bundle = make_index()
    store.add(bundle, ["img:1"])
    assert len(fsyncs) == 1  # index.json (its temporary name), nothing else
    assert Path(fsyncs[0]).name.startswith(".tmp-index.json")
    assert store.resolve("img:1").digest == bundle.root.digest

    fsyncs.clear()
    store.add(bundle, ["img:1"])  # again: index.json would not change, so it is not written
    assert fsyncs == []
    store.add(bundle, ["img:2"])  # a new name: one durable index.json
    assert len(fsyncs) == 1
    assert [e.ref_name for e in store.layout.entries()] == ["img:1", "img:2"]


def test_creating_a_layout_fsyncs_nothing(tmp_path: Path, fsyncs: list[str]) -> None:
    layout = Layout.create(tmp_path / "lay")
    assert fsyncs == []
    assert layout.entries() == ()
    assert umoci("list", "--layout", str(layout.path)).stdout.strip() == ""


@pytest.mark.parametrize("torn", [("oci-layout",), ("index.json",), ("oci-layout", "index.json")])
def test_files_a_crash_emptied_are_written_again(tmp_path: Path, torn: tuple[str, ...]) -> None:
    """A new layout's files whose bytes never reached the disk are empty after a crash:
    the layout is made again instead of being unreadable."""
    path = tmp_path / "lay"
    Layout.create(path)
    for name in torn:
        (path / name).write_bytes(b"")
    layout = Layout.create(path)
    assert json.loads((path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((path / "index.json").read_text())
    assert index == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    bundle = make_index()
    layout.write_bundle(bundle, ["x"])
    assert layout.find("x").digest == bundle.root.digest


def test_a_marker_with_wrong_content_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "lay"
    Layout.create(path)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(FormatError, match="unsupported imageLayoutVersion"):
        Layout.create(path)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text("{")
    with pytest.raises(FormatError, match="not valid JSON"):
        Layout.create(path).entries()


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the blobs hashed by verify_blob (which still hashes them)."""
    sizes: list[int] = []
    real = image_module._hash

    def counting(algorithm: str, data: bytes) -> str:
        sizes.append(len(data))
        return real(algorithm, data)

    monkeypatch.setattr(image_module, "_hash", counting)
    return sizes


def test_a_bundle_read_from_a_layout_is_hashed_once(tmp_path: Path, hashed: list[int]) -> None:
    layout = Layout.create(tmp_path / "lay")
    bundle = make_index()
    layout.write_bundle(bundle, ["x"])
    read = layout.read_bundle("x")
    hashed.clear()
    read.verify()
    read.verify()  # again: each blob was kept once verified (they are small here)
    assert sorted(hashed) == sorted(len(bundle.blobs[d]) for d in bundle.digests())
    assert read.images() == bundle.images()


def test_blobs_beyond_the_budget_are_read_anew(
    tmp_path: Path, hashed: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = Layout.create(tmp_path / "lay")
    bundle = make_index()
    layout.write_bundle(bundle, ["x"])
    monkeypatch.setattr(LayoutBlobs, "_KEEP_BYTES", 0)  # nothing fits: nothing is kept
    read = layout.read_bundle("x")
    read.verify()
    hashed.clear()
    read.verify()
    assert sorted(set(hashed)) == sorted({len(bundle.blobs[d]) for d in bundle.digests()})
    assert read.images() == bundle.images()


def test_a_layout_bundle_still_fails_on_a_bad_blob_or_size(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path / "lay")
    bundle = make_index()
    layout.write_bundle(bundle, ["x"])
    layer = bundle.images()[0].manifest.layers[0]
    path = layout.blob_path(layer.digest)
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    with pytest.raises(FormatError, match=f"{path}: blob {layer.digest} is corrupt"):
        layout.read_bundle("x").verify()
    path.write_bytes(bundle.blobs[layer.digest])
    # a descriptor whose size is wrong, though the bytes have its digest
    manifest = bundle.images()[0].descriptor
    wrong = type(manifest)(manifest.media_type, manifest.digest, manifest.size + 1)
    lying = ImageBundle(wrong, layout.read_bundle("x").blobs, "lying")
    with pytest.raises(FormatError, match=r"lying: blob sha256:\w+ has \d+ bytes, its descriptor"):
        lying.verify()
