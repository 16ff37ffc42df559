"""The package universe of one apk run, in apk's order: the solver's :class:`Provider`.

apk keeps every package it reads (installed database, cached ``installed`` index,
repositories) in one table keyed by identity, and every name in one hash table. The orders
that come out of those tables decide ties in the solver, so :class:`Pool` reproduces them:

* a name's providers are listed in the order their packages were first added;
* a package that two sources list (installed and in a repository) is one candidate whose
  repository mask has a bit per listing repository;
* reverse-dependency lists follow apk's name hash table (murmur3 of the name, 20000
  buckets, newest first within a bucket), which is the order apk builds them in.

Building is done by the edge code (:mod:`alpenglow.cli.apk._session`) in apk's order:
:meth:`Pool.note_world`, :meth:`Pool.add_installed`, :meth:`Pool.add_cached`,
:meth:`Pool.add_repository` for each repository, then :meth:`Pool.finish`. Packages added
after that (``add --virtual``) are appended like apk's late additions.
"""

from __future__ import annotations

import gc
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from itertools import count
from operator import attrgetter

from alpenglow._record import fields_of, record, replace
from alpenglow._typing import TYPE_CHECKING
from alpenglow.apk.index_table import SKIPPED, IndexTable
from alpenglow.apk.solver import Candidate, identity_key
from alpenglow.apk.version import CHECKSUM, is_valid

if TYPE_CHECKING:
    from alpenglow.apk.dependency import Dependency
    from alpenglow.apk.index import Package

__all__ = [
    "HASH_BUCKETS",
    "Compat",
    "Pool",
    "RepoInfo",
    "bucket_of",
    "murmur3_32",
    "name_hash",
    "normalize_index_package",
    "remember_buckets",
]


def __dir__() -> list[str]:
    return __all__


HASH_BUCKETS = 20000
"""Bucket count of apk's name hash table (``apk_hash_init(&db->available.names, ..., 20000)``)."""


def name_hash(name: str) -> int:
    """apk's ``apk_blob_hash``: 32-bit murmur3 of the UTF-8 bytes with seed 5381."""
    return murmur3_32(name.encode("utf-8", "surrogateescape"), 5381)


_BUCKETS: dict[str, int] = {}
_name_of = attrgetter("name")


def bucket_of(name: str) -> int:
    """The bucket of ``name`` in apk's name hash table (memoised)."""
    bucket = _BUCKETS.get(name)
    if bucket is None:
        bucket = _BUCKETS[name] = name_hash(name) % HASH_BUCKETS
    return bucket


def remember_buckets(names: Iterable[str], buckets: Iterable[int]) -> None:
    """Seed :func:`bucket_of` with buckets computed before (the index cache keeps them)."""
    _BUCKETS.update(zip(names, buckets, strict=True))


def murmur3_32(data: bytes, seed: int) -> int:
    """MurmurHash3 (x86, 32-bit).

    >>> hex(murmur3_32(b"hello", 0))
    '0x248bfa47'
    """
    length = len(data)
    h = seed
    c1 = 0xCC9E2D51
    c2 = 0x1B873593
    mask = 0xFFFFFFFF
    nblocks = length // 4
    if nblocks:
        for block in struct.unpack_from(f"<{nblocks}I", data):
            k = (block * c1) & mask
            k = ((k << 15) | (k >> 17)) & mask
            k = (k * c2) & mask
            h ^= k
            h = ((h << 13) | (h >> 19)) & mask
            h = (h * 5 + 0xE6546B64) & mask
    tail = data[4 * nblocks :]
    k = 0
    if len(tail) == 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if tail:
        k ^= tail[0]
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while thousands of (acyclic) records are built: each
    collection would walk every record made so far.

    The records then live as long as the pool, so they are moved out of the collector's
    generations (``gc.freeze``) before it is turned back on: otherwise the first
    allocation after that walks all of them at once. They have no cycles; reference
    counting still frees them with the pool."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


@record
class RepoInfo:
    """One configured repository, as the pool needs it."""

    url: str
    """The index URL as apk prints it."""
    tag_mask: int = 1
    """Bit ``i`` set: the repository carries tag id ``i`` (bit 0: untagged)."""
    loaded: bool = False
    """The index was read (its packages are in the pool)."""
    available: bool = False
    """Its packages may be installed (loaded, and not masked by ``--no-network``)."""
    local: bool = False


@record(frozen=False, slots=False)
class Compat:
    """What apk warns about after reading indexes (``compat_*`` flags of the database)."""

    newfeatures: bool = False
    notinstallable: bool = False
    depversions: bool = False

    def bits(self) -> int:
        """The three flags as one number (see :meth:`add_bits`)."""
        return self.newfeatures | self.notinstallable << 1 | self.depversions << 2

    def add_bits(self, bits: int) -> None:
        """Set the flags that ``bits`` (from :meth:`bits`) has set."""
        self.newfeatures = self.newfeatures or bool(bits & 1)
        self.notinstallable = self.notinstallable or bool(bits & 2)
        self.depversions = self.depversions or bool(bits & 4)

    def warnings(self) -> list[str]:
        """apk's warnings, in its order (messages without the ``WARNING:`` prefix)."""
        how = "are not installable" if self.notinstallable else "might not function properly"
        out = []
        if self.newfeatures:
            out.append(f"This apk-tools is OLD! Some packages {how}.")
        if self.depversions:
            out.append(f"The indexes contain broken packages which {how}.")
        return out


def _truncate_at_tag(deps: tuple[Dependency, ...]) -> tuple[tuple[Dependency, ...], bool]:
    """Index dependencies may not carry ``@tag``: apk stops reading the list there."""
    for i, d in enumerate(deps):
        if d.tag is not None:
            return deps[:i], True
    return deps, False


@cache
def _plain_version() -> Callable[[str], object]:
    """The usual shape of a valid apk version (digits, dotted digits, a letter, suffixes, a
    ~hash, a -r revision): a match is valid without the tokenizer; anything else is asked.
    Compiled when first needed (``re`` costs start-up; most runs check few versions)."""
    import re

    return re.compile(
        r"[0-9]+(?:\.[0-9]+)*[a-z]?(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*"
        r"(?:~[0-9a-f]+)?(?:-r[0-9]+)?\Z"
    ).match


def _valid_version(version: str) -> bool:
    return _plain_version()(version) is not None or is_valid(version)


def _has_broken_version(deps: tuple[Dependency, ...]) -> bool:
    for d in deps:
        version = d.version
        if version is not None and d.op != CHECKSUM and not _valid_version(version):
            return True
    return False


def _is_plain(pkg: Package) -> bool:
    """No ``@tag`` in D/p/i and no broken version in D/p: apk reads the package as is."""
    for d in pkg.depends:
        version = d.version
        if d.tag is not None or (
            version is not None and d.op != CHECKSUM and not _valid_version(version)
        ):
            return False
    for d in pkg.provides:
        version = d.version
        if d.tag is not None or (
            version is not None and d.op != CHECKSUM and not _valid_version(version)
        ):
            return False
    return all(d.tag is None for d in pkg.install_if)


def normalize_index_package(pkg: Package, compat: Compat) -> tuple[Package, bool]:
    """Apply apk's reading rules that :func:`alpenglow.apk.index.parse_index` leaves to us.

    Returns the package as apk would hold it and whether apk would find it uninstallable
    (besides an incompatible arch). Updates ``compat`` like apk's database flags.
    """
    if not pkg.extra and not pkg.uninstallable and _is_plain(pkg):
        return pkg, False  # the common case: nothing to change, nothing to flag
    uninstallable = pkg.uninstallable
    if pkg.extra:
        compat.newfeatures = True
        if any(letter.isupper() for letter, _ in pkg.extra):
            compat.notinstallable = True
    depends, bad_d = _truncate_at_tag(pkg.depends)
    provides, bad_p = _truncate_at_tag(pkg.provides)
    install_if, bad_i = _truncate_at_tag(pkg.install_if)
    if bad_i:
        install_if = ()
    bad_list = pkg.uninstallable and not any(k.isupper() for k, _ in pkg.extra)
    if bad_d or bad_list or _has_broken_version(pkg.depends):
        uninstallable = True
        compat.depversions = True
        compat.notinstallable = True
    if bad_p or bad_i or _has_broken_version(pkg.provides):
        compat.depversions = True
    if bad_d or bad_p or bad_i:
        pkg = replace(pkg, depends=depends, provides=provides, install_if=install_if)
    return pkg, uninstallable


class _Entry:
    """A package while the pool is being built (merged by identity).

    It has exactly the slots of :class:`Candidate`, so that finishing the pool re-labels
    each entry in place as the frozen ``Candidate`` it then is (:func:`_freeze`): one
    object per package instead of an entry plus a candidate, and no frozen-dataclass
    ``object.__setattr__`` per field. Code that changes entries checks
    ``type(entry) is _Entry`` first: a frozen one is final."""

    __slots__ = fields_of(Candidate)

    def __init__(self, package: Package, identity: bytes, uninstallable: bool) -> None:
        self.package = package
        self.identity = identity
        self.uninstallable = uninstallable
        self.repos = 0
        self.installed = False
        self.repository_tag = 0
        self.cached = False
        self.cached_non_repository = False
        self.broken_files = False
        self.broken_script = False


def _freeze(e: _Entry | Candidate) -> Candidate:
    """Re-label ``e`` as the :class:`Candidate` it is laid out as (done once)."""
    if type(e) is _Entry:
        e.__class__ = Candidate  # type: ignore[assignment]
    return e  # type: ignore[return-value]


class _Listed:
    """A repository read through its :class:`IndexTable`: candidates are made when the
    solve first asks for them (see :meth:`Pool.add_repository`)."""

    __slots__ = ("bit", "cands", "extra_bits", "merged", "normalized", "table")

    def __init__(self, table: IndexTable, bit: int) -> None:
        self.table = table
        self.bit = bit
        self.cands: list[Candidate | None] = [None] * len(table)
        self.merged: dict[int, _Entry | Candidate | tuple[_Listed, int]] = {}
        """Package number -> the earlier entry it is (same identity), or the earlier listed
        repository and package number."""
        self.extra_bits: dict[int, int] = {}
        """Package number -> bits of later repositories that list it too."""
        self.normalized: dict[int, tuple[Package, bool]] = {}
        """The packages apk does not read as listed: (as apk holds it, uninstallable)."""


class Pool:
    """Packages and names of one run; implements :class:`alpenglow.apk.solver.Provider`.

    A repository given as an :class:`IndexTable` is not read package by package: its
    candidates are made when a name they provide is asked for, and the reverse lists come
    from the table's (already sorted) arrays. Installed and cached packages, and those
    added after :meth:`finish`, are always held as entries."""

    def __init__(self, arches: Sequence[str] = ("x86_64",)) -> None:
        self.arches = tuple(arches)
        self.compat = Compat()
        self.repositories: list[RepoInfo] = []
        self._tags: list[str] = [""]  # tag id -> name without "@"; 0 is untagged
        self._tag_repos: list[int] = [0]
        self._entries: list[_Entry | Candidate] = []  # Candidates once frozen
        self._by_identity: dict[bytes, _Entry | Candidate] = {}
        self._installed: list[_Entry | Candidate] = []
        self._sources: list[tuple[str, object]] = []  # for name creation order
        self._listed: list[_Listed] = []
        self._late: list[_Entry | Candidate] = []
        self._finished = False
        self._providers: dict[str, list[tuple[Candidate, str | None]]] = {}
        self._late_providers: dict[str, list[tuple[Candidate, str | None]]] = {}
        self._provider_memo: dict[str, list[tuple[Candidate, str | None]]] = {}
        self._revdeps: dict[str, list[Candidate]] | None = None
        self._reviif: dict[str, list[Candidate]] | None = None
        self._late_rdepends: dict[str, list[str]] = {}
        self._late_rinstall_if: dict[str, list[str]] = {}
        self._creation: dict[str, int] | None = None
        self._early: dict[int, dict[str, int]] = {}
        self._order_keys: dict[str, int] = {}
        self._iif_names: set[str] | None = None
        self._installed_cands: tuple[Candidate, ...] = ()
        self._available_repos = 0
        self._local_repos = 0
        self._repo_providers: set[str] | None = set()

    # -- building --------------------------------------------------------------------------

    def arch_compatible(self, arch: str) -> bool:
        """apk_db_arch_compatible: no arch, one of ours, or ``noarch``."""
        return not arch or arch in self.arches or arch == "noarch"

    def tag_id(self, tag: str | None) -> int:
        """The id of ``tag`` (with or without ``@``), registering it if new (apk does)."""
        if not tag:
            return 0
        plain = tag[1:] if tag.startswith("@") else tag
        try:
            return self._tags.index(plain, 1)
        except ValueError:
            self._tags.append(plain)
            self._tag_repos.append(0)
            return len(self._tags) - 1

    def tag_name(self, tag_id: int) -> str:
        """``@tag`` for a tag id, ``""`` for the untagged id 0."""
        if 0 < tag_id < len(self._tags):
            return "@" + self._tags[tag_id]
        return ""

    @property
    def num_tags(self) -> int:
        return len(self._tags)

    def note_world(self, world: Iterable[Dependency]) -> None:
        """Record the world file's names (apk reads it first, which fixes name order)."""
        self._sources.append(("world", tuple(world)))

    def _add(
        self,
        pkg: Package,
        uninstallable: bool,
        *,
        cached: bool = False,
        ident: bytes | None = None,
    ) -> _Entry | Candidate | None:
        if ident is None:
            ident = identity_key(pkg.checksum)
        if not ident:
            return None
        entry = self._by_identity.get(ident)
        if entry is None and self._finished and self._listed:
            entry = self._listed_by_identity(ident)
        if entry is None:
            if not self.arch_compatible(pkg.arch):
                uninstallable = True
            entry = _Entry(pkg, ident, uninstallable)
            entry.cached = cached
            self._by_identity[ident] = entry
            self._entries.append(entry)
            if self._finished:
                self._late.append(entry)
                self._register_late(entry)
        return entry

    def _listed_by_identity(self, ident: bytes) -> Candidate | _Entry | None:
        for listed in self._listed:
            i = listed.table.identities().get(ident)
            if i is not None:
                found = listed.merged.get(i)
                if isinstance(found, tuple):
                    return self._candidate(*found)
                return found or self._candidate(listed, i)
        return None

    def _unlist(self) -> None:
        """Add the repositories given as tables package by package (something is added
        after them that must come later in apk's order)."""
        listed, self._listed = self._listed, []
        for one in listed:
            with _gc_paused():
                self._add_listed(list(one.table.packages()), one.bit)

    def add_installed(
        self,
        packages: Iterable[Package],
        *,
        broken: Iterable[tuple[bool, bool]] | None = None,
    ) -> list[str]:
        """Add the installed database's packages, in file order.

        ``broken`` gives (broken files, broken script) per package, from the ``f:`` flags.
        Returns the names of stanzas without a valid identity (apk refuses those).
        """
        if not self._finished:
            self._unlist()
        pkgs = list(packages)
        flags = list(broken) if broken is not None else [(False, False)] * len(pkgs)
        self._sources.append(("pkgs", pkgs))
        bad = []
        for raw, (bfiles, bscript) in zip(pkgs, flags, strict=True):
            tag = self.tag_id(raw.repository_tag) if raw.repository_tag else 0
            pkg, uninstallable = normalize_index_package(raw, self.compat)
            entry = self._add(pkg, uninstallable)
            if entry is None:
                bad.append(pkg.name)
                continue
            if type(entry) is _Entry and not entry.installed:
                entry.installed = True
                entry.repository_tag = tag
                entry.broken_files = bfiles
                entry.broken_script = bscript
                self._installed.append(entry)
        return bad

    def add_cached(self, packages: Iterable[Package]) -> None:
        """Add the cache's ``installed`` index (non-repository packages kept in the cache)."""
        if not self._finished:
            self._unlist()
        pkgs = list(packages)
        self._sources.append(("pkgs", pkgs))
        for pkg in pkgs:
            norm, uninstallable = normalize_index_package(pkg, self.compat)
            entry = self._add(norm, uninstallable)
            if type(entry) is _Entry:
                entry.cached_non_repository = True

    def add_repository(
        self,
        url: str,
        packages: Iterable[Package] | IndexTable | None,
        *,
        tags: Sequence[str | None] = (None,),
        available: bool = True,
        local: bool = False,
        names: Sequence[str] | None = None,
    ) -> int:
        """Add one configured repository (its packages, or None if it could not be read).

        A repository URL given twice is one repository carrying both tags, as in apk.
        ``packages`` may be the index's :class:`IndexTable`: its candidates are then made
        only when asked for. ``names``, when known, is every name the packages mention in
        the order apk creates them (a table knows its own). Returns the repository's index
        (its bit in the candidates' ``repos``).
        """
        mask = 0
        for tag in tags:
            mask |= 1 << self.tag_id(tag)
        for i, repo in enumerate(self.repositories):
            if repo.url == url:
                self.repositories[i] = replace(repo, tag_mask=repo.tag_mask | mask)
                if repo.loaded:
                    self._allow(i, mask)
                return i
        index = len(self.repositories)
        loaded = packages is not None
        self.repositories.append(
            RepoInfo(url, mask, loaded, loaded and available, local and loaded)
        )
        if packages is None:
            return index
        bit = 1 << index
        if available:
            self._available_repos |= bit
        if local:
            self._local_repos |= bit
        self._repo_providers = None  # worked out again when asked
        if isinstance(packages, IndexTable) and not self._finished:
            self._sources.append(("names", packages.names))
            self._listed.append(_Listed(packages, bit))
        else:
            if not self._finished:
                self._unlist()
            if isinstance(packages, IndexTable):
                names = packages.names
                packages = packages.packages()
            pkgs = list(packages)
            self._sources.append(("pkgs", pkgs) if names is None else ("names", names))
            with _gc_paused():
                self._add_listed(pkgs, bit)
        self._allow(index, mask)
        return index

    def _add_listed(self, pkgs: list[Package], bit: int) -> None:
        for pkg in pkgs:
            norm, uninstallable = normalize_index_package(pkg, self.compat)
            entry = self._add(norm, uninstallable)
            if type(entry) is _Entry:
                entry.repos |= bit

    def _allow(self, index: int, mask: int) -> None:
        tag = 0
        while mask:
            if mask & 1:
                while len(self._tag_repos) <= tag:
                    self._tag_repos.append(0)
                self._tag_repos[tag] |= 1 << index
            mask >>= 1
            tag += 1

    def add_virtual(self, package: Package) -> Candidate:
        """``add --virtual``: a package that only exists in this run (apk marks it cached)."""
        entry = self._add(package, False, cached=True)
        if entry is None:
            raise ValueError(f"virtual package {package} has no identity")
        return _freeze(entry)

    def finish(self) -> None:
        """Freeze the candidates and build the provider lists (apk's "open complete")."""
        with _gc_paused():
            if self._listed:
                self._merge_listed()
            self._finish()

    def read_all(self) -> None:
        """Make every candidate of the repositories given as tables now, and answer from
        then on as a pool given every package does. A discovery walk with nothing known
        reaches most of an index (every name of Alpine's main from ``alpine-base``): one
        pass over all the packages, read in bulk, costs less than asking name by name.
        Nothing changes in the answers; candidates handed out already stay the same
        objects. Does nothing once packages were added after :meth:`finish`."""
        if not self._listed or not self._finished or self._late:
            return
        with _gc_paused():
            entries = list(self._entries)
            for listed in self._listed:
                table = listed.table
                table.packages()  # in bulk when the table can
                merged = listed.merged
                for i in range(len(table)):
                    if not table.flags(i) & SKIPPED and i not in merged:
                        cand = self._candidate(listed, i)
                        entries.append(cand)
                        self._by_identity.setdefault(cand.identity, cand)
                remember_buckets(table.names, map(table.bucket, range(len(table.names))))
            self._entries = entries
            self._listed = []
            self._provider_memo = {}
            self._iif_names = None
            self._repo_providers = None
            self._finish()

    def _merge_listed(self) -> None:
        """What the tables cannot know: packages they share with the entries or with each
        other (one candidate, several repository bits), and apk's reading flags."""
        for listed in self._listed:
            table = listed.table
            for i, (pkg, uninstallable, bits) in table.normalized().items():
                listed.normalized[i] = (pkg, uninstallable)
                self.compat.add_bits(bits)
        if not self._by_identity and len(self._listed) == 1:
            return  # nothing to share with
        earlier: dict[bytes, tuple[_Listed, int]] = {}
        for listed in self._listed:
            table = listed.table
            for ident, i in table.identities().items():
                entry = self._by_identity.get(ident)
                if entry is not None:
                    if type(entry) is _Entry:
                        entry.repos |= listed.bit
                    if not self._same_names(entry.package, listed, i):
                        self._unlist()  # the tables would list what the entry does not
                        return
                    listed.merged[i] = entry
                    continue
                first = earlier.get(ident)
                if first is None:
                    earlier[ident] = (listed, i)
                    continue
                owner, at = first
                if not self._same_names(self._listed_package(owner, at), listed, i):
                    self._unlist()
                    return
                owner.extra_bits[at] = owner.extra_bits.get(at, 0) | listed.bit
                listed.merged[i] = first

    def _listed_package(self, listed: _Listed, i: int) -> Package:
        found = listed.normalized.get(i)
        return found[0] if found is not None else listed.table.package(i)

    def _same_names(self, pkg: Package, listed: _Listed, i: int) -> bool:
        """Whether package ``i`` of ``listed`` adds nothing to the tables that ``pkg`` (the
        entry it is merged into) would not."""
        other = self._listed_package(listed, i)
        if other is pkg:
            return True
        return (
            pkg.name == other.name
            and pkg.version == other.version
            and pkg.provides == other.provides
            and [d.name for d in pkg.depends] == [d.name for d in other.depends]
            and [d.name for d in pkg.install_if] == [d.name for d in other.install_if]
        )

    def _candidate(self, listed: _Listed, i: int) -> Candidate:
        """The candidate of package ``i`` of a listed repository (made once)."""
        cand = listed.cands[i]
        if cand is None:
            found = listed.normalized.get(i)
            if found is not None:
                pkg, uninstallable = found
            else:
                pkg, uninstallable = listed.table.package(i), False
            arch = pkg.arch
            if arch and arch not in self.arches and arch != "noarch":
                uninstallable = True
            entry = _Entry(pkg, listed.table.identity(i), uninstallable)
            entry.repos = listed.bit | listed.extra_bits.get(i, 0)
            cand = listed.cands[i] = _freeze(entry)
        return cand

    def _finish(self) -> None:
        # One pass builds the provider lists and (as apk does while reading indexes) the
        # reverse-dependency and reverse-install_if lists.
        providers: dict[str, list[tuple[Candidate, str | None]]] = {}
        revdeps: dict[str, list[Candidate]] = {}
        reviif: dict[str, list[Candidate]] = {}
        providers_get = providers.get
        revdeps_get = revdeps.get
        entry_type = _Entry
        for e in self._entries:
            if type(e) is entry_type:
                e.__class__ = Candidate  # type: ignore[assignment]
            cand: Candidate = e  # type: ignore[assignment]
            pkg = e.package
            for d in pkg.depends:
                n = d.name
                lst2 = revdeps_get(n)
                if lst2 is None:
                    revdeps[n] = [cand]
                elif lst2[-1] is not cand:
                    lst2.append(cand)
            if pkg.install_if:
                for d in pkg.install_if:
                    lst2 = reviif.get(d.name)
                    if lst2 is None:
                        reviif[d.name] = [cand]
                    elif lst2[-1] is not cand:
                        lst2.append(cand)
            n = pkg.name
            lst = providers_get(n)
            if lst is None:
                providers[n] = [(cand, pkg.version)]
            else:
                lst.append((cand, pkg.version))
            for d in pkg.provides:
                n = d.name
                lst = providers_get(n)
                if lst is None:
                    providers[n] = [(cand, d.version)]
                else:
                    lst.append((cand, d.version))
        self._providers = providers
        self._revdeps = revdeps
        self._reviif = reviif
        self._installed_cands = tuple(map(_freeze, self._installed))
        self._finished = True

    def _register_late(self, e: _Entry | Candidate) -> None:
        cand = _freeze(e)
        pkg = e.package
        table = self._late_providers if self._listed else self._providers
        table.setdefault(pkg.name, []).append((cand, pkg.version))
        for d in pkg.provides:
            table.setdefault(d.name, []).append((cand, d.version))
        names = [pkg.name] + [d.name for d in pkg.provides]
        for n in names:
            self._provider_memo.pop(n, None)
        self._creation = None
        self._iif_names = None
        for deps, late in (
            (pkg.depends, self._late_rdepends),
            (pkg.install_if, self._late_rinstall_if),
        ):
            for d in deps:
                lst = late.setdefault(d.name, [])
                for n in names:
                    if n not in lst:
                        lst.append(n)

    @property
    def extended(self) -> bool:
        """Whether packages were added after :meth:`finish` (``add --virtual``): the pool
        is then more than what it was made from."""
        return bool(self._late)

    # -- Provider --------------------------------------------------------------------------

    @property
    def available_repos(self) -> int:
        return self._available_repos

    @property
    def local_repos(self) -> int:
        return self._local_repos

    @property
    def tag_repos(self) -> Sequence[int]:
        return self._tag_repos

    def providers(self, name: str) -> Sequence[tuple[Candidate, str | None]]:
        if not self._listed:
            return self._providers.get(name, ())
        found = self._provider_memo.get(name)
        if found is None:
            found = self._providers.get(name)
            found = [] if found is None else list(found)
            for listed in self._listed:
                j = listed.table.index_of(name)
                if j is None:
                    continue
                pairs = listed.table.providers_of(j)
                merged = listed.merged
                for at in range(0, len(pairs), 2):
                    i = pairs[at]
                    if i in merged:
                        continue
                    cand = listed.cands[i] or self._candidate(listed, i)
                    k = pairs[at + 1]
                    pkg = cand.package
                    found.append((cand, pkg.version if k == 0 else pkg.provides[k - 1].version))
            found += self._late_providers.get(name, ())
            self._provider_memo[name] = found
        return found

    def installed(self) -> Sequence[Candidate]:
        return self._installed_cands

    def has_name(self, name: str) -> bool:
        """Whether apk would know ``name`` (it was mentioned anywhere)."""
        if name in self._providers or name in self._late_providers:
            return True
        if any(listed.table.index_of(name) is not None for listed in self._listed):
            return True
        return name in self._creation_order()

    def has_repository_providers(self, name: str) -> bool:
        for listed in self._listed:
            j = listed.table.index_of(name)
            if j is not None and listed.table.has_providers(j):
                return True
        names = self._repo_providers
        if names is None:
            names = set()
            for e in self._entries:
                if e.repos:
                    names.add(e.package.name)
                    names.update(d.name for d in e.package.provides)
            self._repo_providers = names
        return name in names

    def candidates(self) -> Iterable[Candidate]:
        late = set(map(id, self._late))
        for e in self._entries:
            if type(e) is Candidate and id(e) not in late:
                yield e
        for listed in self._listed:
            for i in range(len(listed.table)):
                if not listed.table.flags(i) & SKIPPED and i not in listed.merged:
                    yield self._candidate(listed, i)
        for e in self._late:
            if type(e) is Candidate:
                yield e

    def _reverse_maps(self) -> tuple[dict[str, list[Candidate]], dict[str, list[Candidate]]]:
        if self._revdeps is None or self._reviif is None:
            revdeps: dict[str, list[Candidate]] = {}
            reviif: dict[str, list[Candidate]] = {}
            late = set(map(id, self._late))
            for e in self._entries:
                if type(e) is not Candidate or id(e) in late:
                    continue
                cand: Candidate = e
                pkg = e.package
                for d in pkg.depends:
                    lst = revdeps.get(d.name)
                    if lst is None:
                        revdeps[d.name] = [cand]
                    elif lst[-1] is not cand:
                        lst.append(cand)
                for d in pkg.install_if:
                    lst = reviif.get(d.name)
                    if lst is None:
                        reviif[d.name] = [cand]
                    elif lst[-1] is not cand:
                        lst.append(cand)
            self._revdeps = revdeps
            self._reviif = reviif
        return self._revdeps, self._reviif

    @staticmethod
    def _names_of(cands: Sequence[Candidate]) -> dict[str, None]:
        names: dict[str, None] = {}
        for cand in cands:
            pkg = cand.package
            names[pkg.name] = None
            if pkg.provides:
                names.update(dict.fromkeys(map(_name_of, pkg.provides)))
        return names

    def _ordered(self, cands: Sequence[Candidate]) -> list[str]:
        if len(cands) == 1 and not cands[0].package.provides:
            return [cands[0].package.name]
        return self._table_order(self._names_of(cands))

    def _table_order(self, names: Iterable[str]) -> list[str]:
        """``names`` in apk's name table order: by bucket, and within a bucket the most
        recently created name first (one integer key per name says both)."""
        keys = self._order_keys
        creation: dict[str, int] | None = None
        missing = [n for n in names if n not in keys]
        if missing:
            creation = self._creation_order()
            for n in missing:
                index = creation.get(n)
                if index is None:  # added late
                    return self._ordered_unknown(names)
                keys[n] = (self._bucket(n) << 32) - index
        return sorted(names, key=keys.__getitem__)

    def _bucket(self, name: str) -> int:
        bucket = _BUCKETS.get(name)
        if bucket is None:
            for listed in self._listed:
                j = listed.table.index_of(name)
                if j is not None:
                    bucket = _BUCKETS[name] = listed.table.bucket(j)
                    return bucket
            bucket = bucket_of(name)
        return bucket

    def _ordered_unknown(self, names: Iterable[str]) -> list[str]:
        """:meth:`_ordered` when a name is missing from the creation order (added late)."""
        order = self._creation_order()
        keyed = sorted((self._bucket(n), n) for n in names)
        for i in range(1, len(keyed)):
            if keyed[i][0] == keyed[i - 1][0]:
                keyed.sort(key=lambda k: (k[0], -order.get(k[1], 0)))
                break
        return [n for _, n in keyed]

    def _reverse(
        self,
        name: str,
        table: dict[str, list[Candidate]],
        late: dict[str, list[str]],
        rdepends: bool,
    ) -> Sequence[str]:
        found = table.get(name)
        parts: list[tuple[int, memoryview]] = []
        for r, listed in enumerate(self._listed):
            j = listed.table.index_of(name)
            if j is not None:
                arr = listed.table.rdepends_of(j) if rdepends else listed.table.rinstall_if_of(j)
                if arr:
                    parts.append((r, arr))
        extra = late.get(name) if late else None
        if found is None and extra is None and not parts:
            return ()
        if not parts:
            out = self._ordered(found or ())
        elif len(parts) == 1 and (found is None or self._within(found, parts[0])):
            out = self._listed_order(*parts[0])
        else:
            every: dict[str, None] = self._names_of(found or ())
            for r, arr in parts:
                every.update(dict.fromkeys(map(self._listed[r].table.names.__getitem__, arr)))
            out = self._table_order(every)
        for n in extra or ():
            if n not in out:
                out.append(n)
        return out

    def _within(self, cands: Sequence[Candidate], part: tuple[int, memoryview]) -> bool:
        """Whether the entries' names are all in a table's list already."""
        r, arr = part
        listed = set(map(self._listed[r].table.names.__getitem__, arr))
        return self._names_of(cands).keys() <= listed

    def _listed_order(self, r: int, arr: memoryview) -> list[str]:
        """A table's reverse list (sorted for the index read alone) in this pool's order:
        names created before the table's index was read go last in their buckets."""
        table = self._listed[r].table
        names = list(map(table.names.__getitem__, arr))
        early = self._early_names(r)
        if not early or early.keys().isdisjoint(names):
            return names
        # only the buckets holding an early name can change: re-sort just those runs
        bucket = table.bucket
        later = len(early)
        done: set[int] = set()
        for n in early.keys() & set(names):
            at = names.index(n)
            b = bucket(arr[at])
            if b in done:
                continue
            done.add(b)
            lo = at
            while lo > 0 and bucket(arr[lo - 1]) == b:
                lo -= 1
            hi = at + 1
            while hi < len(names) and bucket(arr[hi]) == b:
                hi += 1
            run = sorted((-early.get(names[k], later + arr[k]), names[k]) for k in range(lo, hi))
            names[lo:hi] = [name for _, name in run]
        return names

    def _early_names(self, r: int) -> dict[str, int]:
        """The names created before listed repository ``r``'s index, in creation order."""
        early = self._early.get(r)
        if early is None:
            seen = 0
            sources = []
            for kind, payload in self._sources:
                if kind == "names" and any(payload is lst.table.names for lst in self._listed):
                    if seen == r:
                        break
                    seen += 1
                sources.append((kind, payload))
            early = self._early[r] = self._creation_of(sources, ())
        return early

    def rdepends(self, name: str) -> Sequence[str]:
        revdeps = self._revdeps
        if revdeps is None:
            revdeps = self._reverse_maps()[0]
        if not self._listed and name not in revdeps and not self._late_rdepends:
            return ()
        return self._reverse(name, revdeps, self._late_rdepends, True)

    def rinstall_if(self, name: str) -> Sequence[str]:
        reviif = self._reviif
        if reviif is None:
            reviif = self._reverse_maps()[1]
        if (
            name not in reviif
            and not self._late_rinstall_if
            and (not self._listed or name not in self.install_if_names())
        ):
            return ()  # most names: asked once each while the solver discovers
        return self._reverse(name, reviif, self._late_rinstall_if, False)

    def install_if_names(self) -> set[str]:
        """Every name some package has in its install_if."""
        names = self._iif_names
        if names is None:
            reviif = self._reviif
            if reviif is None:
                reviif = self._reverse_maps()[1]
            names = set(reviif.keys() | self._late_rinstall_if.keys())
            for listed in self._listed:
                names.update(listed.table.install_if_names())
            self._iif_names = names
        return names

    def all_names(self) -> list[str]:
        """Every known name in apk's hash-table order (for ``*`` patterns)."""
        order = self._creation_order()
        return [n for _, _, n in sorted((self._bucket(n), -i, n) for n, i in order.items())]

    def _creation_order(self) -> dict[str, int]:
        """The order apk creates names in: world, installed, cache, repositories; within
        a package P, then D, p, i and r names."""
        if self._creation is None:
            self._creation = self._creation_of(self._sources, self._late)
        return self._creation

    @staticmethod
    def _creation_of(
        sources: Iterable[tuple[str, object]], late: Iterable[_Entry | Candidate]
    ) -> dict[str, int]:
        # every mention in order; the first one of a name fixes its place
        seq: list[str] = []
        add = seq.append
        extend = seq.extend
        for kind, payload in sources:
            if kind == "world":
                extend(map(_name_of, payload))  # type: ignore[call-overload]
                continue
            if kind == "names":
                extend(payload)  # type: ignore[arg-type]
                continue
            for pkg in payload:  # type: ignore[attr-defined]
                add(pkg.name)
                for deps in (pkg.depends, pkg.provides, pkg.install_if, pkg.replaces):
                    if deps:
                        extend(map(_name_of, deps))
        for e in late:
            add(e.package.name)
            for deps in (e.package.depends, e.package.provides, e.package.install_if):
                extend(map(_name_of, deps))
        return dict(zip(dict.fromkeys(seq), count()))
