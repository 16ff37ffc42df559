"""The in-memory filesystem tree."""

from __future__ import annotations

import pytest

from alpenglow.oci.tree import (
    DIRECTORY,
    HARDLINK,
    REGULAR,
    SYMLINK,
    Node,
    Tree,
    TreeError,
    normalize,
)


def sample() -> Tree:
    t = Tree()
    t.mkdir("usr/bin", mtime=5)
    t.write("usr/bin/busybox", b"\x7fELF", 0o755, mtime=7)
    t.symlink("/usr/bin/busybox", "bin/sh")
    t.symlink("usr/bin", "b")
    t.add("usr/bin/ash", Node(HARDLINK, 0o755, target="usr/bin/busybox"))
    return t


def test_normalize_refuses_climbing() -> None:
    assert normalize("//etc/./apk//") == "etc/apk"
    with pytest.raises(TreeError, match="climbs"):
        normalize("etc/../../x")


def test_walk_is_sorted_parents_first() -> None:
    paths = [p for p, _ in sample().walk()]
    assert paths == ["", "b", "bin", "bin/sh", "usr", "usr/bin", "usr/bin/ash", "usr/bin/busybox"]
    assert sample().children("usr/bin") == ["ash", "busybox"]


def test_resolve_follows_links_inside_the_tree() -> None:
    t = sample()
    assert t.resolve("bin/sh") == "usr/bin/busybox"
    assert t.resolve("bin/sh", follow_last=False) == "bin/sh"
    assert t.resolve("b/../../../etc") == "etc"
    assert t.read("bin/sh") == b"\x7fELF"
    assert t.read("usr/bin/ash") == b"\x7fELF"
    t.symlink("loop2", "loop1")
    t.symlink("loop1", "loop2")
    with pytest.raises(TreeError, match="too many levels"):
        t.resolve("loop1/x")


def test_add_rules() -> None:
    t = sample()
    with pytest.raises(TreeError, match="parent /nope is not a directory"):
        t.add("nope/x", Node(REGULAR, 0o644))
    with pytest.raises(TreeError, match="already exists as a dir"):
        t.add("usr/bin", Node(REGULAR, 0o644))
    with pytest.raises(TreeError, match="hard link target"):
        t.add("x", Node(HARDLINK, 0o644, target="usr"))
    t.add("usr/bin", Node(DIRECTORY, 0o700, uid=3))
    assert t["usr/bin"].mode == 0o700
    assert t.children("usr/bin") == ["ash", "busybox"]
    t.write("usr/bin/busybox", b"new", 0o755)
    assert t.read("usr/bin/ash") == b"new"  # a link names a path, not an inode


def test_remove_keeps_hard_link_content() -> None:
    t = sample()
    t.remove("usr/bin/busybox")
    node = t["usr/bin/ash"]
    assert node.kind == REGULAR
    assert node.data == b"\x7fELF"
    t.remove("usr")
    assert "usr" not in t
    assert t.get("bin/sh") == Node(SYMLINK, 0o777, target="/usr/bin/busybox")
    with pytest.raises(TreeError):
        t.remove("")


def test_copy_is_independent_and_clamp() -> None:
    t = sample()
    c = t.copy()
    c.remove("bin")
    assert "bin/sh" in t
    t.clamp_mtimes(6)
    assert t["usr/bin/busybox"].mtime == 6
    assert t["usr/bin"].mtime == 5
