"""Layers: tree -> reproducible tar+gzip, diffs with whiteouts, applying layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

from alpenglow.oci.layer import LayerError, apply_layer, diff_trees, layer_tar, make_layer
from alpenglow.oci.tree import CHAR, HARDLINK, REGULAR, Node, Tree


def sample() -> Tree:
    t = Tree()
    t.mkdir("etc", mtime=10)
    t.write("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", mtime=10)
    t.mkdir("usr/bin", mtime=10)
    t.write("usr/bin/busybox", b"\x7fELF" * 100, 0o4755, mtime=11)
    t.add("usr/bin/ash", Node(HARDLINK, 0o755, target="usr/bin/busybox"))
    t.symlink("/usr/bin/busybox", "bin/sh", mtime=12)
    t.mkdir("home/u", 0o700, uid=1000, gid=1000)
    t.add("dev-null", Node(CHAR, 0o666, devmajor=1, devminor=3))
    t.add("etc/cap", Node(REGULAR, 0o644, data=b"x", xattrs=(("security.capability", b"\x01"),)))
    return t


def test_layer_is_reproducible_and_digests_match() -> None:
    a = make_layer(sample())
    b = make_layer(sample())
    assert a == b
    raw = gzip.decompress(a.blob)
    assert a.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert a.digest == "sha256:" + hashlib.sha256(a.blob).hexdigest()
    assert a.uncompressed_size == len(raw)
    assert a.blob[4:8] == b"\0\0\0\0"  # gzip mtime


def test_tar_members_as_seen_by_tarfile() -> None:
    with tarfile.open(fileobj=io.BytesIO(layer_tar(sample()))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    names = list(members)
    assert names[:3] == ["bin", "bin/sh", "dev-null"]  # tarfile drops the directory "/"
    assert members["bin"].isdir()
    assert names.index("usr/bin/ash") > names.index("usr/bin/busybox")
    assert members["usr/bin/busybox"].mode == 0o4755
    assert members["usr/bin/ash"].islnk()
    assert members["usr/bin/ash"].linkname == "usr/bin/busybox"
    assert members["bin/sh"].linkname == "/usr/bin/busybox"
    assert members["home/u"].uid == 1000
    assert members["home/u"].uname == ""
    assert members["dev-null"].ischr()
    assert members["etc/cap"].pax_headers["SCHILY.xattr.security.capability"] == "\x01"


def test_apply_round_trip() -> None:
    original = sample()
    back = Tree()
    apply_layer(back, make_layer(original).blob)
    assert dict(back.walk()) == dict(original.walk())


def test_diff_and_apply_reproduce_the_upper_tree() -> None:
    lower = sample()
    upper = lower.copy()
    upper.remove("home")  # a removed directory: one whiteout
    upper.write("etc/passwd", b"changed\n")
    upper.remove("bin/sh")
    upper.mkdir("bin/sh")  # a symlink replaced by a directory
    upper.write("bin/sh/x", b"x")
    upper.write("new/file", b"n")
    top = diff_trees(lower, upper)
    paths = [p for p, _ in top.walk()]
    assert ".wh.home" in paths
    assert "bin/.wh.sh" in paths
    assert "usr/bin/busybox" not in paths  # unchanged
    result = lower.copy()
    apply_layer(result, make_layer(top).blob)
    assert dict(result.walk()) == dict(upper.walk())


def test_opaque_directory_marker() -> None:
    t = sample()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("usr/bin/.wh..wh..opq"), io.BytesIO(b""))
    apply_layer(t, out.getvalue())
    assert t.children("usr/bin") == []


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/../../b"])
def test_hostile_members_are_refused(name: str) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(LayerError, match="leaves the image root"):
        apply_layer(Tree(), out.getvalue(), source="blob sha256:ab")


def test_member_through_symlink_is_refused() -> None:
    t = Tree()
    t.symlink("/etc", "link")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("link/passwd")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(LayerError, match="parent is a symlink"):
        apply_layer(t, out.getvalue())


def test_corrupt_layers() -> None:
    blob = make_layer(sample()).blob
    with pytest.raises(LayerError, match="layer x: corrupt"):
        apply_layer(Tree(), blob[: len(blob) // 2], source="layer x")
    with pytest.raises(LayerError, match="corrupt tar"):
        apply_layer(Tree(), b"not a tar at all" * 40)
