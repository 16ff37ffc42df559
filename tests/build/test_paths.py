"""apko path mutations and local files applied to an image tree."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from alpenglow.build import paths as paths_module
from alpenglow.build.config import ConfigError, FileSpec, PathSpec, load_config
from alpenglow.build.paths import apply_files, apply_paths
from alpenglow.oci.tree import DIRECTORY, HARDLINK, REGULAR, SYMLINK, Node, Tree

EPOCH = 1_700_000_000


def image() -> Tree:
    """A merged-/usr layout: /bin and /sbin are links into /usr."""
    tree = Tree()
    tree.mkdir("usr/bin", mtime=5)
    tree.mkdir("usr/sbin", mtime=5)
    tree.symlink("usr/bin", "bin", mtime=5)
    tree.symlink("/usr/sbin", "sbin", mtime=5)
    tree.write("usr/bin/busybox", b"\x7fELF", 0o755, mtime=5)
    tree.mkdir("etc/nginx", mtime=5)
    tree.write("etc/nginx/nginx.conf", b"conf", 0o644, mtime=5)
    tree.mkdir("usr/share/nginx", mtime=5)
    tree.write("usr/share/nginx/default.conf", b"server {}", 0o640, uid=7, mtime=5)
    return tree


def kinds(tree: Tree, path: str) -> tuple[str, int, int, int]:
    node = tree[path]
    return node.kind, node.mode, node.uid, node.gid


# -- paths -----------------------------------------------------------------------------------


def test_directory_is_created_with_parents() -> None:
    tree = image()
    apply_paths(tree, [PathSpec("/run/nginx/tmp", "directory", 101, 102, 0o750)], mtime=EPOCH)
    assert kinds(tree, "run") == (DIRECTORY, 0o755, 0, 0)
    assert kinds(tree, "run/nginx") == (DIRECTORY, 0o755, 0, 0)
    assert kinds(tree, "run/nginx/tmp") == (DIRECTORY, 0o750, 101, 102)
    assert tree["run/nginx/tmp"].mtime == EPOCH


def test_directory_defaults_and_existing_directories() -> None:
    tree = image()
    apply_paths(
        tree,
        [PathSpec("/srv", "directory"), PathSpec("/etc/nginx", "directory", uid=101)],
        mtime=EPOCH,
    )
    assert kinds(tree, "srv") == (DIRECTORY, 0o755, 0, 0)
    assert kinds(tree, "etc/nginx") == (DIRECTORY, 0o755, 101, 0)  # mode kept
    assert tree["etc/nginx"].mtime == 5


def test_directory_recursive_changes_everything_below() -> None:
    tree = image()
    tree.mkdir("etc/nginx/conf.d")
    tree.write("etc/nginx/conf.d/a.conf", b"a")
    tree.symlink("../nginx.conf", "etc/nginx/conf.d/link")
    spec = PathSpec("/etc/nginx", "directory", 101, 102, 0o750, recursive=True)
    apply_paths(tree, [spec], mtime=EPOCH)
    for path in (
        "etc/nginx",
        "etc/nginx/conf.d",
        "etc/nginx/nginx.conf",
        "etc/nginx/conf.d/a.conf",
    ):
        assert kinds(tree, path)[1:] == (0o750, 101, 102), path
    assert kinds(tree, "etc/nginx/conf.d/link") == (SYMLINK, 0o777, 101, 102)
    assert kinds(tree, "etc") == (DIRECTORY, 0o755, 0, 0)


def test_directory_through_a_symlink() -> None:
    tree = image()
    apply_paths(tree, [PathSpec("/bin/extra", "directory", permissions=0o700)], mtime=EPOCH)
    assert kinds(tree, "usr/bin/extra") == (DIRECTORY, 0o700, 0, 0)
    assert tree["bin"].kind == SYMLINK
    apply_paths(tree, [PathSpec("/sbin", "directory", uid=3)], mtime=EPOCH)
    assert kinds(tree, "usr/sbin") == (DIRECTORY, 0o755, 3, 0)  # mkdir -p follows the link


def test_empty_file_creates_or_truncates() -> None:
    tree = image()
    apply_paths(
        tree,
        [
            PathSpec("/var/log/nginx/access.log", "empty-file", 101, 101),
            PathSpec("/etc/nginx/nginx.conf", "empty-file"),
            PathSpec("/usr/share/nginx/default.conf", "empty-file", permissions=0o600),
        ],
        mtime=EPOCH,
    )
    assert kinds(tree, "var/log/nginx/access.log") == (REGULAR, 0o644, 101, 101)
    assert tree.read("var/log/nginx/access.log") == b""
    assert kinds(tree, "var/log/nginx") == (DIRECTORY, 0o755, 0, 0)
    assert tree.read("etc/nginx/nginx.conf") == b""
    assert kinds(tree, "etc/nginx/nginx.conf") == (REGULAR, 0o644, 0, 0)
    assert kinds(tree, "usr/share/nginx/default.conf") == (REGULAR, 0o600, 7, 0)
    assert tree["etc/nginx/nginx.conf"].mtime == EPOCH


def test_empty_file_follows_a_symlink_like_open() -> None:
    tree = image()
    tree.symlink("nginx.conf", "etc/nginx/current.conf")
    apply_paths(tree, [PathSpec("/etc/nginx/current.conf", "empty-file")], mtime=EPOCH)
    assert tree["etc/nginx/current.conf"].kind == SYMLINK
    assert tree.read("etc/nginx/nginx.conf") == b""


def test_symlink_is_made_and_replaces_a_file() -> None:
    tree = image()
    apply_paths(
        tree,
        [
            PathSpec("/bin/sh", "symlink", source="busybox"),
            PathSpec(
                "/etc/nginx/nginx.conf", "symlink", 0, 3, source="/usr/share/nginx/default.conf"
            ),
        ],
        mtime=EPOCH,
    )
    assert tree["usr/bin/sh"] == Node(SYMLINK, 0o777, mtime=EPOCH, target="busybox")
    assert kinds(tree, "etc/nginx/nginx.conf") == (SYMLINK, 0o777, 0, 3)
    assert tree.read("etc/nginx/nginx.conf") == b"server {}"


def test_symlink_replaces_the_link_itself() -> None:
    tree = image()
    apply_paths(tree, [PathSpec("/bin", "symlink", source="/usr/sbin")], mtime=EPOCH)
    assert tree["bin"].target == "/usr/sbin"
    assert tree["usr/bin"].kind == DIRECTORY


def test_hardlink_shares_the_file_and_its_metadata() -> None:
    tree = image()
    spec = PathSpec(
        "/etc/nginx/http.d/default.conf",
        "hardlink",
        101,
        102,
        0o644,
        source="/usr/share/nginx/default.conf",
    )
    apply_paths(tree, [spec], mtime=EPOCH)
    link = tree["etc/nginx/http.d/default.conf"]
    assert (link.kind, link.target) == (HARDLINK, "usr/share/nginx/default.conf")
    assert kinds(tree, "usr/share/nginx/default.conf") == (REGULAR, 0o644, 101, 102)
    assert tree.read("etc/nginx/http.d/default.conf") == b"server {}"


def test_hardlink_replaces_a_file_and_resolves_its_source() -> None:
    tree = image()
    tree.add("usr/bin/ash", Node(HARDLINK, 0o755, target="usr/bin/busybox"))
    apply_paths(tree, [PathSpec("/bin/sh", "hardlink", source="/bin/ash")], mtime=EPOCH)
    assert tree["usr/bin/sh"].target == "usr/bin/busybox"
    apply_paths(
        tree, [PathSpec("/etc/nginx/nginx.conf", "hardlink", source="/bin/busybox")], mtime=EPOCH
    )
    assert tree.read("etc/nginx/nginx.conf") == b"\x7fELF"
    assert kinds(tree, "usr/bin/busybox")[1] == 0o755  # no permissions given: unchanged


def test_permissions() -> None:
    tree = image()
    apply_paths(
        tree,
        [
            PathSpec("/usr/bin/busybox", "permissions", permissions=0o4755),
            PathSpec("/bin/busybox", "permissions", gid=9),  # through the /bin link
            PathSpec("/usr/share", "permissions", 5, 6, 0o700, recursive=True),
        ],
        mtime=EPOCH,
    )
    assert kinds(tree, "usr/bin/busybox") == (REGULAR, 0o4755, 0, 9)
    assert tree["usr/bin/busybox"].mtime == 5  # chmod does not touch the mtime
    for path in ("usr/share", "usr/share/nginx", "usr/share/nginx/default.conf"):
        assert kinds(tree, path)[1:] == (0o700, 5, 6)
    assert kinds(tree, "usr") == (DIRECTORY, 0o755, 0, 0)


def test_permissions_of_a_hard_link_change_its_file() -> None:
    tree = image()
    tree.add("usr/bin/ash", Node(HARDLINK, 0o755, target="usr/bin/busybox"))
    apply_paths(tree, [PathSpec("/usr/bin/ash", "permissions", permissions=0o555)], mtime=EPOCH)
    assert tree["usr/bin/busybox"].mode == 0o555


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (PathSpec("/nowhere", "permissions", uid=1), "/nowhere: does not exist"),
        (PathSpec("/etc/nginx/nginx.conf", "directory"), "exists and is a file, not a directory"),
        (PathSpec("/etc/nginx/nginx.conf/x", "directory"), "is not a directory"),
        (PathSpec("/etc", "empty-file"), "/etc: exists and is a directory"),
        (PathSpec("/etc", "symlink", source="x"), "/etc: exists and is a directory"),
        (PathSpec("/x", "hardlink", source="/nope"), "source /nope does not exist"),
        (PathSpec("/x", "hardlink", source="/etc"), "source /etc is a dir, not a file"),
        (
            PathSpec("/usr/bin/busybox", "hardlink", source="/bin/busybox"),
            "is the hard link's source /bin/busybox itself",
        ),
    ],
)
def test_path_errors_name_the_entry(spec: PathSpec, problem: str) -> None:
    from dataclasses import replace

    spec = replace(spec, where="apko.yaml:12: paths[3]")
    with pytest.raises(ConfigError) as info:
        apply_paths(image(), [spec], mtime=EPOCH)
    message = str(info.value)
    assert message.startswith("apko.yaml:12: paths[3]: "), message
    assert problem in message


def test_paths_from_a_configuration(tmp_path: Path) -> None:
    (tmp_path / "apko.yaml").write_text(
        "paths:\n"
        "  - {path: /run/nginx, type: directory, uid: 101, gid: 101, permissions: 0o755}\n"
        "  - {path: /etc/nginx/d.conf, type: hardlink, source: /usr/share/nginx/default.conf}\n"
        "  - {path: /x, type: permissions, uid: 1}\n"
    )
    cfg = load_config(tmp_path / "apko.yaml")
    tree = image()
    with pytest.raises(ConfigError) as info:
        apply_paths(tree, cfg.paths, mtime=EPOCH)
    assert str(info.value) == f"{tmp_path / 'apko.yaml'}:4: paths[2]: /x: does not exist"
    assert kinds(tree, "run/nginx") == (DIRECTORY, 0o755, 101, 101)


# -- files -----------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> Path:
    """A local directory with a file, an executable, a subdirectory and symlinks."""
    root = tmp_path / "app"
    (root / "conf.d").mkdir(parents=True)
    (root / "app.conf").write_text("listen 80\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "conf.d" / "a.conf").write_text("a\n")
    (root / "conf.d").chmod(0o750)
    (root / "current").symlink_to("app.conf")
    (root / "everything").symlink_to("conf.d")  # a link to a directory stays a link
    return root


def test_directory_is_copied_with_links_kept(local: Path) -> None:
    tree = image()
    apply_files(tree, [FileSpec(local, "/opt/app", 1000, 1001)], mtime=EPOCH)
    assert [p for p, _ in tree.walk("opt")] == [
        "opt",
        "opt/app",
        "opt/app/app.conf",
        "opt/app/conf.d",
        "opt/app/conf.d/a.conf",
        "opt/app/current",
        "opt/app/everything",
        "opt/app/run.sh",
    ]
    assert kinds(tree, "opt") == (DIRECTORY, 0o755, 0, 0)
    assert kinds(tree, "opt/app")[1:] == (local.stat().st_mode & 0o777, 1000, 1001)
    assert kinds(tree, "opt/app/conf.d") == (DIRECTORY, 0o750, 1000, 1001)
    assert kinds(tree, "opt/app/run.sh") == (REGULAR, 0o755, 1000, 1001)
    assert kinds(tree, "opt/app/app.conf")[:2] == (
        REGULAR,
        (local / "app.conf").stat().st_mode & 0o777,
    )
    assert tree.read("opt/app/conf.d/a.conf") == b"a\n"
    assert tree["opt/app/current"] == Node(SYMLINK, 0o777, 1000, 1001, EPOCH, target="app.conf")
    assert tree["opt/app/everything"].target == "conf.d"
    assert all(node.mtime == EPOCH for _, node in tree.walk("opt"))


def test_directory_merges_into_existing_directories_through_links(tmp_path: Path) -> None:
    src = tmp_path / "overlay"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_bytes(b"tool")
    (src / "etc" / "nginx").mkdir(parents=True)
    (src / "etc" / "nginx" / "nginx.conf").write_bytes(b"mine")
    tree = image()
    apply_files(tree, [FileSpec(src, "/", mode=0o600)], mtime=EPOCH)
    assert tree.read("usr/bin/tool") == b"tool"  # /bin is a link to usr/bin
    assert tree["bin"].kind == SYMLINK
    assert tree.read("etc/nginx/nginx.conf") == b"mine"
    assert kinds(tree, "etc/nginx/nginx.conf") == (REGULAR, 0o600, 0, 0)
    assert tree["etc/nginx"].mtime == 5  # existing directories keep their metadata


def test_single_file(local: Path) -> None:
    tree = image()
    apply_files(
        tree,
        [
            FileSpec(local / "run.sh", "/usr/local/bin/run", 0, 0, 0o700),
            FileSpec(local / "app.conf", "/etc/nginx/"),
            FileSpec(local / "current", "/etc/current.conf"),  # a named link is followed
        ],
        mtime=EPOCH,
    )
    assert kinds(tree, "usr/local/bin/run") == (REGULAR, 0o700, 0, 0)
    assert kinds(tree, "usr/local") == (DIRECTORY, 0o755, 0, 0)
    assert tree.read("etc/nginx/app.conf") == b"listen 80\n"
    assert tree["etc/current.conf"].kind == REGULAR
    assert tree.read("etc/current.conf") == b"listen 80\n"


def test_file_replaces_a_file_but_not_a_directory(local: Path) -> None:
    tree = image()
    apply_files(tree, [FileSpec(local / "app.conf", "/etc/nginx/nginx.conf")], mtime=EPOCH)
    assert tree.read("etc/nginx/nginx.conf") == b"listen 80\n"
    spec = FileSpec(local / "app.conf", "/etc/nginx", where="apko.yaml:3: files[0]")
    with pytest.raises(ConfigError) as info:
        apply_files(tree, [spec], mtime=EPOCH)
    assert str(info.value) == (
        "apko.yaml:3: files[0]: /etc/nginx is a directory in the image; "
        "end the destination with / to copy the file into it"
    )


def test_missing_source_names_the_local_path(tmp_path: Path) -> None:
    spec = FileSpec(tmp_path / "gone", "/x", where="apko.yaml:7: files[1]")
    with pytest.raises(ConfigError) as info:
        apply_files(Tree(), [spec], mtime=EPOCH)
    assert (
        str(info.value) == f"apko.yaml:7: files[1]: {tmp_path / 'gone'}: No such file or directory"
    )


def test_special_files_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "dir"
    src.mkdir()
    os.mkfifo(src / "pipe")
    with pytest.raises(
        ConfigError, match=r"files\[0\]: .*/dir/pipe: a named pipe cannot be copied"
    ):
        apply_files(Tree(), [FileSpec(src, "/x")], mtime=EPOCH)
    with pytest.raises(ConfigError, match=r"/dev/null: a device file cannot be copied"):
        apply_files(Tree(), [FileSpec(Path("/dev/null"), "/x")], mtime=EPOCH)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s"))
        with pytest.raises(ConfigError, match=r"a socket cannot be copied"):
            apply_files(Tree(), [FileSpec(tmp_path / "s", "/x")], mtime=EPOCH)
    finally:
        sock.close()


def test_unreadable_file_names_the_local_path(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0)
    with pytest.raises(ConfigError, match=r"secret: Permission denied"):
        apply_files(Tree(), [FileSpec(secret, "/x")], mtime=EPOCH)


def test_directory_over_a_file_is_an_error(local: Path) -> None:
    tree = image()
    tree.write("opt/app/conf.d", b"in the way")
    with pytest.raises(ConfigError, match=r"files\[0\]: /opt/app: .*conf.d: exists and is a file"):
        apply_files(tree, [FileSpec(local, "/opt/app")], mtime=EPOCH)


def test_exports() -> None:
    assert set(dir(paths_module)) == set(paths_module.__all__)
