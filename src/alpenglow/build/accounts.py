"""Users and groups of an image: a configuration's ``accounts`` written into the tree.

What the packages shipped stays (alpine-baselayout's ``/etc/passwd``, ``/etc/group`` and
``/etc/shadow``, with their modes and owners); an entry of the same name is replaced where
it stands, and new entries are appended in the order of the configuration, as apko appends
them. New users get a locked ``/etc/shadow`` entry (``name:!::0:::::``, Alpine's form for
system accounts) unless the file already has one for that name, and a home directory
(``0700``, owned by the user) unless it exists or is ``/dev/null``.

The image's ``User`` is the uid (apko resolves ``run-as`` to the uid the same way);
:func:`resolve_user` does it against the tree's own files.

Pure: works on an in-memory :class:`~alpenglow.oci.tree.Tree`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from alpenglow.build.config import Accounts, ConfigError, Group, User
from alpenglow.oci.tree import DIRECTORY, HARDLINK, REGULAR, Node, Tree, TreeError

__all__ = [
    "GECOS",
    "apply_accounts",
    "group_line",
    "passwd_line",
    "resolve_user",
    "shadow_line",
]


def __dir__() -> list[str]:
    return __all__


PASSWD: Final = "etc/passwd"
GROUP: Final = "etc/group"
SHADOW: Final = "etc/shadow"
GECOS: Final = "Account created by alpenglow"
_NO_HOME: Final = frozenset({"", "/dev/null"})


def passwd_line(user: User) -> str:
    """``name:x:uid:gid:gecos:home:shell``.

    >>> passwd_line(User("nginx", 101, 101, "/sbin/nologin", "/var/lib/nginx"))
    'nginx:x:101:101:Account created by alpenglow:/var/lib/nginx:/sbin/nologin'
    """
    return f"{user.username}:x:{user.uid}:{user.gid}:{GECOS}:{user.homedir}:{user.shell}"


def group_line(group: Group) -> str:
    """``name:x:gid:member,member``.

    >>> group_line(Group("www", 82, ("nginx", "php")))
    'www:x:82:nginx,php'
    """
    return f"{group.groupname}:x:{group.gid}:{','.join(group.members)}"


def shadow_line(user: User) -> str:
    """A locked entry without password aging, as Alpine writes its system accounts."""
    return f"{user.username}:!::0:::::"


def apply_accounts(tree: Tree, accounts: Accounts, *, mtime: int) -> None:
    """Add ``accounts``' groups and users to the tree (files written with ``mtime``).

    Nothing changes when there are neither users nor groups. A home directory that exists
    is left as it is (some are ``/`` or ``/bin``); one that exists and is not a directory is
    an error (:class:`~alpenglow.build.config.ConfigError` naming the user's entry).
    """
    if accounts.groups:
        entries = [(g.groupname, group_line(g)) for g in accounts.groups]
        _merge_file(tree, GROUP, entries, mode=0o644, mtime=mtime, replace=True)
    if not accounts.users:
        return
    entries = [(u.username, passwd_line(u)) for u in accounts.users]
    _merge_file(tree, PASSWD, entries, mode=0o644, mtime=mtime, replace=True)
    entries = [(u.username, shadow_line(u)) for u in accounts.users]
    _merge_file(tree, SHADOW, entries, mode=0o640, mtime=mtime, replace=False)
    for user in accounts.users:
        _make_home(tree, user, mtime)


def resolve_user(tree: Tree, run_as: str | None) -> str:
    """The image configuration's ``User`` for ``run_as``: names become ids looked up in the
    tree's ``/etc/passwd`` (and ``/etc/group`` for ``user:group``); numbers stay as they
    are; None or empty gives ``""`` (root).

    A name the tree does not know is an error: the runtime could not resolve it either.
    """
    if not run_as:
        return ""
    user, colon, group = run_as.partition(":")
    uid = user if user.isdigit() else _lookup(tree, PASSWD, user)
    if uid is None:
        raise ConfigError(f"accounts.run-as: user {user!r} is not in the image's /etc/passwd")
    if not colon:
        return uid
    gid = group if group.isdigit() else _lookup(tree, GROUP, group)
    if gid is None:
        raise ConfigError(f"accounts.run-as: group {group!r} is not in the image's /etc/group")
    return f"{uid}:{gid}"


def _lookup(tree: Tree, path: str, name: str) -> str | None:
    """The id (third field) of ``name`` in a passwd-style file of the tree."""
    try:
        text = tree.read(path).decode("utf-8", "surrogateescape")
    except TreeError:
        return None
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
            return fields[2]
    return None


def _merged(text: str, entries: Sequence[tuple[str, str]], *, replace: bool) -> str:
    """``text``'s lines with ``entries`` (name, line) put in: an existing line for the name
    is replaced in place (or kept, without ``replace``), others are appended."""
    lines = text.splitlines()
    where: dict[str, int] = {}
    for i, line in enumerate(lines):
        name, colon, _ = line.partition(":")
        if colon and name and not name.startswith("#"):
            where.setdefault(name, i)
    for name, line in entries:
        at = where.get(name)
        if at is None:
            where[name] = len(lines)
            lines.append(line)
        elif replace:
            lines[at] = line
    return "".join(line + "\n" for line in lines)


def _merge_file(
    tree: Tree,
    path: str,
    entries: Sequence[tuple[str, str]],
    *,
    mode: int,
    mtime: int,
    replace: bool,
) -> None:
    real = tree.resolve(path)
    node = tree.get(real)
    uid = gid = 0
    text = ""
    if node is None:
        try:
            tree.mkdir(real.rpartition("/")[0], mtime=mtime)
        except TreeError as err:
            raise ConfigError(f"accounts: cannot create /{path}: {err}") from None
    else:
        shown = tree.get(node.target) if node.kind == HARDLINK else node
        if shown is None or shown.kind != REGULAR:
            raise ConfigError(f"accounts: /{path} in the image is a {node.kind}, not a file")
        mode, uid, gid = shown.mode, shown.uid, shown.gid
        text = tree.read(real).decode("utf-8", "surrogateescape")
    data = _merged(text, entries, replace=replace).encode("utf-8", "surrogateescape")
    tree.add(real, Node(REGULAR, mode, uid, gid, mtime, data=data))


def _make_home(tree: Tree, user: User, mtime: int) -> None:
    home = user.homedir
    if home in _NO_HOME:
        return
    label = f"{user.where}: " if user.where else f"accounts.users: {user.username}: "
    try:
        real = tree.resolve(home)
        node = tree.get(real)
        if node is not None:
            if node.kind != DIRECTORY:
                raise ConfigError(f"{label}home directory {home} exists and is a {node.kind}")
            return
        tree.mkdir(real.rpartition("/")[0], 0o755, mtime=mtime)
        tree.add(real, Node(DIRECTORY, 0o700, user.uid, user.gid, mtime))
    except TreeError as err:
        raise ConfigError(f"{label}home directory {home}: {err}") from None
