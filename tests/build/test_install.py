"""Installing into an in-memory tree (alpenglow.build.install), checked against the disk: the
same packages installed by ``alpenglow apk --root DIR --initdb add`` must give the same
paths, kinds, modes, owners, link targets, contents and database bytes.

The realistic repository (tests/support/alpine_repo.py) is served over HTTP on 127.0.0.1;
small signed repositories (tests/apk/commit_helpers.py) give the corner cases.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from alpenglow.apk.archive import TarEntry
from alpenglow.apk.database import parse_installed, parse_world
from alpenglow.apk.dependency import parse
from alpenglow.apk.package import read_package
from alpenglow.build.install import (
    InstallError,
    InstallRequest,
    InstallResult,
    LockPin,
    install,
)
from alpenglow.errors import FormatError, PackageError, Unsatisfiable
from alpenglow.oci.tree import CHAR, DIRECTORY, FIFO, HARDLINK, REGULAR, SYMLINK, Node, Tree
from tests.apk.commit_helpers import MTIME, Repo, d, f, hard, make_repo, sym
from tests.support.alpine_repo import BRANCH, OLD_BRANCH, RealisticRepo
from tests.support.mirror import Mirror, serve

ALPENGLOW = Path(sys.executable).parent / "alpenglow"
NEW_TIME = 1_733_300_000
GENERATED = {
    "lib/apk/db/installed",
    "lib/apk/db/scripts.tar.gz",
    "lib/apk/db/triggers",
    "etc/apk/world",
    "etc/apk/arch",
    "etc/apk/repositories",
}

Snapshot = dict[str, tuple[object, ...]]


# --------------------------------------------------------------------------------------------
# helpers: both sides as comparable snapshots


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def tree_snapshot(tree: Tree) -> tuple[Snapshot, set[frozenset[str]]]:
    """path -> (kind, mode, uid, gid, content or target, mtime, devices); hard links as
    the files they are, with the groups of paths sharing content returned apart."""
    out: Snapshot = {}
    groups: dict[str, set[str]] = {}
    for path, node in tree.walk():
        if not path:
            continue
        kind = node.kind
        content: object = None
        if kind == HARDLINK:
            groups.setdefault(node.target, {node.target}).add(path)
            content = _digest(tree[node.target].data)
            kind = REGULAR
        elif kind == REGULAR:
            content = _digest(node.data)
        elif kind == SYMLINK:
            content = node.target
        mtime = None if kind == DIRECTORY else node.mtime
        out[path] = (
            kind,
            node.mode,
            node.uid,
            node.gid,
            content,
            mtime,
            node.devmajor,
            node.devminor,
        )
    return out, {frozenset(g) for g in groups.values()}


def disk_snapshot(root: Path) -> tuple[Snapshot, set[frozenset[str]]]:
    out: Snapshot = {}
    inodes: dict[tuple[int, int], set[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            content: object = None
            major = minor = 0
            if stat.S_ISDIR(st.st_mode):
                kind = DIRECTORY
            elif stat.S_ISLNK(st.st_mode):
                kind, content = SYMLINK, os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                kind = REGULAR
                content = _digest(Path(full).read_bytes())
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), set()).add(rel)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = CHAR if stat.S_ISCHR(st.st_mode) else "block"
                major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
            elif stat.S_ISFIFO(st.st_mode):
                kind = FIFO
            else:  # pragma: no cover
                raise AssertionError(f"{rel}: unexpected file type")
            mtime = None if kind == DIRECTORY else int(st.st_mtime)
            out[rel] = (
                kind,
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                content,
                mtime,
                major,
                minor,
            )
    return out, {frozenset(g) for g in inodes.values() if len(g) > 1}


def owned_files(installed: bytes) -> set[str]:
    return {
        f"{d.path}/{f.name}" if d.path else f.name
        for ip in parse_installed(installed)
        for d in ip.dirs
        for f in d.files
    }


def assert_same_as_disk(result: InstallResult, root: Path) -> None:
    """The tree equals the directory, except the lock file (left out of images) and the
    mtimes of what the commit generates (the clock's on disk, the build time in the tree).
    Owners are compared when the disk run could chown (as root)."""
    tree_side, tree_links = tree_snapshot(result.tree)
    disk_side, disk_links = disk_snapshot(root)
    if os.geteuid() != 0:
        for side in (tree_side, disk_side):
            for path, value in side.items():
                side[path] = (*value[:2], None, None, *value[4:])
    assert disk_side.pop("lib/apk/db/lock")[0] == REGULAR
    owned = owned_files(result.tree.read("lib/apk/db/installed"))
    keys = {p for p in tree_side if p.startswith("etc/apk/keys/")}
    generated = {p for p in tree_side if p in GENERATED} - owned
    for path in generated:
        assert tree_side[path][5] == result.newest_build_time, path
    for path in generated | keys:  # the test writes the keys again before a second step
        tree_side[path] = (*tree_side[path][:5], None, *tree_side[path][6:])
        if path in disk_side:
            disk_side[path] = (*disk_side[path][:5], None, *disk_side[path][6:])
    assert sorted(tree_side) == sorted(disk_side)
    different = {p: (tree_side[p], disk_side[p]) for p in tree_side if tree_side[p] != disk_side[p]}
    assert not different, "\n".join(f"{p}: tree {t} disk {d}" for p, (t, d) in different.items())
    assert tree_links == disk_links


def prepare_root(root: Path, repositories: Sequence[str], keys: Sequence[Path]) -> None:
    """What :func:`install` writes before it installs: the keys and the repositories."""
    (root / "etc/apk/keys").mkdir(parents=True, exist_ok=True)
    for key in keys:
        shutil.copyfile(key, root / "etc/apk/keys" / key.name)
    (root / "etc/apk/repositories").write_text("".join(line + "\n" for line in repositories))


def disk_add(
    root: Path, arch: str, cache: Path, *atoms: str, initdb: bool = True
) -> subprocess.CompletedProcess[str]:
    """``alpenglow apk --root ROOT [--initdb] --arch ARCH --cache-dir CACHE add ATOMS``
    (repositories and keys from the root, no scripts)."""
    args = [str(ALPENGLOW), "apk", "--root", str(root), "--arch", arch, "--cache-dir", str(cache)]
    if initdb:
        args.append("--initdb")
    return subprocess.run(
        [*args, "--quiet", "--no-progress", "add", *atoms],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def key_files(repo: RealisticRepo) -> tuple[Path, ...]:
    return tuple(sorted(repo.keys_dir.iterdir()))


def need(repo: RealisticRepo, arch: str) -> None:
    if arch not in repo.arches:
        pytest.skip(f"{arch}: {repo.skipped.get(arch, 'not in the realistic repository')}")


def request(
    repo: RealisticRepo, mirror: Mirror, cache: Path, arch: str = "x86_64", **kw: object
) -> InstallRequest:
    values: dict[str, object] = {
        "arch": arch,
        "repositories": (mirror.repository(BRANCH),),
        "keys": key_files(repo),
        "world": ("alpine-base",),
        "cache_dir": cache,
    }
    values.update(kw)
    return InstallRequest(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# the realistic repository over HTTP


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_alpine_base_tree_equals_the_disk_install(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path, arch: str
) -> None:
    need(realistic_repo, arch)
    cache = tmp_path / "cache"
    result = install(request(realistic_repo, alpine_mirror, cache, arch))

    root = tmp_path / "root"
    prepare_root(root, (alpine_mirror.repository(BRANCH),), key_files(realistic_repo))
    done = disk_add(root, arch, cache, "alpine-base")
    assert done.returncode == 0, done.stderr
    assert_same_as_disk(result, root)
    # the database files are byte-identical (checked above), and apk inside finds its setup
    tree = result.tree
    assert tree.read("etc/apk/arch") == f"{arch}\n".encode()
    assert tree.read("etc/apk/world") == b"alpine-base\n"
    assert tree.read("etc/apk/repositories") == f"{alpine_mirror.repository(BRANCH)}\n".encode()
    for key in key_files(realistic_repo):
        assert tree.read(f"etc/apk/keys/{key.name}") == key.read_bytes()
    assert tree["bin/sh"] == Node(SYMLINK, 0o777, mtime=NEW_TIME, target="/bin/busybox")
    assert tree.get("lib/apk/db/lock") is None


def test_result_lists_packages_origins_and_build_time(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    result = install(request(realistic_repo, alpine_mirror, tmp_path / "cache"))
    names = [p.name for p in result.installed]
    assert names == sorted(names)
    assert {"alpine-base", "alpine-baselayout", "busybox", "busybox-binsh", "musl"} <= set(names)
    newest = {p.name: p.version for p in result.installed}
    assert newest["busybox"] == realistic_repo.versions("busybox")[-1]
    db = {
        ip.package.name: ip.package
        for ip in parse_installed(result.tree.read("lib/apk/db/installed"))
    }
    assert [db[n] for n in names] == list(result.installed)
    assert result.origins == {
        p.checksum: alpine_mirror.repository(BRANCH) for p in result.installed
    }
    assert result.newest_build_time == max(p.build_time for p in result.installed) == NEW_TIME
    assert result.warnings == ()
    # owners come from the packages' names through the tree's etc/group (shadow is group 42)
    shadow = result.tree["etc/shadow"]
    assert (shadow.uid, shadow.gid, shadow.mode) == (0, 42, 0o640)


def test_nothing_is_written_or_printed_but_the_cache(
    realistic_repo: RealisticRepo,
    alpine_mirror: Mirror,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    result = install(request(realistic_repo, alpine_mirror, None))  # type: ignore[arg-type]
    assert "bin/busybox" in result.tree
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written
    assert all(p.startswith("home/.cache/alpenglow/") for p in written)
    assert any(p.startswith("home/.cache/alpenglow/apk/packages/busybox-") for p in written)
    assert capsys.readouterr() == ("", "")


class Recorder:
    """A :class:`alpenglow.apk.fetch.Progress` that remembers finished downloads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done: list[tuple[str, bool]] = []

    def started(self, url: str, total: int | None) -> None:
        pass

    def advanced(self, url: str, nbytes: int) -> None:
        pass

    def finished(self, url: str, ok: bool) -> None:
        with self.lock:
            self.done.append((url, ok))

    def retrying(self, url: str, attempt: int, delay: float, reason: str) -> None:
        pass


def test_downloads_report_progress_and_a_warm_cache_downloads_nothing(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    progress = Recorder()
    cache = tmp_path / "cache"
    first = install(request(realistic_repo, alpine_mirror, cache), progress=progress)
    packages = {u for u, ok in progress.done if ok and u.endswith(".apk")}
    assert packages == {
        f"{alpine_mirror.repository(BRANCH)}/x86_64/{p.name}-{p.version}.apk"
        for p in first.installed
        if p.installed_size  # a meta package has nothing to fetch
    }
    before = len(alpine_mirror.requests)
    again = Recorder()
    second = install(request(realistic_repo, alpine_mirror, cache), progress=again)
    assert again.done == []
    assert len(alpine_mirror.requests) == before
    assert tree_snapshot(second.tree) == tree_snapshot(first.tree)


def test_a_tampered_package_is_refused_and_not_cached(
    realistic_repo: RealisticRepo, tmp_path: Path
) -> None:
    mirror_root = tmp_path / "mirror"
    arch_dir = mirror_root / "alpine" / BRANCH / "main" / "x86_64"
    shutil.copytree(realistic_repo.arch_dir("x86_64"), arch_dir)
    victim = arch_dir / realistic_repo.apk("busybox").name
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF  # inside the data member: same size, same identity, bad datahash
    victim.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with serve(mirror_root) as mirror, pytest.raises(FormatError) as caught:
        install(request(realistic_repo, mirror, cache))
    assert victim.name in str(caught.value)
    stored = [p.name for p in (cache / "apk" / "packages").glob("*.apk")]
    assert not any(name.startswith("busybox-1") for name in stored)


def test_unsatisfiable_world_carries_apks_report(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(Unsatisfiable) as caught:
        install(request(realistic_repo, alpine_mirror, cache, world=("alpine-base", "no-such")))
    root = tmp_path / "root"
    prepare_root(root, (alpine_mirror.repository(BRANCH),), key_files(realistic_repo))
    done = disk_add(root, "x86_64", cache, "alpine-base", "no-such")
    assert done.returncode != 0
    assert done.stderr == f"ERROR: {caught.value}\n"
    assert str(caught.value).splitlines() == [
        "unable to select packages:",
        "  no-such (no such package):",
        "    required by: world[no-such]",
    ]


def test_unreadable_repository_and_bad_atom_are_errors(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    missing = f"{alpine_mirror.url}/alpine/v0.0/main"
    with pytest.raises(InstallError, match=r"v0\.0/main/x86_64/APKINDEX\.tar\.gz: HTTP 404"):
        install(request(realistic_repo, alpine_mirror, cache, repositories=(missing,)))
    with pytest.raises(InstallError, match="'bad atom!' is not a valid world dependency"):
        install(request(realistic_repo, alpine_mirror, cache, world=("bad atom!",)))
    with pytest.raises(InstallError, match="UNTRUSTED signature"):
        install(request(realistic_repo, alpine_mirror, cache, keys=()))
    with pytest.raises(InstallError, match="tag for world dependency 'busybox@edge'"):
        install(request(realistic_repo, alpine_mirror, cache, world=("busybox@edge",)))


def test_tagged_repository_matches_the_disk(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    lines = (alpine_mirror.repository(BRANCH), f"@old {alpine_mirror.repository(OLD_BRANCH)}")
    cache = tmp_path / "cache"
    result = install(
        request(
            realistic_repo, alpine_mirror, cache, repositories=lines, world=("alpine-base@old",)
        )
    )
    versions = {p.name: p for p in result.installed}
    assert versions["alpine-base"].version == "3.20.3-r0"
    root = tmp_path / "root"
    prepare_root(root, lines, key_files(realistic_repo))
    done = disk_add(root, "x86_64", cache, "alpine-base@old")
    assert done.returncode == 0, done.stderr
    assert_same_as_disk(result, root)


def test_build_repositories_are_used_but_not_written(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    result = install(
        request(
            realistic_repo,
            alpine_mirror,
            tmp_path / "cache",
            repositories=(),
            build_repositories=(alpine_mirror.repository(BRANCH),),
        )
    )
    assert "bin/busybox" in result.tree
    assert result.tree.read("etc/apk/repositories") == b""
    assert set(result.origins.values()) == {alpine_mirror.repository(BRANCH)}


# --------------------------------------------------------------------------------------------
# a base image


def test_base_image_upgraded_by_the_world_matches_the_disk(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    old_line = (alpine_mirror.repository(OLD_BRANCH),)
    base = install(request(realistic_repo, alpine_mirror, cache, repositories=old_line)).tree
    frozen = tree_snapshot(base)
    old_release = base.read("etc/os-release")
    atoms = ("alpine-release>=3.21", "busybox>=1.35.0-r5")
    result = install(request(realistic_repo, alpine_mirror, cache, base=base, world=atoms))
    assert tree_snapshot(base) == frozen  # the base tree itself is not changed
    for key in key_files(realistic_repo):  # identical configuration is left as it was
        assert result.tree[f"etc/apk/keys/{key.name}"] is base[f"etc/apk/keys/{key.name}"]
    versions = {p.name: p.version for p in result.installed}
    assert versions["alpine-release"] == "3.21.0-r0"
    assert versions["busybox"] == versions["busybox-binsh"] == "1.35.0-r5"
    assert versions["alpine-baselayout"] == "3.6.5-r0"  # not asked for: kept
    assert [str(d) for d in parse_world(result.tree.read("etc/apk/world"))] == [
        "alpine-base",
        "alpine-release>=3.21",
        "busybox>=1.35.0-r5",
    ]
    assert result.tree["etc/os-release"].kind == SYMLINK
    assert result.tree.read("etc/os-release") != old_release

    root = tmp_path / "root"
    prepare_root(root, old_line, key_files(realistic_repo))
    assert disk_add(root, "x86_64", cache, "alpine-base").returncode == 0
    prepare_root(root, (alpine_mirror.repository(BRANCH),), key_files(realistic_repo))
    done = disk_add(root, "x86_64", cache, *atoms, initdb=False)
    assert done.returncode == 0, done.stderr
    assert_same_as_disk(result, root)


def test_base_of_another_architecture_is_refused(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    base = Tree()
    base.write("etc/apk/arch", b"aarch64\n")
    with pytest.raises(InstallError, match=r"base image is for aarch64 .* not x86_64"):
        install(request(realistic_repo, alpine_mirror, tmp_path / "cache", base=base))


# --------------------------------------------------------------------------------------------
# locked packages


def pins_of(result: InstallResult) -> tuple[LockPin, ...]:
    return tuple(LockPin(p.name, p.version, p.checksum) for p in result.installed)


def test_locked_pins_install_exactly_those_packages(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    free = install(request(realistic_repo, alpine_mirror, cache))
    same = install(request(realistic_repo, alpine_mirror, cache, locked=pins_of(free)))
    assert same.installed == free.installed
    assert tree_snapshot(same.tree) == tree_snapshot(free.tree)
    assert same.tree.read("etc/apk/world") == b"alpine-base\n"

    # the lock may name older versions than the newest: exactly those are installed
    old = realistic_repo.versions("busybox")[0]
    older = []
    for pin in pins_of(free):
        if pin.name in ("busybox", "busybox-binsh"):
            data = realistic_repo.apk(pin.name, version=old).read_bytes()
            ident = read_package(data, None, source=pin.name, allow_untrusted=True).identity
            older.append(LockPin(pin.name, old, ident))
        else:
            older.append(pin)
    pinned = install(request(realistic_repo, alpine_mirror, cache, locked=tuple(older)))
    assert pins_of(pinned) == tuple(older)


def test_locked_pins_the_repositories_no_longer_offer(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    pins = list(pins_of(install(request(realistic_repo, alpine_mirror, cache))))
    gone = LockPin("busybox", "9.9.9-r0", "Q1" + "A" * 26 + "=")
    changed = replace(pins[0], checksum="Q1" + "B" * 26 + "=")
    pins = [changed, *(gone if p.name == "busybox" else p for p in pins[1:])]
    with pytest.raises(InstallError) as caught:
        install(request(realistic_repo, alpine_mirror, cache, locked=tuple(pins)))
    assert caught.value.missing == (changed, gone)
    assert str(caught.value) == (
        f"the repositories no longer offer 2 locked packages: {changed}, {gone}"
    )

    # a lock that misses a package the world needs does not match either
    partial = tuple(
        p
        for p in pins_of(install(request(realistic_repo, alpine_mirror, cache)))
        if p.name != "musl"
    )
    with pytest.raises(InstallError, match=r"lock file does not match .* would also install musl-"):
        install(request(realistic_repo, alpine_mirror, cache, locked=partial))


# --------------------------------------------------------------------------------------------
# small repositories: the corner cases, against the disk


def small_request(repo: Repo, world: Sequence[str], **kw: object) -> InstallRequest:
    values: dict[str, object] = {
        "arch": "x86_64",
        "repositories": (str(repo.base),),
        "keys": tuple(sorted(repo.keys_dir.iterdir())),
        "world": tuple(world),
        "cache_dir": repo.base.parent / "cache",
    }
    values.update(kw)
    return InstallRequest(**values)  # type: ignore[arg-type]


def small_disk(repo: Repo, root: Path, *atoms: str, initdb: bool = True) -> None:
    prepare_root(root, (str(repo.base),), tuple(sorted(repo.keys_dir.iterdir())))
    done = disk_add(root, "x86_64", repo.base.parent / "cache", *atoms, initdb=initdb)
    assert done.returncode == 0, done.stderr


def test_owners_modes_links_devices_and_replaces_match_the_disk(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.add(
        "accounts",
        "1.0-r0",
        [
            d("etc"),
            f("etc/passwd", b"root:x:0:0::/root:/bin/sh\nsvc:x:100:200::/:/sbin/nologin\n"),
            f("etc/group", b"root:x:0:\nsvc:x:200:\n"),
        ],
    )
    repo.add(
        "tool",
        "1.0-r0",
        [
            d("usr"),
            d("usr/bin"),
            f("usr/bin/tool", b"tool 1", 0o755),
            hard("usr/bin/tool-hard", "usr/bin/tool"),
            sym("usr/bin/t", "tool"),
            f("usr/bin/su-ish", b"suid", 0o4755),
            d("var", uname="svc", gname="svc"),
            d("var/lib", 0o700, uname="svc", gname="svc", uid=7, gid=7),
            f("var/lib/state", b"s", 0o600, uname="svc", gname="nobody", gid=9),
            d("dev"),
            TarEntry("dev/null", type="3", mode=0o666, devmajor=1, devminor=3, mtime=MTIME),
            TarEntry("dev/pipe", type="6", mode=0o600, mtime=MTIME),
            f("top-level", b"top\n"),
        ],
        depends=(parse("accounts"),),
    )
    repo.add(
        "tool-extra",
        "1.0-r0",
        [d("usr"), d("usr/bin", 0o750), f("usr/bin/tool", b"better tool", 0o755)],
        replaces=(parse("tool"),),
        depends=(parse("tool"),),
    )
    result = install(small_request(repo, ["tool", "tool-extra"]))
    tree = result.tree
    assert tree.read("usr/bin/tool") == b"better tool"
    assert tree["usr/bin/tool-hard"].kind == REGULAR  # its target was replaced: a copy
    assert tree.read("usr/bin/tool-hard") == b"tool 1"
    assert (tree["var/lib"].uid, tree["var/lib"].gid, tree["var/lib"].mode) == (100, 200, 0o700)
    assert (tree["var/lib/state"].uid, tree["var/lib/state"].gid) == (100, 9)
    assert tree["usr/bin/su-ish"].mode == 0o4755
    assert (tree["dev/null"].kind, tree["dev/null"].devmajor, tree["dev/null"].devminor) == (
        CHAR,
        1,
        3,
    )
    assert tree["dev/pipe"].kind == FIFO
    if os.geteuid() == 0:  # device nodes on disk need root
        root = tmp_path / "root"
        small_disk(repo, root, "tool", "tool-extra")
        assert_same_as_disk(result, root)


def test_hard_links_stay_links_when_their_target_is_placed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.add("h", "1.0-r0", [d("bin"), f("bin/a", b"a", 0o755), hard("bin/b", "bin/a")])
    result = install(small_request(repo, ["h"]))
    assert result.tree["bin/b"] == Node(HARDLINK, 0o755, mtime=MTIME, target="bin/a")
    root = tmp_path / "root"
    small_disk(repo, root, "h")
    assert_same_as_disk(result, root)


def test_upgrade_and_removal_on_a_base_match_the_disk(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.add("libz", "1.0-r0", [d("lib"), d("lib/z"), f("lib/z/libz.so.1", b"z1")])
    repo.add(
        "tool",
        "1.0-r0",
        [d("usr"), d("usr/bin"), f("usr/bin/tool", b"tool 1", 0o755), sym("usr/bin/t", "tool")],
        depends=(parse("libz"),),
    )
    base = install(small_request(repo, ["tool"])).tree
    root = tmp_path / "root"
    small_disk(repo, root, "tool")
    repo.add(
        "tool",
        "2.0-r0",
        [d("usr"), d("usr/bin"), f("usr/bin/tool", b"tool 2", 0o755)],
    )
    repo.add("extra", "1.0-r0", [d("opt"), f("opt/extra", b"x")])
    result = install(small_request(repo, ["tool>=2", "extra"], base=base))
    tree = result.tree
    assert [str(p) for p in result.installed] == ["extra-1.0-r0", "tool-2.0-r0"]
    assert tree.read("usr/bin/tool") == b"tool 2"
    assert "usr/bin/t" not in tree
    assert "lib/z" not in tree
    assert tree.children("lib") == ["apk"]
    assert tree.read("etc/apk/world") == b"extra\ntool>=2\n"
    small_disk(repo, root, "tool>=2", "extra", initdb=False)
    assert_same_as_disk(result, root)


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([d("etc"), sym("etc/x", "/"), f("etc/x/passwd", b"p")], "lies below etc/x"),
        ([d("etc"), f("/etc/evil", b"e")], "is absolute"),
        ([d("etc"), f("etc/../../evil", b"e")], "contains a '..' component"),
        ([f("etc/orphan", b"o")], "no directory entry in archive"),
        ([d("etc"), hard("etc/h", "etc/none")], "no hard link target"),
        ([d("etc"), f("etc/\x1bx", b"e")], "contains a control character"),
    ],
)
def test_hostile_packages_are_refused(tmp_path: Path, entries: list[TarEntry], reason: str) -> None:
    repo = make_repo(tmp_path)
    repo.add("evil", "1.0-r0", entries, raw=True)
    with pytest.raises(PackageError, match=f"evil-1.0-r0: refusing package: .*{reason}"):
        install(small_request(repo, ["evil"]))


def test_conflicting_files_are_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.add("one", "1.0-r0", [d("usr"), f("usr/x", b"1")])
    repo.add("two", "1.0-r0", [d("usr"), f("usr/x", b"2")])
    with pytest.raises(
        PackageError, match=r"two-1.0-r0: trying to overwrite usr/x owned by one-1.0-r0\."
    ):
        install(small_request(repo, ["one", "two"]))


def test_files_land_where_the_base_tree_links_lead(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.add("p", "1.0-r0", [d("lib"), f("lib/libp.so", b"p"), d("bin"), f("bin/p", b"#!", 0o755)])
    base = Tree()
    base.mkdir("usr/lib")
    base.mkdir("usr/bin")
    base.symlink("usr/lib", "lib")
    base.symlink("/usr/bin", "bin")
    result = install(small_request(repo, ["p"], base=base))
    assert result.tree.read("usr/lib/libp.so") == b"p"
    assert result.tree["usr/bin/p"].mode == 0o755
    assert result.tree["lib"].kind == SYMLINK
    assert result.tree["bin"].kind == SYMLINK


def test_protected_configuration_of_the_base_is_kept(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.add("conf", "1.0-r0", [d("etc"), f("etc/conf.ini", b"packaged\n")])
    base = Tree()
    base.write("etc/conf.ini", b"local\n")
    result = install(small_request(repo, ["conf"], base=base))
    assert result.tree.read("etc/conf.ini") == b"local\n"
    assert result.tree.read("etc/conf.ini.apk-new") == b"packaged\n"


def test_xattrs_are_kept_and_recorded(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    cap = (("security.capability", b"\x01\x00\x00\x02" + bytes(16)),)
    repo.add("x", "1.0-r0", [d("bin"), f("bin/ping", b"ping", 0o755, xattrs=cap)])
    result = install(small_request(repo, ["x"]))
    assert result.tree["bin/ping"].xattrs == cap
    text = result.tree.read("lib/apk/db/installed").decode()
    digest = hashlib.sha1()
    for name, value in cap:
        raw = name.encode()
        digest.update(len(raw).to_bytes(4, "big") + raw + len(value).to_bytes(4, "big") + value)
    assert f"R:ping\na:0:0:755:Q1{base64.b64encode(digest.digest()).decode()}\n" in text
