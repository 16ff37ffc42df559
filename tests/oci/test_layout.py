"""OCI image layouts on disk, checked from outside with skopeo and umoci."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

import alpenglow.oci.layout as layout_module
from alpenglow.errors import AlpenglowError, FormatError, ImageNotFound
from alpenglow.oci.image import OCI_INDEX, ORG_REF_NAME, digest_of, parse_index
from alpenglow.oci.layout import GcResult, Layout
from tests.oci.images import make_image, make_index, skopeo, umoci


def test_exports() -> None:
    assert sorted(dir(layout_module)) == sorted(layout_module.__all__)


def test_create_makes_a_valid_empty_layout(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path / "lay")
    assert json.loads((layout.path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout.path / "index.json").read_text())
    assert index == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    assert (layout.path / "blobs" / "sha256").is_dir()
    assert layout.entries() == ()
    assert sorted(p.name for p in layout.path.iterdir()) == ["blobs", "index.json", "oci-layout"]
    # creating again keeps what is there
    layout.put_blob(b"x")
    Layout.create(layout.path)
    assert layout.has_blob(digest_of(b"x"))
    assert umoci("list", "--layout", str(layout.path)).stdout.strip() == ""


def test_blobs_put_and_get(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    digest = layout.put_blob(b"hello")
    assert digest == digest_of(b"hello")
    assert layout.blob_path(digest) == tmp_path / "blobs" / "sha256" / digest[7:]
    assert layout.get_blob(digest) == b"hello"
    assert layout.put_blob(b"hello", digest) == digest
    assert layout.blob_digests() == {digest}
    assert layout.put_blob_stream([b"wor", b"ld"], digest_of(b"world")) == 5
    assert layout.get_blob(digest_of(b"world"), 5) == b"world"


def test_put_with_the_wrong_digest_writes_nothing(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    wrong = digest_of(b"other")
    with pytest.raises(FormatError, match="is corrupt"):
        layout.put_blob(b"hello", wrong)
    with pytest.raises(FormatError, match="received bytes hash to"):
        layout.put_blob_stream([b"hello"], wrong)
    assert list((tmp_path / "blobs" / "sha256").iterdir()) == []


def test_corrupt_and_missing_blobs_name_the_file(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    digest = layout.put_blob(b"hello")
    path = layout.blob_path(digest)
    path.write_bytes(b"hellO")
    with pytest.raises(FormatError, match=f"{path}: blob {digest} is corrupt"):
        layout.get_blob(digest)
    path.unlink()
    with pytest.raises(FormatError, match=f"{path}: blob {digest} is missing"):
        layout.get_blob(digest)
    with pytest.raises(FormatError, match="not a valid digest"):
        layout.get_blob("sha256:../../index.json")


def test_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound, match="no such OCI layout directory"):
        Layout.open(tmp_path / "missing")
    with pytest.raises(FormatError, match="not an OCI layout"):
        Layout.open(tmp_path)
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(FormatError, match=r"unsupported imageLayoutVersion '2.0.0'"):
        Layout.open(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(AlpenglowError, match="exists and is not a directory"):
        Layout.create(tmp_path / "file")


def test_bad_index_json_is_named(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    (tmp_path / "index.json").write_text('{"schemaVersion": 2, "manifests": [{"size": 1}]}')
    with pytest.raises(FormatError, match=rf"{tmp_path}/index.json: manifests\[0\]: missing"):
        layout.entries()
    (tmp_path / "index.json").write_text("{")
    with pytest.raises(FormatError, match=r"index.json: not valid JSON"):
        layout.read_bundle("x")
    (tmp_path / "index.json").unlink()
    with pytest.raises(FormatError, match=r"index.json: missing"):
        layout.entries()


def test_write_and_read_a_bundle_by_name_digest_or_alone(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    bundle = make_index()
    root = layout.write_bundle(bundle, ["v1"])
    assert root == bundle.root
    (entry,) = layout.entries()
    assert entry.ref_name == "v1"
    for ref in ("v1", bundle.root.digest, ""):
        back = layout.read_bundle(ref)
        back.verify()
        assert back.root == bundle.root
        assert dict(back.blobs) == dict(bundle.blobs)
    with pytest.raises(ImageNotFound, match="no image named 'v2'"):
        layout.read_bundle("v2")
    # what skopeo and umoci see
    raw = skopeo("inspect", "--raw", f"oci:{tmp_path}:v1").stdout
    assert raw.encode() == bundle.blobs[bundle.root.digest]
    assert umoci("list", "--layout", str(tmp_path)).stdout.split() == ["v1"]


def test_umoci_stat_reads_a_single_platform_image(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    layout.write_bundle(make_image("x86_64", {"etc/hello": "hi\n"}), ["latest"])
    out = umoci("stat", "--json", "--image", f"{tmp_path}:latest").stdout
    history = json.loads(out)["history"]
    assert history[0]["created_by"] == "test"


def test_moving_a_name_and_gc(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    old = make_image("x86_64", {"a": "old"})
    new = make_image("x86_64", {"a": "new"})
    layout.write_bundle(old, ["latest", "keep"])
    layout.write_bundle(new, ["latest"])
    names = {e.ref_name: e.digest for e in layout.entries()}
    assert names == {"keep": old.root.digest, "latest": new.root.digest}
    assert layout.gc() == GcResult(0, 0)  # "keep" still holds the old image
    layout.remove_entries(lambda e: e.ref_name == "keep")
    only_old = old.digests() - new.digests()
    result = layout.gc()
    assert result.blobs == len(only_old)
    assert result.bytes == sum(len(old.blobs[d]) for d in only_old)
    assert layout.blob_digests() == new.digests()
    layout.read_bundle("latest").verify()


def test_gc_leaves_unknown_files_and_clears_a_stray_blob(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    layout.write_bundle(make_image(), ["a"])
    stray = layout.put_blob(b"stray")
    (tmp_path / "blobs" / "sha256" / "README").write_text("not a blob")
    assert layout.gc().blobs == 1
    assert not layout.has_blob(stray)
    assert (tmp_path / "blobs" / "sha256" / "README").exists()


def test_unnamed_entries(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    image = make_image()
    layout.write_bundle(image)
    layout.write_bundle(image)  # not added twice
    assert [e.ref_name for e in layout.entries()] == [""]
    assert layout.read_bundle().root == image.root
    layout.write_bundle(make_image("aarch64"))
    with pytest.raises(ImageNotFound, match=r"2 images in index.json; name one of them"):
        layout.read_bundle()


def test_index_rewrite_keeps_annotations(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    (tmp_path / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": [], "annotations": {"x": "y"}})
    )
    layout.write_bundle(make_image(), ["t"])
    index = parse_index((tmp_path / "index.json").read_bytes())
    assert index.annotations == (("x", "y"),)
    assert index.manifests[0].annotation(ORG_REF_NAME) == "t"


def test_missing_blob_makes_reading_fail(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    image = make_image()
    layout.write_bundle(image, ["t"])
    layer = image.manifest().layers[0].digest
    layout.blob_path(layer).unlink()
    with pytest.raises(FormatError, match=f"blob {layer} is missing from the layout"):
        layout.read_bundle("t")
    layout.put_blob(image.blobs[layer])
    config = image.manifest().config.digest
    layout.blob_path(config).write_bytes(b"{}")
    lazy = layout.read_bundle("t")  # blobs are checked when read
    with pytest.raises(FormatError, match=f"{layout.blob_path(config)}: blob {config} is corrupt"):
        lazy.verify()


def test_write_refuses_a_corrupt_bundle_and_leaves_the_index(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    image = make_image()
    layer = image.manifest().layers[0].digest
    bad = type(image)(image.root, {**image.blobs, layer: b"x" * image.manifest().layers[0].size})
    with pytest.raises(FormatError, match="is corrupt"):
        layout.write_bundle(bad, ["t"])
    assert layout.entries() == ()


def test_the_lock_times_out_with_a_clear_message(tmp_path: Path) -> None:
    holder = Layout.create(tmp_path)
    other = Layout.open(tmp_path)
    with (
        holder.locked(),
        pytest.raises(AlpenglowError, match="still locked by another process"),
        other.locked(timeout=0.1),
    ):
        pass
    with other.locked(), other.locked():  # re-entrant
        pass


def _add_names(path: str, worker: int, count: int) -> None:
    layout = Layout.open(path)
    for i in range(count):
        layout.write_bundle(make_image("x86_64", {"n": f"{worker}-{i}"}), [f"w{worker}-{i}"])


def test_concurrent_writers_lose_no_entries(tmp_path: Path) -> None:
    Layout.create(tmp_path)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_add_names, args=(str(tmp_path), w, 8)) for w in range(4)]
    threads = [
        threading.Thread(target=_add_names, args=(str(tmp_path), 10 + t, 8)) for t in range(2)
    ]
    for p in workers:
        p.start()
    for t in threads:
        t.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    for t in threads:
        t.join(60)
    layout = Layout.open(tmp_path)
    names = sorted(e.ref_name for e in layout.entries())
    assert len(names) == 6 * 8
    assert len(set(names)) == len(names)
    for entry in layout.entries():
        layout.read_bundle(entry.ref_name).verify()
    assert layout.gc().blobs == 0
    assert not list(tmp_path.rglob(".tmp-*"))


def test_a_damaged_blob_is_replaced_by_the_next_write(tmp_path: Path) -> None:
    layout = Layout.create(tmp_path)
    image = make_image()
    layout.write_bundle(image, ["t"])
    layer = image.manifest().layers[0].digest
    path = layout.blob_path(layer)
    path.write_bytes(bytes(path.stat().st_size))  # same size, zeroes (a torn write)
    with pytest.raises(FormatError, match="is corrupt"):
        layout.read_bundle("t").verify()
    layout.write_bundle(image, ["t"])
    layout.read_bundle("t").verify()
    path.write_bytes(b"")
    assert layout.put_blob(image.blobs[layer]) == layer
    assert layout.get_blob(layer) == image.blobs[layer]


def test_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    holder = Layout.create(tmp_path)
    holder.write_bundle(make_image(), ["t"])
    done = threading.Event()

    def read() -> None:
        Layout.create(tmp_path).read_bundle("t").verify()
        Layout.open(tmp_path).entries()
        done.set()

    with holder.locked():
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(10)
    assert done.is_set()
