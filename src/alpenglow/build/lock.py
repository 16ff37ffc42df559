"""Lock files: the exact packages (versions and checksums) a configuration resolved to, per
architecture, so that a later build installs exactly those or fails.

The format is apko's ``apko.lock.json`` (version ``v1``)::

    {
      "version": "v1",
      "config": {"name": "apko.yaml", "checksum": "sha256-..."},
      "contents": {
        "keyring": [{"name": "example.org/key.rsa.pub", "url": "https://example.org/key.rsa.pub"}],
        "build_repositories": [],
        "repositories": [{"name": "dl-cdn.alpinelinux.org/alpine/v3.22/main/x86_64",
                          "url": "https://dl-cdn.../v3.22/main/x86_64/APKINDEX.tar.gz",
                          "architecture": "x86_64"}],
        "packages": [{"name": "busybox", "url": ".../x86_64/busybox-1.36.1-r0.apk",
                      "version": "1.36.1-r0", "architecture": "x86_64",
                      "checksum": "Q1..."}]
      }
    }

``packages`` lists every architecture's packages, each architecture's in installation
order. apko's ``architecture`` is the package's own (``noarch`` for architecture-independent
packages); when that is not the architecture the entry is locked for, alpenglow adds
``image_architecture`` (apko ignores keys it does not know), and reads apko's files by
taking the architecture from the package URL. Each package may also carry
``repository`` (the configuration's repository line it came from) and apko's byte ranges
and checksums of the ``signature``, ``control`` and ``data`` streams.

Pure: bytes in, bytes out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from alpenglow.apk.version import is_valid
from alpenglow.errors import FormatError

if TYPE_CHECKING:
    from alpenglow.apk.index import Package
    from alpenglow.build.config import BuildConfig

__all__ = [
    "LOCK_VERSION",
    "Lock",
    "LockError",
    "LockedKey",
    "LockedPackage",
    "LockedRepository",
    "Span",
    "format_lock",
    "lock_differences",
    "lock_from_build",
    "locked_key",
    "locked_repository",
    "package_url",
    "parse_lock",
]


def __dir__() -> list[str]:
    return __all__


LOCK_VERSION: Final = "v1"
_NOARCH: Final = "noarch"


class LockError(FormatError):
    """A lock file that cannot be read; the message names the file."""


@dataclass(frozen=True, slots=True)
class Span:
    """A byte range of a package file and its checksum, as apko records them
    (``bytes=0-1023``, ``sha1-<base64>``)."""

    range: str
    checksum: str


@dataclass(frozen=True, slots=True)
class LockedPackage:
    """One package locked for one architecture.

    ``arch`` is the image architecture the entry belongs to; ``package_arch`` the package's
    own when it differs (``noarch``), else ``""``. ``checksum`` is the package identity
    (``Q1...``); ``repository`` the configuration's repository line it came from.
    """

    name: str
    version: str
    arch: str
    checksum: str
    url: str = ""
    repository: str = ""
    package_arch: str = ""
    signature: Span | None = None
    control: Span | None = None
    data: Span | None = None


@dataclass(frozen=True, slots=True)
class LockedRepository:
    """A repository for one architecture: ``name`` is its location without scheme or tag,
    ``url`` its index."""

    name: str
    url: str
    arch: str


@dataclass(frozen=True, slots=True)
class LockedKey:
    """A signing key of the keyring: ``name`` is its location without scheme."""

    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Lock:
    """A whole lock file."""

    version: str = LOCK_VERSION
    config_name: str = ""
    config_checksum: str = ""
    keyring: tuple[LockedKey, ...] = ()
    build_repositories: tuple[LockedRepository, ...] = ()
    repositories: tuple[LockedRepository, ...] = ()
    packages: tuple[LockedPackage, ...] = ()

    @property
    def archs(self) -> tuple[str, ...]:
        """The architectures the lock covers, in order of first appearance."""
        seen = [p.arch for p in self.packages]
        seen += [r.arch for r in (*self.repositories, *self.build_repositories)]
        return tuple(dict.fromkeys(seen))

    def packages_for(self, arch: str) -> tuple[LockedPackage, ...]:
        """``arch``'s packages, in installation order."""
        return tuple(p for p in self.packages if p.arch == arch)


# -- building a lock -------------------------------------------------------------------------


def _strip_scheme(url: str) -> str:
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url


def _location(repository: str) -> str:
    """A repository line without its ``@tag``."""
    if repository.startswith("@"):
        return repository.partition(" ")[2].strip()
    return repository.strip()


def locked_repository(repository: str, arch: str) -> LockedRepository:
    """The lock entry of a configuration's repository line for ``arch``.

    >>> locked_repository("@edge https://dl-cdn.alpinelinux.org/alpine/edge/main", "x86_64")
    ... # doctest: +NORMALIZE_WHITESPACE
    LockedRepository(name='dl-cdn.alpinelinux.org/alpine/edge/main/x86_64',
        url='https://dl-cdn.alpinelinux.org/alpine/edge/main/x86_64/APKINDEX.tar.gz',
        arch='x86_64')
    """
    base = f"{_location(repository).rstrip('/')}/{arch}"
    return LockedRepository(_strip_scheme(base), f"{base}/APKINDEX.tar.gz", arch)


def locked_key(key: str) -> LockedKey:
    """The lock entry of a keyring entry (a URL or a local path)."""
    return LockedKey(_strip_scheme(key), key)


def package_url(repository: str, arch: str, name: str, version: str) -> str:
    """Where a package of ``repository`` lives: ``REPO/ARCH/NAME-VERSION.apk``."""
    location = _location(repository)
    if not location:
        return ""
    return f"{location.rstrip('/')}/{arch}/{name}-{version}.apk"


def lock_from_build(
    config: BuildConfig,
    builds: Iterable[tuple[str, Sequence[Package], Mapping[str, str]]],
) -> Lock:
    """The lock of what was installed: for each architecture, its packages (in the order to
    record them) and ``origins``, which maps a package's identity (``C:``, as
    :class:`~alpenglow.build.install.InstallResult` gives it) or its name to the repository
    it was fetched from (a URL or path, with or without ``@tag``). Packages without an origin
    (kept from a base image) get no URL."""
    packages: list[LockedPackage] = []
    repositories: list[LockedRepository] = []
    build_repositories: list[LockedRepository] = []
    for arch, installed, origins in builds:
        for pkg in installed:
            repository = origins.get(pkg.checksum) or origins.get(pkg.name, "")
            packages.append(
                LockedPackage(
                    name=pkg.name,
                    version=pkg.version,
                    arch=arch,
                    checksum=pkg.checksum,
                    url=package_url(repository, arch, pkg.name, pkg.version),
                    repository=repository,
                    package_arch=pkg.arch if pkg.arch and pkg.arch != arch else "",
                )
            )
        repositories += [locked_repository(r, arch) for r in config.repositories]
        build_repositories += [locked_repository(r, arch) for r in config.build_repositories]
    keys = sorted({locked_key(k) for k in config.keyring}, key=lambda k: (k.name, k.url))
    return Lock(
        version=LOCK_VERSION,
        config_name=config.source.name,
        config_checksum=config.checksum,
        keyring=tuple(keys),
        build_repositories=tuple(build_repositories),
        repositories=tuple(repositories),
        packages=tuple(packages),
    )


# -- writing ---------------------------------------------------------------------------------


def _span(span: Span) -> dict[str, str]:
    return {"range": span.range, "checksum": span.checksum}


def _package_json(p: LockedPackage) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": p.name,
        "url": p.url,
        "version": p.version,
        "architecture": p.package_arch or p.arch,
    }
    for key, span in (("signature", p.signature), ("control", p.control), ("data", p.data)):
        if span is not None:
            doc[key] = _span(span)
    doc["checksum"] = p.checksum
    if p.package_arch and p.package_arch != p.arch:
        doc["image_architecture"] = p.arch
    if p.repository:
        doc["repository"] = p.repository
    return doc


def _repository_json(r: LockedRepository) -> dict[str, str]:
    return {"name": r.name, "url": r.url, "architecture": r.arch}


def format_lock(lock: Lock) -> bytes:
    """The lock file's bytes: apko's field order, two-space indentation, a final newline;
    the same lock always gives the same bytes."""
    doc = {
        "version": lock.version,
        "config": {"name": lock.config_name, "checksum": lock.config_checksum},
        "contents": {
            "keyring": [{"name": k.name, "url": k.url} for k in lock.keyring],
            "build_repositories": [_repository_json(r) for r in lock.build_repositories],
            "repositories": [_repository_json(r) for r in lock.repositories],
            "packages": [_package_json(p) for p in lock.packages],
        },
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# -- reading ---------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("known_archs", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.known_archs: set[str] = set()

    def fail(self, where: str, problem: str) -> LockError:
        return LockError(
            f"{self.source}: {where}: {problem}" if where else f"{self.source}: {problem}"
        )

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {_json_type(value)}")
        return value

    def items(self, value: Any, where: str) -> list[Any]:
        if value is None:  # Go writes empty lists as null
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {_json_type(value)}")
        return value

    def text(self, doc: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
        value = doc.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            got = "nothing" if value is None else _json_type(value)
            raise self.fail(f"{where}.{key}", f"expected a non-empty string, got {got}")
        return value

    def span(self, doc: dict[str, Any], key: str, where: str) -> Span | None:
        value = doc.get(key)
        if value is None:
            return None
        obj = self.obj(value, f"{where}.{key}")
        found = Span(
            self.text(obj, "range", f"{where}.{key}", required=False),
            self.text(obj, "checksum", f"{where}.{key}", required=False),
        )
        return found if found.range or found.checksum else None

    def repository(self, value: Any, where: str) -> LockedRepository:
        doc = self.obj(value, where)
        arch = self.text(doc, "architecture", where)
        self.known_archs.add(arch)
        return LockedRepository(self.text(doc, "name", where), self.text(doc, "url", where), arch)

    def package(self, value: Any, where: str) -> LockedPackage:
        doc = self.obj(value, where)
        name = self.text(doc, "name", where)
        version = self.text(doc, "version", where)
        if not is_valid(version):
            raise self.fail(f"{where}.version", f"{version!r} is not an apk version")
        own = self.text(doc, "architecture", where)
        checksum = self.text(doc, "checksum", where, required=False)
        if checksum and not checksum.startswith(("Q1", "Q2")):
            raise self.fail(f"{where}.checksum", f"{checksum!r} is not a package identity (Q1...)")
        url = self.text(doc, "url", where, required=False)
        arch = self.text(doc, "image_architecture", where, required=False) or own
        if arch == _NOARCH:
            arch = self.arch_from_url(url, where, name)
        return LockedPackage(
            name=name,
            version=version,
            arch=arch,
            checksum=checksum,
            url=url,
            repository=self.text(doc, "repository", where, required=False),
            package_arch=own if own != arch else "",
            signature=self.span(doc, "signature", where),
            control=self.span(doc, "control", where),
            data=self.span(doc, "data", where),
        )

    def arch_from_url(self, url: str, where: str, name: str) -> str:
        """apko records noarch packages without the architecture they were locked for; the
        repository layout (``REPO/ARCH/FILE.apk``) tells it."""
        parts = url.rsplit("/", 2)
        if len(parts) == 3 and parts[1] in self.known_archs:
            return parts[1]
        if len(self.known_archs) == 1:
            return next(iter(self.known_archs))
        raise self.fail(
            where, f"cannot tell which architecture the noarch package {name} is locked for"
        )


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def parse_lock(data: bytes | str, source: str) -> Lock:
    """Read a lock file (``source`` names it in errors, which are :class:`LockError`)."""
    try:
        doc = json.loads(data)
    except UnicodeDecodeError:
        raise LockError(f"{source}: not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise LockError(f"{source}:{err.lineno}: invalid JSON: {err.msg}") from None
    reader = _Reader(source)
    top = reader.obj(doc, "")
    version = reader.text(top, "version", "")
    if version != LOCK_VERSION:
        raise reader.fail("version", f"unsupported lock file version {version!r} (expected v1)")
    config = reader.obj(top.get("config") or {}, "config")
    contents = reader.obj(top.get("contents"), "contents")
    keyring = []
    for i, value in enumerate(reader.items(contents.get("keyring"), "contents.keyring")):
        where = f"contents.keyring[{i}]"
        key = reader.obj(value, where)
        keyring.append(LockedKey(reader.text(key, "name", where), reader.text(key, "url", where)))
    repositories = tuple(
        reader.repository(value, f"contents.repositories[{i}]")
        for i, value in enumerate(
            reader.items(contents.get("repositories"), "contents.repositories")
        )
    )
    build_repositories = tuple(
        reader.repository(value, f"contents.build_repositories[{i}]")
        for i, value in enumerate(
            reader.items(contents.get("build_repositories"), "contents.build_repositories")
        )
    )
    raw_packages = reader.items(contents.get("packages"), "contents.packages")
    for value in raw_packages:  # architectures named by the packages themselves
        if isinstance(value, dict):
            for field_name in ("architecture", "image_architecture"):
                named = value.get(field_name)
                if isinstance(named, str) and named not in ("", _NOARCH):
                    reader.known_archs.add(named)
    packages = tuple(
        reader.package(value, f"contents.packages[{i}]") for i, value in enumerate(raw_packages)
    )
    return Lock(
        version=version,
        config_name=reader.text(config, "name", "config", required=False),
        config_checksum=reader.text(config, "checksum", "config", required=False),
        keyring=tuple(keyring),
        build_repositories=build_repositories,
        repositories=repositories,
        packages=packages,
    )


# -- comparing -------------------------------------------------------------------------------


def lock_differences(lock: Lock, arch: str, resolved: Sequence[LockedPackage]) -> list[str]:
    """How what was resolved for ``arch`` differs from the lock, one line per package
    (sorted by name); empty when they agree. A checksum is compared when both sides have
    one."""
    if arch not in lock.archs:
        if not resolved and not lock.packages:
            return []
        return [f"{arch}: the lock file has no packages for this architecture"]
    locked = {p.name: p for p in lock.packages_for(arch)}
    got = {p.name: p for p in resolved}
    lines = []
    for name in sorted(locked.keys() | got.keys()):
        want, have = locked.get(name), got.get(name)
        if have is None:
            assert want is not None
            lines.append(f"{arch}: {name} {want.version} (locked) is not in the resolved set")
        elif want is None:
            lines.append(f"{arch}: {name} {have.version} (resolved) is not in the lock")
        elif want.version != have.version:
            lines.append(f"{arch}: {name} {want.version} (locked) != {have.version} (resolved)")
        elif want.checksum and have.checksum and want.checksum != have.checksum:
            lines.append(
                f"{arch}: {name} {want.version}: checksum {want.checksum} (locked) "
                f"!= {have.checksum} (resolved)"
            )
    return lines
