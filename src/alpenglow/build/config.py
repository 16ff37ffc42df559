"""Image configuration: an apko YAML file (plus alpenglow's ``base:`` and ``files:``) turned
into a :class:`BuildConfig`.

The format is apko's (``contents``, ``entrypoint``, ``cmd``, ``stop-signal``, ``work-dir``,
``accounts``, ``environment``, ``paths``, ``archs``, ``annotations``, ``include``,
``volumes``, ``vcs-url``, ``layering``), so users can bring their files. Two keys go beyond
apko: ``base`` (an image reference to build on top of) and ``files`` (local files or
directories copied in with an owner and a mode).

Every value is checked here, once, with its place in the file: a mistake is reported as one
line ``FILE:LINE: key.path: problem``. The YAML is composed into nodes (which carry their
line) and read by hand; nothing is taken on trust from a generic loader.

``include`` merges the way apko merges: the included file is the base and the including
file overlays it (lists are concatenated, base first; mappings are merged, the including
file's keys winning; single values come from the including file when it sets them).
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import re
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn, TypeVar, cast

from alpenglow.apk import dependency
from alpenglow.errors import AlpenglowError, InvalidDependency
from alpenglow.oci.platform import ALL_ARCHES

if TYPE_CHECKING:
    from yaml import MappingNode, Node, ScalarNode

__all__ = [
    "PATH_TYPES",
    "Accounts",
    "BuildConfig",
    "ConfigError",
    "FileSpec",
    "Group",
    "PathSpec",
    "User",
    "load_config",
    "normalize_arch",
]


def __dir__() -> list[str]:
    return __all__


class ConfigError(AlpenglowError):
    """An image configuration that cannot be used; the message is one line
    ``FILE:LINE: key.path: problem`` whenever the place is known."""


# apko's and OCI's spellings of the Alpine architectures (alpenglow.oci.platform knows the
# Alpine names and their platforms; apko also writes "arm/v7" and "386").
_ARCH_ALIASES: Final = {
    "386": "x86",
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "x86": "x86",
    "amd64": "x86_64",
    "x86_64": "x86_64",
    "arm64": "aarch64",
    "arm64/v8": "aarch64",
    "aarch64": "aarch64",
    "arm/v6": "armhf",
    "armv6": "armhf",
    "armhf": "armhf",
    "arm/v7": "armv7",
    "armv7": "armv7",
    "armv7l": "armv7",
    "loong64": "loongarch64",
    "loongarch64": "loongarch64",
    "ppc64le": "ppc64le",
    "riscv64": "riscv64",
    "s390x": "s390x",
}


def normalize_arch(name: str) -> str | None:
    """The Alpine name of an architecture written the apko/OCI way, or None if unknown.

    >>> normalize_arch("amd64"), normalize_arch("arm/v7"), normalize_arch("386")
    ('x86_64', 'armv7', 'x86')
    """
    return _ARCH_ALIASES.get(name.strip().lower())


_DIRECTORY: Final = "directory"
_EMPTY_FILE: Final = "empty-file"
_HARDLINK: Final = "hardlink"
_SYMLINK: Final = "symlink"
_PERMISSIONS: Final = "permissions"
PATH_TYPES: Final = (_DIRECTORY, _EMPTY_FILE, _HARDLINK, _SYMLINK, _PERMISSIONS)


@dataclass(frozen=True, slots=True)
class Group:
    """A group written to ``/etc/group`` (``groupname:x:gid:members``)."""

    groupname: str
    gid: int
    members: tuple[str, ...] = ()
    where: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class User:
    """A user written to ``/etc/passwd``; apko's defaults are filled in by the loader
    (``gid`` = ``uid``, ``shell`` ``/bin/sh``, ``homedir`` ``/home/USERNAME``)."""

    username: str
    uid: int
    gid: int
    shell: str = "/bin/sh"
    homedir: str = ""
    where: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Accounts:
    """``accounts``: groups and users to add, and the user the container runs as (a name,
    a uid, or ``user:group``; None leaves the image's ``User`` empty, that is root)."""

    groups: tuple[Group, ...] = ()
    users: tuple[User, ...] = ()
    run_as: str | None = None


@dataclass(frozen=True, slots=True)
class PathSpec:
    """One ``paths`` entry (apko's path mutation).

    ``path`` is absolute and normalized. ``uid``/``gid``/``permissions`` are None when not
    given: an existing entry keeps its value, a new one gets ``0``/``0``/the type's default
    (``0o755`` for directories, ``0o644`` for empty files, the source's mode for hard
    links). ``source`` is the link target for ``symlink`` (stored as written) and the
    linked file for ``hardlink`` (an absolute path in the image).
    """

    path: str
    type: str
    uid: int | None = None
    gid: int | None = None
    permissions: int | None = None
    source: str | None = None
    recursive: bool = False
    where: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One ``files`` entry: a local file or directory copied into the image.

    ``source`` is absolute (relative paths were resolved against the configuration file's
    directory). ``destination`` is absolute; a trailing ``/`` means "into this directory"
    for a file source. ``mode`` (None: the file's own permission bits) applies to regular
    files; directories keep their own bits. Everything copied is owned by ``uid:gid``.
    """

    source: Path
    destination: str
    uid: int = 0
    gid: int = 0
    mode: int | None = None
    where: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class BuildConfig:
    """A loaded, checked and merged image configuration.

    ``checksum`` is apko's configuration checksum (``sha256-`` and the base64 SHA-256 of
    the bytes of the file and of every included file, in reading order), as the lock file
    records it. ``entrypoint`` is empty and ``cmd`` None when the file does not set them;
    ``archs`` is empty when it names none (the caller chooses the default).
    """

    source: Path
    checksum: str = ""
    repositories: tuple[str, ...] = ()
    build_repositories: tuple[str, ...] = ()
    runtime_repositories: tuple[str, ...] = ()
    keyring: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    stop_signal: str | None = None
    work_dir: str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    accounts: Accounts = Accounts()
    paths: tuple[PathSpec, ...] = ()
    files: tuple[FileSpec, ...] = ()
    archs: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    volumes: tuple[str, ...] = ()
    vcs_url: str | None = None
    base: str | None = None
    includes: tuple[Path, ...] = ()


# -- loading ---------------------------------------------------------------------------------


def load_config(path: Path) -> BuildConfig:
    """Read, check and merge the configuration at ``path`` (and what it includes).

    Raises :class:`ConfigError` naming the file, the line and the key path of the first
    problem found.
    """
    read: list[bytes] = []
    includes: list[Path] = []
    partial = _load_file(Path(path), None, [], read, includes)
    checksum = hashlib.sha256(b"".join(read)).digest()
    return _finish(Path(path), partial, "sha256-" + base64.b64encode(checksum).decode(), includes)


def _load_file(
    path: Path,
    included_from: tuple[str, Node] | None,
    stack: list[Path],
    read: list[bytes],
    includes: list[Path],
) -> _Partial:
    import yaml

    display = str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        reason = err.strerror or str(err)
        if included_from is None:
            raise ConfigError(f"{display}: cannot read the configuration: {reason}") from None
        where, node = included_from
        raise ConfigError(f"{where}:{_line(node)}: include: {display}: {reason}") from None
    read.append(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{display}:{line}: the file is not UTF-8 text") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = err.problem or err.context or "malformed YAML"
        raise ConfigError(f"{display}:{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{display}: invalid YAML: {err}") from None
    reader = _Reader(display, path.absolute().parent)
    partial = reader.read(root)
    if partial.include is None:
        return partial
    name, node = partial.include
    # Shown (and read) relative to the including file as the user named it.
    target = path.parent / Path(name).expanduser()
    identity = target.resolve()
    if identity in stack or identity == path.resolve():
        chain = " -> ".join(p.name for p in [*stack, path.resolve(), identity])
        reader.fail(node, "include", f"include cycle: {chain}")
    includes.append(target)
    base = _load_file(target, (display, node), [*stack, path.resolve()], read, includes)
    return _merge(base, partial)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


@dataclass(slots=True)
class _Partial:
    """What one file says, checked but not yet merged with what it includes."""

    include: tuple[str, Node] | None = None
    repositories: list[str] = field(default_factory=list)
    build_repositories: list[str] = field(default_factory=list)
    runtime_repositories: list[str] = field(default_factory=list)
    keyring: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    stop_signal: str | None = None
    work_dir: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    run_as: tuple[str, str, Node] | None = None  # value, file, node (checked after merging)
    paths: list[PathSpec] = field(default_factory=list)
    files: list[FileSpec] = field(default_factory=list)
    archs: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    vcs_url: str | None = None
    base: str | None = None


def _merge(base: _Partial, top: _Partial) -> _Partial:
    """apko's MergeInto: ``base`` is the included file, ``top`` the including one."""
    return _Partial(
        include=None,
        repositories=base.repositories + top.repositories,
        build_repositories=base.build_repositories + top.build_repositories,
        runtime_repositories=base.runtime_repositories + top.runtime_repositories,
        keyring=base.keyring + top.keyring,
        packages=base.packages + top.packages,
        entrypoint=top.entrypoint if top.entrypoint is not None else base.entrypoint,
        cmd=top.cmd if top.cmd is not None else base.cmd,
        stop_signal=top.stop_signal or base.stop_signal,
        work_dir=top.work_dir or base.work_dir,
        environment={**base.environment, **top.environment},
        groups=base.groups + top.groups,
        users=base.users + top.users,
        run_as=top.run_as or base.run_as,
        paths=base.paths + top.paths,
        files=base.files + top.files,
        archs=top.archs or base.archs,
        annotations={**base.annotations, **top.annotations},
        volumes=base.volumes + top.volumes,
        vcs_url=top.vcs_url or base.vcs_url,
        base=top.base or base.base,
    )


_Named = TypeVar("_Named", User, Group)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _last_wins(items: Sequence[_Named], key: str) -> tuple[_Named, ...]:
    """Later definitions of the same name replace earlier ones, in the earlier one's place."""
    out: dict[str, _Named] = {}
    for item in items:
        out[getattr(item, key)] = item
    return tuple(out.values())


def _finish(source: Path, partial: _Partial, checksum: str, includes: list[Path]) -> BuildConfig:
    users = _last_wins(partial.users, "username")
    groups = _last_wins(partial.groups, "groupname")
    run_as: str | None = None
    if partial.run_as is not None:
        run_as, display, node = partial.run_as
        problem = _check_run_as(run_as, users, groups)
        if problem:
            raise ConfigError(f"{display}:{_line(node)}: accounts.run-as: {problem}")
    return BuildConfig(
        source=source,
        checksum=checksum,
        repositories=_unique(partial.repositories),
        build_repositories=_unique(partial.build_repositories),
        runtime_repositories=_unique(partial.runtime_repositories),
        keyring=_unique(partial.keyring),
        packages=_unique(partial.packages),
        entrypoint=partial.entrypoint or (),
        cmd=partial.cmd,
        stop_signal=partial.stop_signal,
        work_dir=partial.work_dir,
        environment=tuple(partial.environment.items()),
        accounts=Accounts(groups=groups, users=users, run_as=run_as),
        paths=tuple(partial.paths),
        files=tuple(partial.files),
        archs=_unique(partial.archs),
        annotations=tuple(partial.annotations.items()),
        volumes=_unique(partial.volumes),
        vcs_url=partial.vcs_url,
        base=partial.base,
        includes=tuple(includes),
    )


def _check_run_as(run_as: str, users: Sequence[User], groups: Sequence[Group]) -> str | None:
    user, colon, group = run_as.partition(":")
    names = {u.username for u in users} | {"root"}
    if not user or (not user.isdigit() and user not in names):
        return (
            f"{user!r} is not a user declared under accounts.users; "
            "give a declared username or a numeric uid"
        )
    if colon:
        group_names = {g.groupname for g in groups} | {"root"}
        if not group or (not group.isdigit() and group not in group_names):
            return (
                f"group {group!r} is not declared under accounts.groups; "
                "give a declared group name or a numeric gid"
            )
    return None


# -- reading one file's nodes ----------------------------------------------------------------

_INT: Final = "tag:yaml.org,2002:int"
_BOOL: Final = "tag:yaml.org,2002:bool"
_NULL: Final = "tag:yaml.org,2002:null"
_STR: Final = "tag:yaml.org,2002:str"
_MAX_ID: Final = 2**32 - 2

_TOP_KEYS: Final = (
    "contents",
    "entrypoint",
    "cmd",
    "stop-signal",
    "work-dir",
    "accounts",
    "archs",
    "environment",
    "paths",
    "annotations",
    "include",
    "volumes",
    "vcs-url",
    "layering",
    "base",
    "files",
)
_UNSUPPORTED_TOP: Final = {
    "os-release": "is not supported (it was removed from apko); ship /etc/os-release in a "
    "package or with files:",
    "certificates": "is not supported; install ca-certificates, or add PEM files with files:",
}
_CONTENTS_KEYS: Final = (
    "repositories",
    "build_repositories",
    "runtime_repositories",
    "keyring",
    "packages",
)
_UNSUPPORTED_CONTENTS: Final = {
    "baseimage": "is not supported; use the top-level base: key with an image reference",
    "runtime_keyring": "is not supported; add the keys with files: under /etc/apk/keys",
}
_ENTRYPOINT_KEYS: Final = ("command", "shell-fragment", "type", "services")
_ACCOUNTS_KEYS: Final = ("users", "groups", "run-as")
_USER_KEYS: Final = ("username", "uid", "gid", "shell", "homedir")
_GROUP_KEYS: Final = ("groupname", "gid", "members")
_PATH_KEYS: Final = ("path", "type", "uid", "gid", "permissions", "source", "recursive")
_FILE_KEYS: Final = ("source", "destination", "uid", "gid", "mode")
_LAYERING_KEYS: Final = ("strategy", "budget")

# fmt: off
_SIGNALS: Final = frozenset((
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
    "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
))
# fmt: on
_RT_SIGNAL: Final = re.compile(
    r"RTMIN(\+([0-9]|[12][0-9]|3[0-2]))?|RTMAX(-([0-9]|[12][0-9]|3[0-2]))?"
)
_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
_OCTAL_TEXT: Final = re.compile(r"(?:0o|0)?([0-7]+)")


def _kind(node: Node) -> str:
    """``"scalar"``, ``"sequence"`` or ``"mapping"``."""
    return str(getattr(node, "id", ""))


def _describe(node: Node) -> str:
    if _kind(node) == "mapping":
        return "a mapping"
    if _kind(node) == "sequence":
        return "a list"
    return {
        _INT: "a number",
        "tag:yaml.org,2002:float": "a number",
        _BOOL: "true/false",
        _NULL: "nothing",
    }.get(node.tag, "a string")


class _Reader:
    """Reads one file's node tree into a :class:`_Partial`, failing at the first problem."""

    __slots__ = ("_constructor", "directory", "file")

    def __init__(self, file: str, directory: Path) -> None:
        from yaml.constructor import SafeConstructor

        self.file = file
        self.directory = directory
        self._constructor = SafeConstructor()

    # -- primitives --------------------------------------------------------------------------

    def fail(self, node: Node, key: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.file}:{_line(node)}: {key}: {problem}")

    def where(self, node: Node, key: str) -> str:
        return f"{self.file}:{_line(node)}: {key}"

    @staticmethod
    def is_null(node: Node) -> bool:
        return bool(_kind(node) == "scalar" and node.tag == _NULL)

    def mapping(
        self,
        node: Node,
        key: str,
        known: Sequence[str],
        unsupported: dict[str, str] | None = None,
    ) -> Iterator[tuple[str, Node, Node]]:
        """``(name, key node, value node)`` for each entry, refusing unknown and repeated
        keys; a null value counts as an empty mapping."""
        if self.is_null(node):
            return
        if _kind(node) != "mapping":
            self.fail(node, key or "(top level)", f"expected a mapping, got {_describe(node)}")
        from yaml.constructor import SafeConstructor

        seen: dict[str, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            name = self.key_name(key_node, key)
            if name in seen:
                self.fail(
                    key_node, _join(key, name), f"repeated key (first at line {_line(seen[name])})"
                )
            seen[name] = key_node
        from yaml import MarkedYAMLError

        try:
            SafeConstructor.flatten_mapping(self._constructor, cast("MappingNode", node))
        except MarkedYAMLError as err:
            self.fail(node, key or "(top level)", f"bad merge key (<<): {err.problem}")
        for key_node, value_node in node.value:
            name = self.key_name(key_node, key)
            full = _join(key, name)
            if unsupported and name in unsupported:
                self.fail(key_node, full, unsupported[name])
            if name not in known:
                candidates = [*known, *(unsupported or {})]
                close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail(key_node, full, f"unknown key{hint}")
            yield name, key_node, value_node

    def key_name(self, key_node: Node, key: str) -> str:
        if _kind(key_node) != "scalar" or key_node.tag == _NULL:
            self.fail(
                key_node, key or "(top level)", f"a key must be a name, not {_describe(key_node)}"
            )
        return str(key_node.value)

    def sequence(self, node: Node, key: str) -> list[Node]:
        if self.is_null(node):
            return []
        if _kind(node) != "sequence":
            self.fail(node, key, f"expected a list, got {_describe(node)}")
        return list(node.value)

    def text(self, node: Node, key: str, *, null: str | None = None) -> str:
        """A scalar's text as written (numbers and booleans are taken as text, as apko's
        string fields take them); a null gives ``null`` or fails."""
        if _kind(node) != "scalar":
            self.fail(node, key, f"expected a string, got {_describe(node)}")
        if node.tag == _NULL:
            if null is None:
                self.fail(node, key, "a value is required")
            return null
        return str(node.value)

    def word(self, node: Node, key: str) -> str:
        value = self.text(node, key).strip()
        if not value:
            self.fail(node, key, "must not be empty")
        return value

    def integer(self, node: Node, key: str, low: int = 0, high: int = _MAX_ID) -> int:
        if _kind(node) != "scalar" or node.tag != _INT:
            self.fail(node, key, f"expected a whole number, got {_describe(node)}")
        value = int(self._constructor.construct_yaml_int(cast("ScalarNode", node)))
        if not low <= value <= high:
            self.fail(node, key, f"{value} is out of range ({low} to {high})")
        return value

    def boolean(self, node: Node, key: str) -> bool:
        if _kind(node) != "scalar" or node.tag != _BOOL:
            self.fail(node, key, f"expected true or false, got {_describe(node)}")
        return bool(self._constructor.construct_yaml_bool(cast("ScalarNode", node)))

    def mode(self, node: Node, key: str) -> int:
        """Permission bits: ``0o755``, ``0755`` or ``"755"`` (octal) or ``493`` (decimal)."""
        if _kind(node) == "scalar" and node.tag == _INT:
            raw = str(node.value).replace("_", "")
            value = int(self._constructor.construct_yaml_int(cast("ScalarNode", node)))
            if raw.isdigit() and not raw.startswith("0") and value > 0o777:
                self.fail(
                    node,
                    key,
                    f"{raw} is read as a decimal number ({value:#o}); "
                    f"write 0o{raw} for an octal mode",
                )
        elif _kind(node) == "scalar" and node.tag == _STR:
            match = _OCTAL_TEXT.fullmatch(str(node.value).strip())
            if match is None:
                self.fail(node, key, f"{node.value!r} is not an octal mode like 0o755")
            value = int(match.group(1), 8)
        else:
            self.fail(node, key, f"expected a mode like 0o755, got {_describe(node)}")
        if not 0 <= value <= 0o7777:
            self.fail(node, key, f"{value:#o} is not a permission mode (0 to 0o7777)")
        return value

    def image_path(self, node: Node, key: str) -> str:
        """An absolute, normalized path inside the image; ``..`` is refused."""
        text = self.word(node, key)
        parts = [p for p in text.split("/") if p not in ("", ".")]
        if ".." in parts:
            self.fail(node, key, f"{text}: '..' is not allowed in a path inside the image")
        if "\0" in text or "\n" in text:
            self.fail(node, key, f"{text!r}: a path cannot hold NUL or newline characters")
        return "/" + "/".join(parts)

    def local_path(self, text: str) -> Path:
        return self.directory / Path(text).expanduser()

    def command(self, node: Node, key: str) -> tuple[str, ...]:
        """A command: a string split like a shell would (apko's rule), or a list."""
        if _kind(node) == "sequence":
            return tuple(self.text(item, f"{key}[{i}]") for i, item in enumerate(node.value))
        text = self.text(node, key)
        try:
            return tuple(shlex.split(text))
        except ValueError as err:
            self.fail(node, key, f"cannot split {text!r} into words: {err}")

    def string_map(self, node: Node, key: str) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.is_null(node):
            return out
        if _kind(node) != "mapping":
            self.fail(node, key, f"expected a mapping, got {_describe(node)}")
        names = [self.key_name(k, key) for k, _ in node.value]
        for name, (key_node, value_node) in zip(names, node.value, strict=True):
            full = _join(key, name)
            if not name.strip() or "=" in name or "\0" in name:
                self.fail(key_node, full, f"{name!r} is not a usable name")
            if name in out:
                self.fail(key_node, full, "repeated key")
            out[name] = self.text(value_node, full, null="")
        return out

    # -- the sections ------------------------------------------------------------------------

    def read(self, root: Node | None) -> _Partial:
        partial = _Partial()
        if root is None:
            return partial
        for name, _, value in self.mapping(root, "", _TOP_KEYS, _UNSUPPORTED_TOP):
            if name == "contents":
                self.contents(value, partial)
            elif name == "entrypoint":
                partial.entrypoint = self.entrypoint(value)
            elif name == "cmd":
                partial.cmd = None if self.is_null(value) else self.command(value, "cmd")
            elif name == "stop-signal":
                partial.stop_signal = self.stop_signal(value)
            elif name == "work-dir":
                partial.work_dir = self.work_dir(value)
            elif name == "accounts":
                self.accounts(value, partial)
            elif name == "archs":
                partial.archs = self.archs(value)
            elif name == "environment":
                partial.environment = self.string_map(value, "environment")
            elif name == "annotations":
                partial.annotations = self.string_map(value, "annotations")
            elif name == "paths":
                partial.paths = [
                    self.path_spec(item, f"paths[{i}]")
                    for i, item in enumerate(self.sequence(value, "paths"))
                ]
            elif name == "files":
                partial.files = [
                    self.file_spec(item, f"files[{i}]")
                    for i, item in enumerate(self.sequence(value, "files"))
                ]
            elif name == "include":
                if not self.is_null(value):
                    partial.include = (self.word(value, "include"), value)
            elif name == "volumes":
                partial.volumes = [
                    self.image_path(item, f"volumes[{i}]")
                    for i, item in enumerate(self.sequence(value, "volumes"))
                ]
            elif name == "vcs-url":
                partial.vcs_url = self.text(value, "vcs-url", null="") or None
            elif name == "layering":
                self.layering(value)
            else:
                assert name == "base", name
                partial.base = self.image_reference(value)
        return partial

    def contents(self, node: Node, partial: _Partial) -> None:
        for name, _, value in self.mapping(node, "contents", _CONTENTS_KEYS, _UNSUPPORTED_CONTENTS):
            key = f"contents.{name}"
            items = self.sequence(value, key)
            if name == "packages":
                partial.packages = [
                    self.package(item, f"{key}[{i}]") for i, item in enumerate(items)
                ]
            elif name == "keyring":
                partial.keyring = [self.key(item, f"{key}[{i}]") for i, item in enumerate(items)]
            else:
                lines = [self.repository(item, f"{key}[{i}]") for i, item in enumerate(items)]
                setattr(partial, name, lines)

    def package(self, node: Node, key: str) -> str:
        atom = self.word(node, key)
        try:
            dependency.parse(atom)
        except InvalidDependency as err:
            self.fail(
                node,
                key,
                f"{atom!r} is not a package atom: {err.reason} (column {err.position + 1})",
            )
        return atom

    def repository(self, node: Node, key: str) -> str:
        """A repository line: ``URL``, ``PATH`` or ``@tag URL-or-PATH``; a relative local path
        is made absolute against this file's directory."""
        line = self.word(node, key)
        tag = ""
        location = line
        if line.startswith("@"):
            tag, _, location = line.partition(" ")
            location = location.strip()
            if len(tag) < 2 or not _NAME.fullmatch(tag[1:]):
                self.fail(node, key, f"{line!r}: a tagged repository is written '@tag URL'")
            if not location:
                self.fail(node, key, f"{line!r}: the tag {tag} has no repository after it")
        if any(ch.isspace() for ch in location):
            self.fail(node, key, f"{line!r}: one repository per list item")
        location = location.rstrip("/") or location
        if "://" in location:
            scheme = location.partition("://")[0].lower()
            if scheme not in ("http", "https", "file"):
                self.fail(node, key, f"{location!r}: only http, https and file URLs are supported")
        else:
            location = str(self.local_path(location))
        return f"{tag} {location}" if tag else location

    def key(self, node: Node, key: str) -> str:
        """A keyring entry: an http(s) URL, or a local public key file (made absolute)."""
        text = self.word(node, key)
        if text.startswith(("http://", "https://")):
            return text
        if "://" in text:
            self.fail(node, key, f"{text!r}: keys are local files or http(s) URLs")
        local = self.local_path(text)
        if not local.is_file():
            self.fail(node, key, f"{text}: no such key file ({local})")
        return str(local)

    def entrypoint(self, node: Node) -> tuple[str, ...] | None:
        command: tuple[str, ...] | None = None
        fragment: str | None = None
        for name, key_node, value in self.mapping(node, "entrypoint", _ENTRYPOINT_KEYS):
            key = f"entrypoint.{name}"
            if name == "command":
                command = self.command(value, key) if not self.is_null(value) else None
            elif name == "shell-fragment":
                fragment = self.text(value, key, null="") or None
            elif name == "type":
                kind = self.text(value, key, null="")
                if kind:
                    self.fail(
                        value,
                        key,
                        f"entrypoint type {kind!r} (s6 service bundles) is not supported",
                    )
            else:
                if self.is_null(value) or (_kind(value) == "mapping" and not value.value):
                    continue
                self.fail(key_node, key, "s6 service bundles are not supported; use command:")
        if command is not None and fragment is not None:
            self.fail(node, "entrypoint", "give either command or shell-fragment, not both")
        if fragment is not None:
            return ("/bin/sh", "-c", fragment)
        return command

    def stop_signal(self, node: Node) -> str | None:
        text = self.text(node, "stop-signal", null="").strip()
        if not text:
            return None
        if text.isdigit():
            if not 1 <= int(text) <= 64:
                self.fail(node, "stop-signal", f"{text} is not a signal number (1 to 64)")
            return text
        name = text.upper()
        bare = name.removeprefix("SIG")
        if bare not in _SIGNALS and not _RT_SIGNAL.fullmatch(bare):
            close = difflib.get_close_matches(bare, sorted(_SIGNALS), n=1)
            hint = f" (did you mean SIG{close[0]}?)" if close else ""
            self.fail(node, "stop-signal", f"{text!r} is not a signal name like SIGTERM{hint}")
        return "SIG" + bare

    def work_dir(self, node: Node) -> str | None:
        text = self.text(node, "work-dir", null="").strip()
        if not text:
            return None
        if not text.startswith("/"):
            self.fail(node, "work-dir", f"{text!r}: the working directory must be an absolute path")
        return self.image_path(node, "work-dir")

    def archs(self, node: Node) -> list[str]:
        out: list[str] = []
        for i, item in enumerate(self.sequence(node, "archs")):
            text = self.word(item, f"archs[{i}]")
            if text.lower() == "all":
                out.extend(ALL_ARCHES)
                continue
            arch = normalize_arch(text)
            if arch is None:
                known = ", ".join(
                    sorted({*ALL_ARCHES, "amd64", "arm64", "386", "arm/v6", "arm/v7"})
                )
                self.fail(item, f"archs[{i}]", f"unknown architecture {text!r} (known: {known})")
            out.append(arch)
        return out

    def accounts(self, node: Node, partial: _Partial) -> None:
        for name, _, value in self.mapping(node, "accounts", _ACCOUNTS_KEYS):
            key = f"accounts.{name}"
            if name == "users":
                partial.users = [
                    self.user(item, f"{key}[{i}]")
                    for i, item in enumerate(self.sequence(value, key))
                ]
            elif name == "groups":
                partial.groups = [
                    self.group(item, f"{key}[{i}]")
                    for i, item in enumerate(self.sequence(value, key))
                ]
            else:
                text = self.text(value, key, null="").strip()
                partial.run_as = (text, self.file, value) if text else None

    def account_name(self, node: Node, key: str) -> str:
        name = self.word(node, key)
        if not _NAME.fullmatch(name):
            self.fail(node, key, f"{name!r} is not a usable account name")
        return name

    def account_field(self, node: Node, key: str) -> str:
        text = self.word(node, key)
        if ":" in text or "\n" in text:
            self.fail(node, key, f"{text!r}: ':' and newlines cannot appear in /etc/passwd fields")
        return text

    def user(self, node: Node, key: str) -> User:
        values = {name: value for name, _, value in self.mapping(node, key, _USER_KEYS)}
        if "username" not in values:
            self.fail(node, key, "a user needs a username")
        if "uid" not in values:
            self.fail(node, key, "a user needs a uid")
        username = self.account_name(values["username"], f"{key}.username")
        uid = self.integer(values["uid"], f"{key}.uid")
        if uid == 0:
            self.fail(values["uid"], f"{key}.uid", "uid 0 is root; to run as root use run-as: 0")
        gid = self.integer(values["gid"], f"{key}.gid") if "gid" in values else uid
        shell = (
            self.account_field(values["shell"], f"{key}.shell") if "shell" in values else "/bin/sh"
        )
        home = (
            self.account_field(values["homedir"], f"{key}.homedir")
            if "homedir" in values
            else f"/home/{username}"
        )
        if home != "/dev/null" and ".." in home.split("/"):
            self.fail(values["homedir"], f"{key}.homedir", f"{home}: '..' is not allowed")
        return User(username, uid, gid, shell, home, where=self.where(node, key))

    def group(self, node: Node, key: str) -> Group:
        values = {name: value for name, _, value in self.mapping(node, key, _GROUP_KEYS)}
        if "groupname" not in values:
            self.fail(node, key, "a group needs a groupname")
        if "gid" not in values:
            self.fail(node, key, "a group needs a gid")
        name = self.account_name(values["groupname"], f"{key}.groupname")
        gid = self.integer(values["gid"], f"{key}.gid")
        members: list[str] = []
        if "members" in values:
            mkey = f"{key}.members"
            for i, item in enumerate(self.sequence(values["members"], mkey)):
                members.append(self.account_name(item, f"{mkey}[{i}]"))
        return Group(name, gid, tuple(members), where=self.where(node, key))

    def path_spec(self, node: Node, key: str) -> PathSpec:
        values = {name: value for name, _, value in self.mapping(node, key, _PATH_KEYS)}
        for required in ("path", "type"):
            if required not in values:
                self.fail(node, key, f"a path entry needs {required}:")
        path = self.image_path(values["path"], f"{key}.path")
        kind = self.word(values["type"], f"{key}.type")
        if kind not in PATH_TYPES:
            close = difflib.get_close_matches(kind, PATH_TYPES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(
                values["type"],
                f"{key}.type",
                f"unknown type {kind!r}{hint}; one of {', '.join(PATH_TYPES)}",
            )
        uid = self.integer(values["uid"], f"{key}.uid") if "uid" in values else None
        gid = self.integer(values["gid"], f"{key}.gid") if "gid" in values else None
        perms = (
            self.mode(values["permissions"], f"{key}.permissions")
            if "permissions" in values
            else None
        )
        recursive = (
            self.boolean(values["recursive"], f"{key}.recursive")
            if "recursive" in values
            else False
        )
        source: str | None = None
        if kind in (_HARDLINK, _SYMLINK):
            if "source" not in values:
                self.fail(node, key, f"a {kind} needs a source: (what it points at)")
            if kind == _HARDLINK:
                source = self.image_path(values["source"], f"{key}.source")
            else:
                source = self.word(values["source"], f"{key}.source")
                if "\0" in source or "\n" in source:
                    self.fail(values["source"], f"{key}.source", f"{source!r} is not a link target")
        elif "source" in values:
            self.fail(
                values["source"],
                f"{key}.source",
                f"source is only used by hardlink and symlink, not {kind}",
            )
        if recursive and kind not in (_DIRECTORY, _PERMISSIONS):
            self.fail(
                values["recursive"],
                f"{key}.recursive",
                f"recursive applies to directory and permissions, not {kind}",
            )
        if kind == _SYMLINK and perms not in (None, 0o777):
            self.fail(
                values["permissions"],
                f"{key}.permissions",
                "a symlink has no permissions of its own",
            )
        if kind == _PERMISSIONS and perms is None and uid is None and gid is None:
            self.fail(node, key, "a permissions entry needs permissions:, uid: or gid:")
        return PathSpec(path, kind, uid, gid, perms, source, recursive, where=self.where(node, key))

    def file_spec(self, node: Node, key: str) -> FileSpec:
        values = {name: value for name, _, value in self.mapping(node, key, _FILE_KEYS)}
        for required in ("source", "destination"):
            if required not in values:
                self.fail(node, key, f"a files entry needs {required}:")
        text = self.word(values["source"], f"{key}.source")
        source = self.local_path(text).absolute()
        if not source.exists():
            self.fail(
                values["source"], f"{key}.source", f"{text}: no such file or directory ({source})"
            )
        raw_destination = self.word(values["destination"], f"{key}.destination")
        destination = self.image_path(values["destination"], f"{key}.destination")
        if raw_destination.endswith("/") and destination != "/":
            destination += "/"
        uid = self.integer(values["uid"], f"{key}.uid") if "uid" in values else 0
        gid = self.integer(values["gid"], f"{key}.gid") if "gid" in values else 0
        mode = self.mode(values["mode"], f"{key}.mode") if "mode" in values else None
        return FileSpec(source, destination, uid, gid, mode, where=self.where(node, key))

    def layering(self, node: Node) -> None:
        """apko's layering hint is checked and then not used: alpenglow writes one layer,
        which holds the same files."""
        for name, _, value in self.mapping(node, "layering", _LAYERING_KEYS):
            if name == "strategy":
                strategy = self.text(value, "layering.strategy", null="")
                if strategy not in ("", "origin"):
                    self.fail(
                        value,
                        "layering.strategy",
                        f"unknown strategy {strategy!r} (apko knows 'origin')",
                    )
            else:
                self.integer(value, "layering.budget")

    def image_reference(self, node: Node) -> str | None:
        text = self.text(node, "base", null="").strip()
        if not text:
            return None
        if any(ch.isspace() for ch in text):
            self.fail(node, "base", f"{text!r} is not an image reference")
        return text


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
