"""alpenglow.runtime.storage: layers unpacked as overlay lower directories, overlay mounts,
the copy fallback, and mount bookkeeping. Unpacking owners and devices, and mounting, need
root; those tests are skipped otherwise."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpenglow.errors import ArchiveError
from alpenglow.runtime import storage
from alpenglow.runtime.storage import (
    LayerStore,
    copy_layers,
    mount_overlay,
    mounts_below,
    overlay_supported,
    unmount,
    unmount_all,
    unpack_layer,
)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (owners, devices, mounts)")

Entry = tuple[str, str, dict[str, object]]


def make_tar(entries: list[Entry]) -> bytes:
    """A tar of ``(name, kind, attributes)``: kind is file, dir, symlink, link, chr, fifo."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, attrs in entries:
            info = tarfile.TarInfo(name)
            info.mtime = int(attrs.get("mtime", 1_600_000_000))  # type: ignore[call-overload]
            info.uid = int(attrs.get("uid", 0))  # type: ignore[call-overload]
            info.gid = int(attrs.get("gid", 0))  # type: ignore[call-overload]
            info.mode = int(attrs.get("mode", 0o644 if kind != "dir" else 0o755))  # type: ignore[call-overload]
            data = b""
            if kind == "file":
                data = bytes(attrs.get("data", b""))  # type: ignore[call-overload]
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = str(attrs["target"])
            elif kind == "link":
                info.type = tarfile.LNKTYPE
                info.linkname = str(attrs["target"])
            elif kind == "chr":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = 1, 3
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            if "xattrs" in attrs:
                info.pax_headers = {
                    f"SCHILY.xattr.{k}": v
                    for k, v in dict(attrs["xattrs"]).items()  # type: ignore[call-overload]
                }
            tar.addfile(info, io.BytesIO(data) if kind == "file" else None)
    return out.getvalue()


def diff_id(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def unpack(raw: bytes, dest: Path, *, compress: bool = True) -> Path:
    blob = gzip.compress(raw) if compress else raw
    unpack_layer(
        io.BytesIO(blob),
        dest,
        diff_id=diff_id(raw),
        digest="sha256:" + hashlib.sha256(blob).hexdigest(),
    )
    return dest


def test_exports() -> None:
    assert sorted(storage.__all__) == sorted(dir(storage))


@root_only
def test_unpack_keeps_everything(tmp_path: Path) -> None:
    raw = make_tar(
        [
            ("./", "dir", {"mode": 0o755}),
            ("etc/", "dir", {"mode": 0o755, "mtime": 1_500_000_000}),
            ("etc/passwd", "file", {"data": b"root:x:0:0::/root:/bin/sh\n", "mode": 0o644}),
            ("bin/", "dir", {}),
            ("bin/busybox", "file", {"data": b"\x7fELF", "mode": 0o4755, "uid": 0}),
            ("bin/sh", "symlink", {"target": "/bin/busybox", "mtime": 1_400_000_000}),
            ("bin/ash", "link", {"target": "bin/busybox"}),
            ("home/app/", "dir", {"uid": 1000, "gid": 1001, "mode": 0o700}),
            ("home/app/notes", "file", {"data": b"x", "uid": 1000, "gid": 1001, "mode": 0o600}),
            ("dev/null", "chr", {"mode": 0o666}),
            ("run/fifo", "fifo", {}),
            ("usr/bin/ping", "file", {"data": b"p", "xattrs": {"user.note": "hello"}}),
        ]
    )
    dest = unpack(raw, tmp_path / "layer")
    st = os.lstat(dest / "bin" / "busybox")
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert os.readlink(dest / "bin" / "sh") == "/bin/busybox"
    assert os.lstat(dest / "bin" / "sh").st_mtime == 1_400_000_000
    assert os.lstat(dest / "bin" / "ash").st_ino == st.st_ino
    home = os.lstat(dest / "home" / "app")
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1000, 1001, 0o700)
    assert os.lstat(dest / "etc").st_mtime == 1_500_000_000  # set after its children
    null = os.lstat(dest / "dev" / "null")
    assert stat.S_ISCHR(null.st_mode)
    assert null.st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO(os.lstat(dest / "run" / "fifo").st_mode)
    assert os.getxattr(dest / "usr" / "bin" / "ping", "user.note") == b"hello"
    assert (dest / "etc" / "passwd").read_bytes() == b"root:x:0:0::/root:/bin/sh\n"


@root_only
def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    raw = make_tar(
        [
            ("etc/", "dir", {}),
            ("etc/.wh.motd", "file", {}),
            ("var/cache/", "dir", {}),
            ("var/cache/.wh..wh..opq", "file", {}),
            ("var/cache/new", "file", {"data": b"n"}),
            (".wh..wh.plnk", "dir", {}),  # aufs bookkeeping: ignored
            (".wh.toplevel", "file", {}),
        ]
    )
    dest = unpack(raw, tmp_path / "layer")
    for victim in (dest / "etc" / "motd", dest / "toplevel"):
        st = os.lstat(victim)
        assert stat.S_ISCHR(st.st_mode)
        assert st.st_rdev == 0
    assert os.getxattr(dest / "var" / "cache", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(dest / "var" / "cache")) == ["new"]
    assert not (dest / ".wh..wh.plnk").exists()
    assert sorted(os.listdir(dest)) == ["etc", "toplevel", "var"]


@root_only
def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    raw = make_tar(
        [
            ("a", "file", {"data": b"first"}),
            ("a", "file", {"data": b"second"}),
            ("d/", "dir", {}),
            ("d/x", "file", {}),
            ("d", "symlink", {"target": "elsewhere"}),
            ("s", "symlink", {"target": "t"}),
            ("s/", "dir", {}),
        ]
    )
    dest = unpack(raw, tmp_path / "layer", compress=False)
    assert (dest / "a").read_bytes() == b"second"
    assert os.readlink(dest / "d") == "elsewhere"
    assert (dest / "s").is_dir()
    assert not (dest / "s").is_symlink()


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([("/etc/passwd", "file", {})], "leaves the image root"),
        ([("../outside", "file", {})], "leaves the image root"),
        ([("a/../../outside", "file", {})], "leaves the image root"),
        (
            [("evil", "symlink", {"target": "/tmp"}), ("evil/escaped", "file", {})],
            "its parent is a symlink",
        ),
        (
            [("f", "file", {}), ("f/x", "file", {})],
            "its parent is not a directory",
        ),
        ([("l", "link", {"target": "../../etc/shadow"})], "leaves the image root"),
        ([("l", "link", {"target": "missing"})], "is not in the layer"),
    ],
)
def test_hostile_layers_are_refused(tmp_path: Path, entries: list[Entry], problem: str) -> None:
    outside = tmp_path / "outside"
    with pytest.raises(ArchiveError, match=problem):
        unpack(make_tar(entries), tmp_path / "layer")
    assert not outside.exists()
    assert not (Path("/tmp") / "escaped").exists()


def test_digests_are_checked(tmp_path: Path) -> None:
    raw = make_tar([("a", "file", {"data": b"a"})])
    with pytest.raises(ArchiveError, match="hashes to sha256:"):
        unpack_layer(io.BytesIO(gzip.compress(raw)), tmp_path / "x", diff_id="sha256:" + "0" * 64)
    with pytest.raises(ArchiveError, match="is corrupt"):
        unpack_layer(
            io.BytesIO(gzip.compress(raw)),
            tmp_path / "y",
            diff_id=diff_id(raw),
            digest="sha256:" + "1" * 64,
        )
    with pytest.raises(ArchiveError, match="corrupt"):
        unpack_layer(io.BytesIO(gzip.compress(raw)[:30]), tmp_path / "z", diff_id=diff_id(raw))
    with pytest.raises(ArchiveError, match="not a valid digest"):
        unpack_layer(io.BytesIO(raw), tmp_path / "w", diff_id="sha256:../../x")


def test_layer_store_is_atomic_and_collects_garbage(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    good = make_tar([("hello", "file", {"data": b"hi"})])
    bad = make_tar([("../x", "file", {})])
    path = store.ensure(diff_id(good), [io.BytesIO(gzip.compress(good))])
    assert (path / "hello").read_bytes() == b"hi"
    assert store.has(diff_id(good))

    def never() -> Iterator[io.BytesIO]:
        raise AssertionError("an unpacked layer is not unpacked again")
        yield io.BytesIO()

    assert store.ensure(diff_id(good), never()) == path
    with pytest.raises(ArchiveError):
        store.ensure(diff_id(bad), [io.BytesIO(bad)])
    assert not store.has(diff_id(bad))
    assert sorted(os.listdir(tmp_path / "layers" / "sha256")) == [diff_id(good)[7:]]
    assert store.diff_ids() == [diff_id(good)]
    assert store.gc({diff_id(good)}) == []
    assert store.gc(set()) == [diff_id(good)]
    assert os.listdir(tmp_path / "layers" / "sha256") == []


MOUNTINFO = (
    "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
    "44 22 0:39 / /data/c1/rootfs rw - overlay overlay rw\n"
    "45 44 0:40 / /data/c1/rootfs/proc rw - proc proc rw\n"
    "46 22 0:41 / /data/c10/rootfs rw - overlay overlay rw\n"
    "47 22 0:42 / /data/with\\040space rw - tmpfs tmpfs rw\n"
)


def test_mounts_below_reads_mountinfo() -> None:
    assert mounts_below(Path("/data/c1"), MOUNTINFO) == [
        Path("/data/c1/rootfs/proc"),
        Path("/data/c1/rootfs"),
    ]
    assert mounts_below(Path("/data/with space"), MOUNTINFO) == [Path("/data/with space")]
    assert mounts_below(Path("/elsewhere"), MOUNTINFO) == []


def view(root: Path) -> dict[str, tuple[str, str]]:
    """Every path below ``root`` with its kind and content (or link target)."""
    out = {}
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(current) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", "")
            else:
                out[rel] = ("file", path.read_text())
    return out


@pytest.fixture
def layered(tmp_path: Path) -> list[Path]:
    """Three layers exercising whiteouts, opaque directories and type changes."""
    base = make_tar(
        [
            ("etc/", "dir", {}),
            ("etc/motd", "file", {"data": b"welcome"}),
            ("etc/hostname", "file", {"data": b"base"}),
            ("var/cache/", "dir", {}),
            ("var/cache/old1", "file", {"data": b"1"}),
            ("var/cache/sub/", "dir", {}),
            ("var/cache/sub/old2", "file", {"data": b"2"}),
            ("lib/", "dir", {}),
            ("lib/link", "symlink", {"target": "/etc/motd"}),
            ("gone/", "dir", {}),
            ("gone/deep", "file", {"data": b"d"}),
        ]
    )
    middle = make_tar(
        [
            ("etc/", "dir", {}),
            ("etc/.wh.motd", "file", {}),
            ("etc/hostname", "file", {"data": b"middle"}),
            ("var/cache/", "dir", {}),
            ("var/cache/.wh..wh..opq", "file", {}),
            ("var/cache/fresh", "file", {"data": b"f"}),
            (".wh.gone", "file", {}),
        ]
    )
    top = make_tar(
        [
            ("lib/", "dir", {}),
            ("lib/link", "file", {"data": b"now a file"}),
            ("gone", "file", {"data": b"back as a file"}),
            ("etc/", "dir", {}),
            ("etc/motd", "file", {"data": b"new motd"}),
        ]
    )
    return [unpack(raw, tmp_path / f"l{i}") for i, raw in enumerate((base, middle, top))]


EXPECTED = {
    "etc": ("dir", ""),
    "etc/hostname": ("file", "middle"),
    "etc/motd": ("file", "new motd"),
    "var": ("dir", ""),
    "var/cache": ("dir", ""),
    "var/cache/fresh": ("file", "f"),
    "lib": ("dir", ""),
    "lib/link": ("file", "now a file"),
    "gone": ("file", "back as a file"),
}


@root_only
def test_overlay_mount_shows_the_merged_layers(tmp_path: Path, layered: list[Path]) -> None:
    if not overlay_supported(tmp_path):
        pytest.skip("overlayfs cannot be mounted here")
    for name in ("upper", "work", "merged"):
        (tmp_path / name).mkdir()
    mount_overlay(layered, tmp_path / "upper", tmp_path / "work", tmp_path / "merged")
    try:
        assert mounts_below(tmp_path) == [tmp_path / "merged"]
        assert view(tmp_path / "merged") == EXPECTED
        (tmp_path / "merged" / "etc" / "new").write_text("upper")
        assert (tmp_path / "upper" / "etc" / "new").read_text() == "upper"
        assert not (layered[2] / "etc" / "new").exists()  # layers never change
    finally:
        assert unmount_all(tmp_path) == 1
    assert mounts_below(tmp_path) == []
    assert unmount(tmp_path / "merged") is False


@root_only
def test_volatile_overlay_can_be_mounted_again(tmp_path: Path, layered: list[Path]) -> None:
    if not overlay_supported(tmp_path):
        pytest.skip("overlayfs cannot be mounted here")
    for name in ("upper", "work", "merged"):
        (tmp_path / name).mkdir()
    dirs = (tmp_path / "upper", tmp_path / "work", tmp_path / "merged")
    for round_ in range(2):  # the marker a volatile mount leaves must not stop the next one
        mount_overlay(layered, *dirs, volatile=True)
        try:
            assert view(tmp_path / "merged")["etc/motd"] == ("file", "new motd")
            (tmp_path / "merged" / f"round-{round_}").write_text("x")
        finally:
            assert unmount_all(tmp_path) == 1
    assert sorted(p.name for p in (tmp_path / "upper").iterdir()) == ["round-0", "round-1"]
    assert mounts_below(tmp_path) == []


@root_only
def test_copy_fallback_matches_overlay(tmp_path: Path, layered: list[Path]) -> None:
    copy_layers(layered, tmp_path / "copy")
    assert view(tmp_path / "copy") == EXPECTED


@root_only
def test_copy_never_writes_through_a_lower_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    lower = make_tar([("f", "symlink", {"target": str(victim)})])
    upper = make_tar([("f", "file", {"data": b"overwritten"})])
    layers = [unpack(lower, tmp_path / "l0"), unpack(upper, tmp_path / "l1")]
    copy_layers(layers, tmp_path / "copy")
    assert victim.read_text() == "precious"
    assert (tmp_path / "copy" / "f").read_text() == "overwritten"


@root_only
def test_long_lower_lists_use_relative_paths(tmp_path: Path) -> None:
    if not overlay_supported(tmp_path):
        pytest.skip("overlayfs cannot be mounted here")
    layers = []
    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    for i in range(80):  # about 80 * 130 bytes of options: more than one page
        raw = make_tar([(f"f{i}", "file", {"data": str(i).encode()})])
        layers.append(unpack(raw, deep / f"layer-{i:03d}-{'x' * 40}"))
    for name in ("upper", "work", "merged"):
        (tmp_path / name).mkdir()
    cwd = os.getcwd()
    mount_overlay(layers, tmp_path / "upper", tmp_path / "work", tmp_path / "merged")
    try:
        assert os.getcwd() == cwd
        assert sorted(os.listdir(tmp_path / "merged")) == sorted(f"f{i}" for i in range(80))
    finally:
        unmount_all(tmp_path)
