"""The commit engine on real roots: install, upgrade, remove, ownership rules, hostile and
corrupt packages, and failures (ENOSPC, Ctrl-C) that must leave the root as it was."""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import replace as dc_replace
from pathlib import Path

import pytest

import alpenglow.apk.commit as commit_mod
from alpenglow.apk.archive import TarEntry, gzip_member, write_tar
from alpenglow.apk.commit import (
    CommitOptions,
    CommitResult,
    LocalPackageSource,
    Step,
    commit,
    load_database,
    resolve_in_root,
)
from alpenglow.apk.database import (
    ScriptRecord,
    format_scripts,
    format_triggers,
    parse_installed,
    parse_scripts,
    parse_triggers,
    parse_world,
)
from alpenglow.apk.dependency import parse
from alpenglow.apk.index import Package
from alpenglow.apk.package import CHECKSUM_KEY, format_pkginfo, read_package
from alpenglow.apk.repository import Repository
from alpenglow.apk.solver import Candidate
from alpenglow.errors import CommitError, PackageError
from tests.apk.commit_helpers import MTIME, Repo, d, f, hard, make_repo, snapshot, sym
from tests.apk.commit_helpers import info as mkinfo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path)


def _repository(repo: Repo) -> Repository:
    return Repository(str(repo.arch_dir / "APKINDEX.tar.gz"), str(repo.base))


def _run(
    root: Path,
    repo: Repo,
    changes: Sequence[tuple[Package | None, Package | None]],
    *,
    world: str = "",
    **opts: object,
) -> CommitResult:
    steps = [
        Step(
            old=old,
            new=Candidate(new) if new is not None else None,
            repository=_repository(repo) if new is not None else None,
        )
        for old, new in changes
    ]
    options = CommitOptions(
        world=tuple(parse(w) for w in world.split()),
        arches=("x86_64",),
        keys=repo.keyring,
        initdb=not (root / "lib/apk/db").exists(),
        **opts,  # type: ignore[arg-type]
    )
    return commit(root, load_database(root), steps, LocalPackageSource(), options)


def _installed(root: Path) -> dict[str, object]:
    data = (root / "lib/apk/db/installed").read_bytes()
    return {ip.package.name: ip for ip in parse_installed(data)}


def test_fresh_install_writes_files_and_database(tmp_path: Path, repo: Repo) -> None:
    a = repo.add(
        "a",
        "1.0-r0",
        [
            d("usr"),
            d("usr/bin"),
            f("usr/bin/a", b"#!/bin/sh\necho a\n", 0o755),
            sym("usr/bin/a-link", "a"),
            hard("usr/bin/a-hard", "usr/bin/a"),
            d("var"),
            d("var/empty", 0o700),
            f("top", b"top-level file\n"),
        ],
        scripts=[(".post-install", b"#!/bin/sh\nexit 0\n")],
        triggers=("/usr/share/fonts/*",),
    )
    root = tmp_path / "root"
    _run(root, repo, [(None, a)], world="a")

    exe = root / "usr/bin/a"
    assert exe.read_bytes() == b"#!/bin/sh\necho a\n"
    assert stat.S_IMODE(exe.stat().st_mode) == 0o755
    assert int(exe.stat().st_mtime) == MTIME
    assert os.readlink(root / "usr/bin/a-link") == "a"
    assert (root / "usr/bin/a-hard").stat().st_ino == exe.stat().st_ino
    assert stat.S_IMODE((root / "var/empty").stat().st_mode) == 0o700
    assert (root / "top").read_bytes() == b"top-level file\n"

    text = (root / "lib/apk/db/installed").read_text()
    assert text.startswith(f"C:{a.checksum}\nP:a\nV:1.0-r0\nA:x86_64\n")
    assert "F:usr/bin\nR:a\na:0:0:755\nZ:Q1cbyjZSvA/NcBLMN5Ti0kga0zIno=\n" in text
    # the hard link carries its target's checksum, the symlink the hash of "a"
    assert "R:a-hard\nZ:Q1cbyjZSvA/NcBLMN5Ti0kga0zIno=\n" in text
    assert "R:a-link\na:0:0:777\nZ:Q1hvfkN/qlp/zhXR3cuerq6jd2Z7g=\n" in text
    assert "F:var/empty\nM:0:0:700\n" in text
    assert "\nF:\nR:top\n" in text
    assert text.endswith("\n\n")
    assert (root / "etc/apk/world").read_bytes() == b"a\n"
    assert (root / "etc/apk/arch").read_bytes() == b"x86_64\n"
    for path in ("lib/apk/exec", "etc/apk/keys", "var/cache/apk", "lib/apk/db/lock"):
        assert (root / path).exists(), path
    scripts = parse_scripts((root / "lib/apk/db/scripts.tar.gz").read_bytes())
    assert [(s.identity, s.script) for s in scripts] == [(a.checksum, "post-install")]
    assert (root / "lib/apk/db/triggers").read_text() == f"{a.checksum} /usr/share/fonts/*\n"
    assert not [p for p in os.listdir(root) if p.startswith(".alpenglow-stage")]


def test_owner_names_resolve_through_the_roots_passwd(tmp_path: Path, repo: Repo) -> None:
    base = repo.add(
        "baselayout",
        "1.0-r0",
        [
            d("etc"),
            f("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnginx:x:101:102::/:/sbin/nologin\n"),
            f("etc/group", b"root:x:0:\nnginx:x:102:\n"),
        ],
    )
    web = repo.add(
        "web",
        "1.0-r0",
        [
            d("var"),
            d("var/lib", uname="nginx", gname="nginx"),
            f("var/lib/state", b"s", uname="nginx", gname="nginx", uid=5, gid=6),
            f("var/lib/numeric", b"n", uname="nobody-here", gname="", uid=7, gid=8),
        ],
    )
    root = tmp_path / "root"
    _run(root, repo, [(None, base), (None, web)], world="baselayout web")
    st = (root / "var/lib/state").stat()
    assert (st.st_uid, st.st_gid) == (101, 102)
    st = (root / "var/lib/numeric").stat()
    assert (st.st_uid, st.st_gid) == (7, 8)
    text = (root / "lib/apk/db/installed").read_text()
    assert "R:state\na:101:102:644\n" in text
    assert "F:var/lib\nM:101:102:755\n" in text


def test_xattrs_are_kept_and_hashed(tmp_path: Path, repo: Repo) -> None:
    pkg = repo.add(
        "x",
        "1.0-r0",
        [d("usr"), f("usr/x", b"x", xattrs=(("user.alpenglow", b"yes"),))],
    )
    root = tmp_path / "root"
    _run(root, repo, [(None, pkg)])
    assert os.getxattr(root / "usr/x", "user.alpenglow") == b"yes"
    acl = next(
        line for line in (root / "lib/apk/db/installed").read_text().split("\n") if line[:2] == "a:"
    )
    assert acl.startswith("a:0:0:644:Q1")


def test_upgrade_replaces_and_removes_old_files(tmp_path: Path, repo: Repo) -> None:
    v1 = repo.add(
        "a",
        "1.0-r0",
        [
            d("usr"),
            d("usr/share"),
            d("usr/share/a"),
            f("usr/share/a/old", b"1"),
            f("usr/share/a/k", b"1"),
        ],
    )
    root = tmp_path / "root"
    _run(root, repo, [(None, v1)], world="a")
    v2 = repo.add("a", "2.0-r0", [d("usr"), d("usr/bin"), f("usr/bin/k", b"2")])
    _run(root, repo, [(v1, v2)], world="a")
    assert not (root / "usr/share").exists()
    assert (root / "usr/bin/k").read_bytes() == b"2"
    (ip,) = parse_installed((root / "lib/apk/db/installed").read_bytes())
    assert ip.package.version == "2.0-r0"
    assert [dd.path for dd in ip.dirs] == ["usr", "usr/bin"]


def test_removal_keeps_shared_directories(tmp_path: Path, repo: Repo) -> None:
    a = repo.add("a", "1.0-r0", [d("usr"), d("usr/bin"), f("usr/bin/a", b"a")])
    b = repo.add("b", "1.0-r0", [d("usr"), d("usr/bin"), f("usr/bin/b", b"b")])
    root = tmp_path / "root"
    _run(root, repo, [(None, a), (None, b)], world="a b")
    _run(root, repo, [(a, None)], world="b")
    assert not (root / "usr/bin/a").exists()
    assert (root / "usr/bin/b").exists()
    assert list(_installed(root)) == ["b"]
    assert parse_world((root / "etc/apk/world").read_bytes()) == (parse("b"),)


def test_file_owned_by_another_package_is_refused(tmp_path: Path, repo: Repo) -> None:
    a = repo.add("a", "1.0-r0", [d("etc"), f("etc/shared", b"a")])
    b = repo.add("b", "1.0-r0", [d("etc"), f("etc/shared", b"b"), f("etc/b", b"b")])
    root = tmp_path / "root"
    _run(root, repo, [(None, a)], world="a")
    before = snapshot(root)
    with pytest.raises(PackageError) as info:
        _run(root, repo, [(None, b)], world="a b")
    assert info.value.message == "b-1.0-r0: trying to overwrite etc/shared owned by a-1.0-r0."
    assert snapshot(root) == before
    # --force-overwrite: a warning, and the file changes hands
    result = _run(root, repo, [(None, b)], world="a b", force_overwrite=True)
    assert result.warnings == ("b-1.0-r0: overwriting etc/shared owned by a-1.0-r0.",)
    assert (root / "etc/shared").read_bytes() == b"b"
    owners = _installed(root)
    assert not owners["a"].owns("etc/shared")  # type: ignore[attr-defined]
    assert owners["b"].owns("etc/shared")  # type: ignore[attr-defined]


def test_replaces_and_same_origin_take_over_silently(tmp_path: Path, repo: Repo) -> None:
    a = repo.add("a", "1.0-r0", [d("etc"), f("etc/one", b"a"), f("etc/two", b"a")])
    b = repo.add("b", "1.0-r0", [d("etc"), f("etc/one", b"b")], replaces=(parse("a"),))
    c = repo.add("c", "1.0-r0", [d("etc"), f("etc/two", b"c")], origin="a")
    root = tmp_path / "root"
    _run(root, repo, [(None, a), (None, b), (None, c)], world="a b c")
    assert (root / "etc/one").read_bytes() == b"b"
    assert (root / "etc/two").read_bytes() == b"c"
    owners = _installed(root)
    assert owners["a"].dirs[0].files == ()  # type: ignore[attr-defined]
    assert "r:a" in (root / "lib/apk/db/installed").read_text()


def test_higher_replaces_priority_keeps_its_file(tmp_path: Path, repo: Repo) -> None:
    a = repo.add(
        "a",
        "1.0-r0",
        [d("etc"), f("etc/one", b"a")],
        replaces=(parse("b"),),
        replaces_priority=10,
    )
    b = repo.add("b", "1.0-r0", [d("etc"), f("etc/one", b"b")], replaces=(parse("a"),))
    root = tmp_path / "root"
    _run(root, repo, [(None, a), (None, b)], world="a b")
    assert (root / "etc/one").read_bytes() == b"a"
    assert _installed(root)["a"].owns("etc/one")  # type: ignore[attr-defined]


HOSTILE = [
    ([d("etc"), f("../escape", b"x")], "'../escape' contains a '..' component"),
    ([f("/etc/passwd", b"x")], "'/etc/passwd' is absolute"),
    ([sym("lnk", "/etc"), f("lnk/passwd", b"x")], "lnk/passwd lies below lnk"),
    ([d("lnk"), f("lnk/passwd", b"x"), sym("lnk", "/etc")], "lnk appears twice"),
    ([f("lnk/passwd", b"x"), sym("lnk", "/etc")], "no directory entry in archive"),
    ([d("a"), f("a/x", b"x"), f("a/x\n", b"y")], "control character"),
    ([d("a"), hard("a/h", "etc/shadow")], "no hard link target"),
]


@pytest.mark.parametrize(("entries", "why"), HOSTILE)
def test_hostile_package_is_refused_whole(
    tmp_path: Path, repo: Repo, entries: list[object], why: str
) -> None:
    good = repo.add("good", "1.0-r0", [d("usr"), f("usr/good", b"g")])
    evil = repo.add("evil", "1.0-r0", entries, raw=True)  # type: ignore[arg-type]
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    before = snapshot(root)
    with pytest.raises(PackageError) as info:
        _run(root, repo, [(None, good), (None, evil)], world="good evil")
    assert info.value.message.startswith("evil-1.0-r0: refusing package")
    assert why in info.value.message
    assert snapshot(root) == before
    assert not (tmp_path / "escape").exists()


def test_device_and_setuid_need_trust(tmp_path: Path, repo: Repo) -> None:
    suid = repo.add("suid", "1.0-r0", [d("bin"), f("bin/su", b"su", 0o4755)])
    root = tmp_path / "root"
    with pytest.raises(PackageError, match="bin/su is setuid/setgid and the package is not"):
        _run(root, repo, [(None, suid)], allow_untrusted=True)
    assert not root.exists()
    _run(root, repo, [(None, suid)])
    assert stat.S_IMODE((root / "bin/su").stat().st_mode) == 0o4755


def test_package_not_matching_the_index_is_refused(tmp_path: Path, repo: Repo) -> None:
    good = repo.add("c", "1.0-r0", [d("usr"), f("usr/c", b"good")])
    # another build of the same name and version, not the one the signed index lists
    other = make_repo(tmp_path / "other").add("c", "1.0-r0", [d("usr"), f("usr/c", b"evil")])
    assert other.checksum != good.checksum
    (repo.arch_dir / "c-1.0-r0.apk").write_bytes(
        (tmp_path / "other/repo/x86_64/c-1.0-r0.apk").read_bytes()
    )
    root = tmp_path / "root"
    with pytest.raises(PackageError, match="BAD checksum"):
        _run(root, repo, [(None, good)])
    assert not root.exists()


def test_per_file_checksum_mismatch_is_refused(tmp_path: Path, repo: Repo) -> None:
    entries = [d("usr"), TarEntry("usr/c", data=b"evil", pax=((CHECKSUM_KEY, "0" * 40),))]
    data_member = gzip_member(write_tar(entries))
    pkginfo = mkinfo("c", "1.0-r0")
    pkginfo = dc_replace(
        pkginfo,
        package=dc_replace(pkginfo.package, installed_size=4),
        datahash=hashlib.sha256(data_member).hexdigest(),
    )
    control = gzip_member(
        write_tar([TarEntry(".PKGINFO", data=format_pkginfo(pkginfo))], end_of_archive=False)
    )
    blob = control + data_member
    pkg = read_package(blob, None, source="c", allow_untrusted=True).package
    repo.arch_dir.mkdir(parents=True, exist_ok=True)
    (repo.arch_dir / "c-1.0-r0.apk").write_bytes(blob)
    root = tmp_path / "root"
    with pytest.raises(PackageError, match="usr/c: file checksum mismatch"):
        _run(root, repo, [(None, pkg)])
    assert not root.exists()


def test_enospc_while_committing_rolls_back(
    tmp_path: Path, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = repo.add("a", "1.0-r0", [d("usr"), f("usr/a", b"1")])
    root = tmp_path / "root"
    _run(root, repo, [(None, a)], world="a")
    a2 = repo.add("a", "2.0-r0", [d("usr"), f("usr/a", b"2"), f("usr/b", b"2"), f("usr/c", b"2")])
    before = snapshot(root)
    real_rename = os.rename
    calls = {"n": 0}

    def failing_rename(src: object, dst: object) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr("alpenglow.apk.commit.os.rename", failing_rename)
    with pytest.raises(CommitError, match="No space left on device; the root was left"):
        _run(root, repo, [(a, a2)], world="a")
    monkeypatch.setattr("alpenglow.apk.commit.os.rename", real_rename)
    assert snapshot(root) == before


def test_enospc_while_staging_leaves_no_trace(
    tmp_path: Path, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = repo.add("a", "1.0-r0", [d("usr"), f("usr/a", b"1" * 100)])
    root = tmp_path / "root"
    root.mkdir()

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("alpenglow.apk.commit.os.write", full)
    with pytest.raises(CommitError, match="No space left on device"):
        _run(root, repo, [(None, a)], world="a")
    assert os.listdir(root) == []


def test_ctrl_c_in_the_middle_rolls_back(
    tmp_path: Path, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = repo.add("a", "1.0-r0", [d("etc"), f("etc/a", b"1"), f("etc/gone", b"1")])
    root = tmp_path / "root"
    _run(root, repo, [(None, a)], world="a")
    a2 = repo.add("a", "2.0-r0", [d("etc"), f("etc/a", b"2"), f("etc/new", b"2")])
    # Old directory times: a rollback that left "now" on a changed directory would show.
    for dirpath, _dirs, _files in os.walk(root):
        os.utime(dirpath, (1_000_000_000, 1_000_000_000))
    before = snapshot(root)
    real_place = commit_mod._Journal.place
    calls = {"n": 0}

    def interrupted(self: object, staged: str, rel: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real_place(self, staged, rel)  # type: ignore[arg-type]

    monkeypatch.setattr(commit_mod._Journal, "place", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(root, repo, [(a, a2)], world="a")
    assert snapshot(root) == before


def test_symlinks_in_the_root_never_lead_outside(tmp_path: Path, repo: Repo) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "usr").symlink_to(str(outside))  # absolute, pointing at the host
    pkg = repo.add("p", "1.0-r0", [d("usr"), d("usr/bin"), f("usr/bin/p", b"p")])
    _run(root, repo, [(None, pkg)])
    assert os.listdir(outside) == []
    # inside the root, /<outside> is where the link leads
    assert (root / str(outside).lstrip("/") / "bin/p").read_bytes() == b"p"


def test_resolve_in_root() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.symlink("/etc", os.path.join(tmp, "abs"))
        os.symlink("../../../..", os.path.join(tmp, "up"))
        os.symlink("loop", os.path.join(tmp, "loop"))
        assert resolve_in_root(tmp, "abs/passwd") == os.path.join(tmp, "etc/passwd")
        assert resolve_in_root(tmp, "up/etc") == os.path.join(tmp, "etc")
        assert resolve_in_root(tmp, "a/../../b") == os.path.join(tmp, "b")
        with pytest.raises(CommitError, match="too many levels"):
            resolve_in_root(tmp, "loop/x")


def test_busybox_links(tmp_path: Path, repo: Repo) -> None:
    bb = repo.add(
        "busybox",
        "1.36.1-r0",
        [
            d("bin"),
            f("bin/busybox", b"\x7fELF", 0o755),
            sym("bin/sh", "/bin/busybox"),
            d("etc"),
            d("etc/busybox-paths.d"),
            f("etc/busybox-paths.d/busybox", b"/bin/sh\n/bin/ls\n/usr/sbin/ip\n/bin/busybox\n"),
        ],
    )
    root = tmp_path / "root"
    _run(root, repo, [(None, bb)])
    assert os.readlink(root / "bin/ls") == "/bin/busybox"
    assert os.readlink(root / "usr/sbin/ip") == "/bin/busybox"
    assert int(os.lstat(root / "usr/sbin/ip").st_mtime) == MTIME
    assert "R:ls" not in (root / "lib/apk/db/installed").read_text()
    _run(tmp_path / "plain", repo, [(None, bb)], busybox_links=False)
    assert not (tmp_path / "plain/bin/ls").exists()


def test_scripts_and_triggers_round_trip() -> None:
    ident = "Q1cbyjZSvA/NcBLMN5Ti0kga0zIno="
    recs = [ScriptRecord(ident, "a-b", "1.0-r2", "post-install", b"#!/bin/sh\n", MTIME)]
    for compress in (False, True):
        data = format_scripts(recs, compress=compress)
        assert parse_scripts(data) == recs
    tar = format_scripts(recs)
    hexid = base64.b64decode(ident[2:]).hex()
    assert tar[:100].rstrip(b"\0") == f"a-b-1.0-r2.X1{hexid}.post-install".encode()
    assert tar[257:265] == b"ustar  \x00"
    assert len(tar) == 2 * 512 + 1024
    assert format_scripts([]) == bytes(1024)
    text = format_triggers([(ident, ("/bin", "+/usr/bin")), ("Q1x", ())])
    assert text == f"{ident} /bin +/usr/bin\n".encode()
    assert parse_triggers(text) == {ident: ("/bin", "+/usr/bin")}


@pytest.mark.skipif(os.geteuid() != 0, reason="running scripts needs root (chroot)")
def test_run_scripts_needs_a_shell_in_the_root(tmp_path: Path, repo: Repo) -> None:
    # a script whose interpreter is missing in the root fails the way apk reports it,
    # and the package is flagged as having a broken script; the files are installed
    pkg = repo.add(
        "s",
        "1.0-r0",
        [d("usr"), f("usr/s", b"s")],
        scripts=[(".post-install", b"#!/bin/sh\ntouch /ran\n")],
    )
    root = tmp_path / "root"
    result = _run(root, repo, [(None, pkg)], run_scripts=True)
    assert result.script_errors == ("lib/apk/exec/s-1.0-r0.post-install: exited with error 127",)
    assert (root / "usr/s").exists()
    assert "f:s" in (root / "lib/apk/db/installed").read_text()


def _etc(version: str, conf: bytes, **extra: bytes) -> list[TarEntry]:
    entries = [d("etc"), f("etc/app.conf", conf)]
    entries += [f(f"etc/{name}", data) for name, data in extra.items()]
    return [*entries, d("usr"), d("usr/share"), f("usr/share/app", version.encode())]


def test_upgrade_keeps_a_locally_changed_config_file(tmp_path: Path, repo: Repo) -> None:
    v1 = repo.add("app", "1.0-r0", _etc("1", b"default 1\n"))
    root = tmp_path / "root"
    _run(root, repo, [(None, v1)], world="app")
    (root / "etc/app.conf").write_bytes(b"my setting\n")
    v2 = repo.add("app", "2.0-r0", _etc("2", b"default 2\n"))
    _run(root, repo, [(v1, v2)], world="app")
    assert (root / "etc/app.conf").read_bytes() == b"my setting\n"
    assert (root / "etc/app.conf.apk-new").read_bytes() == b"default 2\n"
    assert (root / "usr/share/app").read_bytes() == b"2"  # not protected: replaced


def test_upgrade_replaces_an_unchanged_config_file(tmp_path: Path, repo: Repo) -> None:
    v1 = repo.add("app", "1.0-r0", _etc("1", b"default 1\n"))
    root = tmp_path / "root"
    _run(root, repo, [(None, v1)], world="app")
    v2 = repo.add("app", "2.0-r0", _etc("2", b"default 2\n"))
    _run(root, repo, [(v1, v2)], world="app")
    assert (root / "etc/app.conf").read_bytes() == b"default 2\n"
    assert not (root / "etc/app.conf.apk-new").exists()


def test_local_file_equal_to_the_new_one_needs_no_apk_new(tmp_path: Path, repo: Repo) -> None:
    v1 = repo.add("app", "1.0-r0", _etc("1", b"default 1\n"))
    root = tmp_path / "root"
    _run(root, repo, [(None, v1)], world="app")
    (root / "etc/app.conf").write_bytes(b"default 2\n")
    v2 = repo.add("app", "2.0-r0", _etc("2", b"default 2\n"))
    _run(root, repo, [(v1, v2)], world="app")
    assert (root / "etc/app.conf").read_bytes() == b"default 2\n"
    assert not (root / "etc/app.conf.apk-new").exists()


def test_clean_protected_writes_no_apk_new(tmp_path: Path, repo: Repo) -> None:
    v1 = repo.add("app", "1.0-r0", _etc("1", b"default 1\n"))
    root = tmp_path / "root"
    _run(root, repo, [(None, v1)], world="app")
    (root / "etc/app.conf").write_bytes(b"mine\n")
    v2 = repo.add("app", "2.0-r0", _etc("2", b"default 2\n"))
    _run(root, repo, [(v1, v2)], world="app", clean_protected=True)
    assert (root / "etc/app.conf").read_bytes() == b"mine\n"
    assert not (root / "etc/app.conf.apk-new").exists()


def test_unknown_file_in_etc_is_kept_on_first_install(tmp_path: Path, repo: Repo) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/app.conf").write_bytes(b"placed by hand\n")
    v1 = repo.add("app", "1.0-r0", _etc("1", b"default 1\n"))
    _run(root, repo, [(None, v1)], world="app")
    assert (root / "etc/app.conf").read_bytes() == b"placed by hand\n"
    assert (root / "etc/app.conf.apk-new").read_bytes() == b"default 1\n"


def test_protected_paths_d_can_unprotect(tmp_path: Path, repo: Repo) -> None:
    root = tmp_path / "root"
    (root / "etc/apk/protected_paths.d").mkdir(parents=True)
    (root / "etc/apk/protected_paths.d/local.list").write_text("!etc\n")
    (root / "etc/app.conf").write_bytes(b"placed by hand\n")
    v1 = repo.add("app", "1.0-r0", _etc("1", b"default 1\n"))
    _run(root, repo, [(None, v1)], world="app")
    assert (root / "etc/app.conf").read_bytes() == b"default 1\n"
