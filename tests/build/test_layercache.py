"""The compressed-layer cache."""

from __future__ import annotations

import gzip
from pathlib import Path

from alpenglow.build.layercache import LayerCache, cached_layer
from alpenglow.oci.layer import layer_tar, make_layer
from alpenglow.oci.tree import Tree


def sample() -> bytes:
    t = Tree()
    t.write("etc/motd", b"hello\n" * 1000)
    return layer_tar(t)


def test_same_layer_as_without_cache_and_reused(tmp_path: Path) -> None:
    raw = sample()
    cache = LayerCache(tmp_path / "layers")
    first = cached_layer(raw, cache)
    tree = Tree()
    tree.write("etc/motd", b"hello\n" * 1000)
    assert first == make_layer(tree)
    entry = tmp_path / "layers" / f"{first.diff_id[7:]}.tar.gz"
    assert entry.read_bytes() == first.blob
    assert cache.get(first.diff_id) == first.blob
    assert cached_layer(raw, cache) == first


def test_damaged_entries_are_ignored_and_replaced(tmp_path: Path) -> None:
    raw = sample()
    cache = LayerCache(tmp_path / "layers")
    layer = cached_layer(raw, cache)
    entry = tmp_path / "layers" / f"{layer.diff_id[7:]}.tar.gz"
    entry.write_bytes(layer.blob[:20])  # truncated
    assert cache.get(layer.diff_id) is None
    assert cached_layer(raw, cache) == layer
    entry.write_bytes(gzip.compress(b"something else", mtime=0))  # another content
    assert cache.get(layer.diff_id) is None
    assert cached_layer(raw, cache) == layer
    assert entry.read_bytes() == layer.blob


def test_unwritable_cache_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    layer = cached_layer(sample(), LayerCache(blocker / "layers"))
    assert gzip.decompress(layer.blob) == sample()
