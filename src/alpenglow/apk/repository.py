"""Repository lines (``/etc/apk/repositories``) and where their indexes live.

apk-tools 3 syntax, line by line: ``#`` comments; ``set [-default] KEY=VALUE`` variables,
expanded as ``${KEY}`` (``APK_ARCH`` is built in); an optional type keyword ``v2``, ``v3`` or
``ndx``; an optional ``@tag``; the URL; optional components (``URL main community`` stands
for ``URL/main`` and ``URL/community``). A URL ending in ``.tar.gz`` or ``.adb`` names the
index file itself; any other URL is a base under which the index is ``ARCH/APKINDEX.tar.gz``.

Local means a plain path or ``file:``; the ``test:`` scheme (apk's own test suite) names a
local file that nevertheless counts as remote, so ``--no-network`` masks it. ``http(s):``
indexes are fetched and cached by :mod:`alpenglow.apk.remote`, which hands the bytes to
:func:`open_index`.

>>> [r.url for r in parse_repositories("@edge test:///tmp/x.tar.gz\\n/srv/main\\n", "x86_64")[0]]
['test:///tmp/x.tar.gz', '/srv/main/x86_64/APKINDEX.tar.gz']
"""

from __future__ import annotations

import hashlib
import os
from functools import cache

from alpenglow._record import record
from alpenglow._typing import TYPE_CHECKING
from alpenglow.errors import AlpenglowError, ArchiveError, FormatError, SignatureError

if TYPE_CHECKING:
    import re

    from alpenglow.apk.index_cache import LoadedIndex

__all__ = [
    "Repository",
    "RepositoryError",
    "cache_file_name",
    "index_location",
    "is_network_url",
    "load_index",
    "open_index",
    "parse_repositories",
    "repository_files",
]


def __dir__() -> list[str]:
    return __all__


@record
class Repository:
    """One repository from a configuration line."""

    url: str
    """URL of the index file (what apk prints in its messages)."""
    base: str
    """URL the packages are fetched relative to."""
    tag: str | None = None
    """Pinning tag without ``@``; None for an untagged repository."""

    @property
    def remote(self) -> bool:
        """Network repository (``test:`` counts as remote, as in apk)."""
        return index_location(self.url) is None or self.url.startswith("test:")

    @property
    def local_path(self) -> str | None:
        """Path of the index file if it can be read without the network."""
        return index_location(self.url)


class RepositoryError(AlpenglowError):
    """An index could not be used; ``reason`` is apk's wording for why."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def is_network_url(url: str) -> bool:
    """``http://`` or ``https://``: an index or package that is downloaded."""
    return url[:8].lower().startswith(("http://", "https://"))


def index_location(url: str) -> str | None:
    """apk's ``apk_url_local_file``: the local path of ``url``, or None for network URLs."""
    if len(url) < 4 or url.startswith("/"):
        return url
    if url.startswith(("file:", "test:")):
        return url[5:]
    head = url[:10]
    colon = head.find(":")
    if colon >= 0 and url[colon + 1 : colon + 3] == "//":
        return None
    return url


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """``${NAME}`` (or ``${NAME:count}``) and a variable name: compiled when a repository
    line needs them (``re`` costs start-up, and most lines have no variables)."""
    import re

    return re.compile(r"\$\{([^}]*)\}"), re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def _is_url(word: str) -> bool:
    return word.startswith("/") or word.find("://") > 0


def parse_repositories(
    text: str,
    arch: str,
    *,
    source: str = "etc/apk/repositories",
    allow_keywords: bool = True,
    variables: dict[str, str] | None = None,
) -> tuple[list[Repository], list[str]]:
    """Parse repository lines; returns the repositories and apk's warnings for bad lines.

    Like apk, parsing stops at the first line it cannot use. ``variables`` carries ``set``
    definitions from one file to the next (pass the same dict).
    """
    env = variables if variables is not None else {}
    env.setdefault("APK_ARCH", arch)
    repos: list[Repository] = []
    warnings: list[str] = []

    def subst(value: str, lineno: int) -> str | None:
        missing: list[str] = []

        def one(m: re.Match[str]) -> str:
            key = m.group(1).split(":", 1)[0]
            if key not in env:
                missing.append(key)
                return ""
            value = env[key]
            if ":" in m.group(1):
                count = m.group(1).split(":", 1)[1]
                if count.isdigit():
                    value = value[: int(count)]
            return value

        if "${" not in value:
            return value
        out = _patterns()[0].sub(one, value)
        if missing:
            warnings.append(f"{source}:{lineno}: undefined variable: {missing[0]}")
            return None
        return out

    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        words = line.split()
        kind = None
        if allow_keywords and not words[0].startswith("@") and not _is_url(words[0]):
            keyword = words[0]
            if keyword == "set":
                rest = line[len("set") :].strip()
                overwrite = True
                while rest.startswith("-"):
                    opt, _, rest = rest.partition(" ")
                    rest = rest.strip()
                    if opt != "-default":
                        warnings.append(f"{source}:{lineno}: invalid option: {opt}")
                        return repos, warnings
                    overwrite = False
                key, eq, value = rest.partition("=")
                if not eq or key.startswith("APK_") or not _patterns()[1].match(key):
                    warnings.append(f"{source}:{lineno}: invalid variable definition: {rest}")
                    return repos, warnings
                expanded = subst(value, lineno)
                if expanded is None:
                    return repos, warnings
                if overwrite or key not in env:
                    env[key] = expanded
                continue
            if keyword not in ("ndx", "v2", "v3"):
                warnings.append(f"{source}:{lineno}: unrecogized keyword: {keyword}")
                return repos, warnings
            kind = keyword
            words = words[1:]
            if not words:
                return repos, warnings
        tag = None
        if words[0].startswith("@"):
            tag = words[0][1:]
            words = words[1:]
            if not words:
                return repos, warnings
        word = words[0]
        if kind is None:
            kind = "ndx" if word.endswith((".adb", ".tar.gz")) else "v2"
        index_file = {"v2": "APKINDEX.tar.gz", "v3": "Packages.adb"}.get(kind)
        url = subst(word, lineno)
        if url is None:
            return repos, warnings
        url = url.rstrip("/")
        if allow_keywords and not _is_url(url):
            warnings.append(f"{source}:{lineno}: invalid url: {url}")
            return repos, warnings
        components = words[1:]
        targets = [url]
        if components:
            expanded_components = subst(" ".join(components), lineno)
            if expanded_components is None:
                return repos, warnings
            targets = [f"{url}/{c}" for c in expanded_components.split()]
        for target in targets:
            repos.append(_component(target, index_file, tag, arch))
    return repos, warnings


def _component(url: str, index_file: str | None, tag: str | None, arch: str) -> Repository:
    if index_file:
        base = url.rstrip("/")
        return Repository(f"{base}/{arch}/{index_file}", base, tag)
    base = url.rsplit("/", 1)[0] if "/" in url else "."
    return Repository(url, base, tag)


def cache_file_name(url: str) -> str:
    """Name of a remote index's copy in the package cache (``APKINDEX.<hash>.tar.gz``)."""
    return f"APKINDEX.{hashlib.sha256(url.encode()).hexdigest()[:8]}.tar.gz"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SignatureError):
        return "BAD signature" if "BAD" in exc.message else "UNTRUSTED signature"
    if isinstance(exc, ArchiveError):
        return "file format is invalid or inconsistent"
    if isinstance(exc, FormatError):
        return "v2 database format error"
    if isinstance(exc, OSError):
        return os.strerror(exc.errno) if exc.errno else str(exc)
    return str(exc)


def load_index(
    path: str | None,
    *,
    url: str,
    keys: object,
    allow_untrusted: bool,
    data: bytes | None = None,
) -> tuple[str, tuple[object, ...]]:
    """Read and verify the index file at ``path`` (the edge: file access happens here), or
    the index bytes ``data`` when given.

    Returns (description, packages). Raises :class:`RepositoryError` whose ``reason`` is
    apk's wording (``No such file or directory``, ``UNTRUSTED signature``...).
    """
    loaded = open_index(path, url=url, keys=keys, allow_untrusted=allow_untrusted, data=data)
    return loaded.archive.description, loaded.archive.packages


def open_index(
    path: str | None,
    *,
    url: str,
    keys: object,
    allow_untrusted: bool,
    cache_dir: str | os.PathLike[str] | None = None,
    data: bytes | None = None,
) -> LoadedIndex:
    """:func:`load_index` through the parsed-index cache in ``cache_dir`` (see
    :mod:`alpenglow.apk.index_cache`; None: no cache), with what the cache knows besides
    the packages. ``data``, when given, is the index itself (e.g. just downloaded) and
    ``path`` is not read. Raises :class:`RepositoryError` like :func:`load_index`.
    """
    from alpenglow.apk.index_cache import load_index_cached
    from alpenglow.apk.signing import Keyring

    try:
        if data is None:
            if path is None:
                raise ValueError("open_index needs a path or the data")
            with open(path, "rb") as fh:
                data = fh.read()
        keyring = keys if isinstance(keys, Keyring) else None
        return load_index_cached(
            data, keyring, source=url, allow_untrusted=allow_untrusted, directory=cache_dir
        )
    except (OSError, AlpenglowError) as exc:
        raise RepositoryError(f"{url}: {exc}", _reason(exc)) from None


def repository_files(root: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``etc/apk/repositories`` then ``*.list`` of both ``repositories.d`` (etc/ wins)."""
    base = os.fspath(root)
    files = [("etc/apk/repositories", os.path.join(base, "etc/apk/repositories"))]
    found: dict[str, str] = {}
    for sub in ("lib/apk/repositories.d", "etc/apk/repositories.d"):
        try:
            names = sorted(os.listdir(os.path.join(base, sub)))
        except OSError:
            continue
        for name in names:
            if not name.startswith(".") and name.endswith(".list"):
                found[name] = os.path.join(base, sub, name)
    files += [(name, found[name]) for name in sorted(found)]
    return files
