"""Accounts merged onto an image tree that holds alpine-baselayout-like account files."""

from __future__ import annotations

import pytest

from alpenglow.build import accounts as accounts_module
from alpenglow.build.accounts import apply_accounts, resolve_user
from alpenglow.build.config import Accounts, ConfigError, Group, User
from alpenglow.oci.tree import DIRECTORY, HARDLINK, REGULAR, Node, Tree
from tests.support.alpine_repo import GROUP, PASSWD, _shadow

EPOCH = 1_700_000_000


def baselayout() -> Tree:
    tree = Tree()
    tree.mkdir("etc", mtime=5)
    tree.write("etc/passwd", PASSWD.encode(), 0o644, mtime=5)
    tree.write("etc/group", GROUP.encode(), 0o644, mtime=5)
    tree.write("etc/shadow", _shadow().encode(), 0o640, gid=42, mtime=5)
    tree.mkdir("home", mtime=5)
    tree.mkdir("root", 0o700, mtime=5)
    return tree


NGINX = Accounts(
    groups=(Group("nginx", 10000), Group("www-data", 82, ("nginx",))),
    users=(User("nginx", 10000, 10000, "/bin/sh", "/home/nginx"),),
    run_as="nginx",
)


def lines(tree: Tree, path: str) -> list[str]:
    return tree.read(path).decode().splitlines()


def test_accounts_are_merged_onto_the_packages_files() -> None:
    tree = baselayout()
    apply_accounts(tree, NGINX, mtime=EPOCH)

    passwd = lines(tree, "etc/passwd")
    assert passwd[:-1] == PASSWD.splitlines()  # what the package shipped, in its order
    assert passwd[-1] == "nginx:x:10000:10000:Account created by alpenglow:/home/nginx:/bin/sh"

    group = lines(tree, "etc/group")
    base = GROUP.splitlines()
    www = base.index("www-data:x:82:")
    assert group[www] == "www-data:x:82:nginx"  # same name: replaced where it stood
    assert group[:www] == base[:www]
    assert group[www + 1 : -1] == base[www + 1 :]
    assert group[-1] == "nginx:x:10000:"

    shadow = lines(tree, "etc/shadow")
    assert shadow[:-1] == _shadow().splitlines()
    assert shadow[-1] == "nginx:!::0:::::"

    # modes and owners stay the package's; the files get the build's mtime
    assert tree["etc/shadow"] == Node(REGULAR, 0o640, 0, 42, EPOCH, data=tree.read("etc/shadow"))
    assert tree["etc/passwd"].mode == 0o644
    assert tree["etc/passwd"].mtime == EPOCH

    home = tree["home/nginx"]
    assert (home.kind, home.mode, home.uid, home.gid, home.mtime) == (
        DIRECTORY,
        0o700,
        10000,
        10000,
        EPOCH,
    )
    assert tree["home"].mtime == 5  # an existing parent is left alone


def test_same_name_user_is_replaced_and_its_shadow_entry_kept() -> None:
    tree = baselayout()
    accounts = Accounts(users=(User("nobody", 65534, 65534, "/bin/sh", "/"),))
    apply_accounts(tree, accounts, mtime=EPOCH)
    passwd = lines(tree, "etc/passwd")
    assert len(passwd) == len(PASSWD.splitlines())
    assert passwd[-1] == "nobody:x:65534:65534:Account created by alpenglow:/:/bin/sh"
    assert lines(tree, "etc/shadow") == _shadow().splitlines()
    assert tree[""].kind == DIRECTORY  # "/" exists: untouched


def test_applying_twice_changes_nothing_more() -> None:
    once = baselayout()
    apply_accounts(once, NGINX, mtime=EPOCH)
    twice = baselayout()
    apply_accounts(twice, NGINX, mtime=EPOCH)
    apply_accounts(twice, NGINX, mtime=EPOCH)
    assert list(once.walk()) == list(twice.walk())


def test_nothing_to_do_leaves_the_tree_alone() -> None:
    tree = baselayout()
    before = list(tree.walk())
    apply_accounts(tree, Accounts(run_as="65534"), mtime=EPOCH)
    assert list(tree.walk()) == before


def test_files_are_created_when_no_package_shipped_them() -> None:
    tree = Tree()
    accounts = Accounts(
        groups=(Group("app", 1000, ("app",)),),
        users=(User("app", 1000, 1000, "/sbin/nologin", "/var/lib/app"),),
    )
    apply_accounts(tree, accounts, mtime=EPOCH)
    assert tree.read("etc/passwd") == (
        b"app:x:1000:1000:Account created by alpenglow:/var/lib/app:/sbin/nologin\n"
    )
    assert tree.read("etc/group") == b"app:x:1000:app\n"
    assert tree.read("etc/shadow") == b"app:!::0:::::\n"
    assert (tree["etc/shadow"].mode, tree["etc/passwd"].mode) == (0o640, 0o644)
    assert tree["etc"].kind == DIRECTORY
    assert (tree["var/lib"].mode, tree["var/lib"].uid) == (0o755, 0)
    assert (tree["var/lib/app"].mode, tree["var/lib/app"].uid) == (0o700, 1000)


def test_homeless_user_gets_no_directory() -> None:
    tree = baselayout()
    apply_accounts(
        tree, Accounts(users=(User("svc", 500, 500, "/bin/false", "/dev/null"),)), mtime=1
    )
    assert "dev" not in tree


def test_home_through_a_symlink() -> None:
    tree = baselayout()
    tree.mkdir("srv/homes")
    tree.remove("home")
    tree.symlink("srv/homes", "home")
    apply_accounts(tree, NGINX, mtime=EPOCH)
    assert tree["srv/homes/nginx"].uid == 10000


def test_home_that_is_a_file_is_an_error() -> None:
    tree = baselayout()
    tree.write("home/nginx", b"")
    user = User(
        "nginx", 10000, 10000, "/bin/sh", "/home/nginx", where="apko.yaml:9: accounts.users[0]"
    )
    with pytest.raises(ConfigError) as info:
        apply_accounts(tree, Accounts(users=(user,)), mtime=EPOCH)
    assert str(info.value) == (
        "apko.yaml:9: accounts.users[0]: home directory /home/nginx exists and is a file"
    )


def test_passwd_that_is_a_directory_is_an_error() -> None:
    tree = Tree()
    tree.mkdir("etc/passwd")
    with pytest.raises(ConfigError, match=r"/etc/passwd in the image is a dir, not a file"):
        apply_accounts(tree, NGINX, mtime=EPOCH)


def test_hard_linked_account_file() -> None:
    tree = baselayout()
    tree.write("usr/share/passwd.orig", PASSWD.encode(), 0o600, uid=3)
    tree.remove("etc/passwd")
    tree.add("etc/passwd", Node(HARDLINK, 0o600, target="usr/share/passwd.orig"))
    apply_accounts(tree, NGINX, mtime=EPOCH)
    node = tree["etc/passwd"]
    assert (node.kind, node.mode, node.uid) == (REGULAR, 0o600, 3)
    assert lines(tree, "etc/passwd")[-1].startswith("nginx:x:10000:")


@pytest.mark.parametrize(
    ("run_as", "user"),
    [
        (None, ""),
        ("", ""),
        ("nginx", "10000"),
        ("65532", "65532"),
        ("root", "0"),
        ("nobody", "65534"),
        ("nginx:www-data", "10000:82"),
        ("nginx:0", "10000:0"),
        ("1000:1000", "1000:1000"),
    ],
)
def test_resolve_user_gives_ids(run_as: str | None, user: str) -> None:
    tree = baselayout()
    apply_accounts(tree, NGINX, mtime=EPOCH)
    assert resolve_user(tree, run_as) == user


def test_resolve_user_unknown_names() -> None:
    tree = baselayout()
    with pytest.raises(ConfigError, match=r"user 'ghost' is not in the image's /etc/passwd"):
        resolve_user(tree, "ghost")
    with pytest.raises(ConfigError, match=r"group 'ghosts' is not in the image's /etc/group"):
        resolve_user(tree, "nobody:ghosts")
    with pytest.raises(ConfigError, match=r"user 'root' is not in the image's /etc/passwd"):
        resolve_user(Tree(), "root")


def test_exports() -> None:
    assert set(dir(accounts_module)) == set(accounts_module.__all__)
