"""apk-tools' dependency solver, rule for rule, with the state kept in the solve.

apk does not search: it propagates constraints up and down the dependency graph, picks one
name at a time from a few priority queues, and takes the best provider by a fixed list of
preferences (:func:`_compare_providers`). Which name is decided next and which provider wins
change what gets installed, so this module follows apk's order of events exactly; the
conformance cases in ``shared/conformance/apk-solver`` pin the results.

The solver only knows a :class:`Provider`: the names, their providers in apk's order, the
reverse-dependency lists, the installed packages and the repository pinning masks. The
mutable per-name and per-package state (``_Name``, ``_Pkg``) is created by each
:func:`solve` and dropped with it; :class:`Candidate` records are never touched.

The result is a :class:`Solution`: apk's change set (in the order apk would apply and print
it, including unchanged packages, which apk also keeps) and the error count. When the count
is non-zero the change set is what apk feeds its "unable to select packages" report
(:mod:`alpenglow.apk.problems`).
"""

from __future__ import annotations

import gc
import heapq
import sys
from binascii import a2b_base64
from collections import deque
from collections.abc import Callable, Container, Iterable, Mapping, MutableMapping, Sequence
from enum import IntFlag

from alpenglow._record import field, record
from alpenglow._typing import TYPE_CHECKING, Protocol
from alpenglow.apk.version import ANY, CHECKSUM, Op, compare_mask

if TYPE_CHECKING:
    from typing import TypeVar

    from alpenglow.apk.dependency import Dependency
    from alpenglow.apk.index import Package

__all__ = [
    "DEFAULT_PINNING",
    "Candidate",
    "Change",
    "Closure",
    "Provider",
    "Reporter",
    "Solution",
    "SolverFlag",
    "identity_key",
    "provided_by",
    "solve",
    "version_match",
]


def __dir__() -> list[str]:
    return __all__


class SolverFlag(IntFlag):
    """apk's solver flags (``APK_SOLVERF_*``); set per run or per name."""

    UPGRADE = 0x01
    AVAILABLE = 0x02
    REINSTALL = 0x04
    LATEST = 0x08
    IGNORE_CONFLICT = 0x10
    INSTALLED = 0x20
    REMOVE = 0x40


DEFAULT_PINNING = 1
"""Pinning mask of the untagged repositories (tag id 0)."""

_AVAILABLE = int(SolverFlag.AVAILABLE)
_LATEST = int(SolverFlag.LATEST)
_REINSTALL = int(SolverFlag.REINSTALL)
_UPGRADE = int(SolverFlag.UPGRADE)
_INSTALLED = int(SolverFlag.INSTALLED)
_REMOVE = int(SolverFlag.REMOVE)
_RECURSION_LIMIT = 1_000_000


@record(eq=False)
class Candidate:
    """One package as the solver sees it: the index record plus where it comes from.

    Two index entries with the same identity are one candidate (apk merges them), so
    ``repos`` is a bit mask: bit ``i`` is set when repository ``i`` lists the package.
    Candidates compare by identity (``is``), as apk compares package pointers.
    """

    package: Package
    identity: bytes = b""
    """The first 20 bytes of the decoded ``C:`` identity (apk's package key)."""
    repos: int = 0
    installed: bool = False
    repository_tag: int = 0
    """For an installed package: the tag id it was installed from (``s:`` in the db)."""
    cached: bool = False
    """The ``.apk`` is in the package cache, or this is a virtual package from ``add -t``."""
    cached_non_repository: bool = False
    """Listed in the cache's ``installed`` index (non-repository packages kept over reboots)."""
    uninstallable: bool = False
    """apk could not fully read the entry (unknown field, bad ``D:``, wrong arch)."""
    broken_files: bool = False
    broken_script: bool = False

    @property
    def name(self) -> str:
        return self.package.name

    @property
    def version(self) -> str:
        return self.package.version

    def __str__(self) -> str:
        return f"{self.package.name}-{self.package.version}"


class Provider(Protocol):
    """Everything the solver asks about the package universe.

    The answers must follow apk's orders: ``providers`` in the order the packages were added
    (installed database first, then repositories in order, each in file order), the reverse
    lists in apk's name-table order. Each method is called at most once per name per solve.
    """

    @property
    def available_repos(self) -> int:
        """Bit mask of the repositories that may be used (loaded, and not masked by
        ``--no-network``)."""

    @property
    def tag_repos(self) -> Sequence[int]:
        """For each repository tag id (0 = untagged), the mask of repositories it allows."""

    def providers(self, name: str) -> Sequence[tuple[Candidate, str | None]]:
        """Packages that provide ``name``: (candidate, provided version, None if virtual)."""

    def rdepends(self, name: str) -> Sequence[str]:
        """Names whose providers depend on ``name``."""

    def rinstall_if(self, name: str) -> Sequence[str]:
        """Names whose providers have ``name`` in their install_if."""

    def install_if_names(self) -> Container[str]:
        """Every name that some package has in its install_if (a superset will do): for
        any other name :meth:`rinstall_if` is empty, and the solver does not ask."""

    def installed(self) -> Sequence[Candidate]:
        """The installed packages, in database order."""

    def tag_id(self, tag: str | None) -> int:
        """The id of repository tag ``tag`` (without ``@``); 0 for None."""


class Reporter:
    """Progress hooks; the default does nothing. Subclass to trace a solve."""

    def discovered(self, name: str) -> None:
        """``name`` entered the solve."""

    def selected(self, name: str, candidate: Candidate | None) -> None:
        """``name`` was decided: provided by ``candidate`` (None: by nothing)."""

    def disqualified(self, candidate: Candidate, reason: str) -> None:
        """``candidate`` can no longer be chosen."""

    def restarted(self, broken: Sequence[Dependency]) -> None:
        """``--force-broken-world``: solving again without the ``broken`` world entries."""


@record
class Change:
    """One entry of apk's change set. ``old is new`` with no flag set is "no change"."""

    old: Candidate | None
    new: Candidate | None
    old_tag: int = 0
    new_tag: int = 0
    reinstall: bool = False

    @property
    def is_change(self) -> bool:
        """Whether apk does (and prints) something for this entry."""
        return self.old is not self.new or self.reinstall or self.old_tag != self.new_tag


@record
class Closure:
    """What apk's discovery reaches from one name walked on its own (nothing seen before):
    every name, in the order the walk numbers them, and for each whether some provider has
    that name as its own (apk's order flag for names that are not only virtual).

    It depends only on the package universe, so a caller may keep it for the next
    :func:`solve` over the same universe (:mod:`alpenglow.apk.index_cache` keeps it on
    disk): walking a root whose closure is known numbers the names of the closure not seen
    yet, in that order, which is what the walk would do. A closure's names that are seen
    already have their whole closures seen too, so the walk would not have gone past them.
    """

    names: tuple[str, ...]
    real: bytes
    """One byte per name: 1 if some provider is named so, 0 if all provide it virtually."""


@record
class Solution:
    """What :func:`solve` decided."""

    changes: tuple[Change, ...]
    """apk's change set in execution order; unchanged packages included (as apk keeps them)."""
    errors: int
    """Number of problems; 0 means the change set can be committed."""
    world: tuple[Dependency, ...]
    """The world, sorted as apk sorts it before solving (this is what gets written)."""
    broken: frozenset[int] = frozenset()
    """Indexes into ``world`` that ``--force-broken-world`` had to disable."""
    chosen: Mapping[str, Candidate] = field(default_factory=dict)
    """Name -> chosen candidate, for every name the solve decided with a package."""

    @property
    def num_changes(self) -> int:
        return sum(1 for c in self.changes if c.is_change)


# --------------------------------------------------------------------------------------
# Version matching (apk_version_match / apk_dep_is_provided)

# The masks as plain ints: with an ``Op`` on either side, ``&`` and ``|`` go through the
# enum's Python-level operators (an ``int & Op`` too: Python asks the subclass first).
_EQ = int(Op.EQ)
_FUZZY = int(Op.FUZZY)
_CONFLICT = int(Op.CONFLICT)
_ANY = int(ANY)
_EVERYTHING = _ANY


def version_match(version: str | None, op: int, want: str | None) -> bool:
    """apk's ``apk_version_match``: ``op`` may carry the conflict bit (which inverts).

    A missing version on either side (a virtual provide) compares as "anything", as in apk.
    """
    if type(op) is not int:
        op = int(op)
    if op & _ANY == _ANY:
        ok = True
    elif version is None or want is None:
        ok = bool((_EQ if version is None and want is None else _EVERYTHING) & op)
    else:
        ok = bool(int(compare_mask(version, want, bool(op & _FUZZY))) & op)
    if op & _CONFLICT:
        return not ok
    return ok


def _dep_mask(dep: Dependency) -> int:
    return int(dep.op) | (_CONFLICT if dep.conflict else 0)


def identity_key(text: str) -> bytes:
    """apk's package key from a ``Q1<base64>`` / ``X1<hex>`` identity: the first 20 bytes.

    apk decodes leniently (non-canonical trailing base64 bits are dropped), so two spellings
    can name one package; comparing keys instead of strings does the same. Returns ``b""``
    for anything that is not an identity.
    """
    if len(text) < 3 or text[1] not in "12":
        return b""
    body = text[2:]
    try:
        if text[0] == "Q":
            raw = a2b_base64(body.encode("ascii"))
        elif text[0] == "X":
            raw = bytes.fromhex(body)
        else:
            return b""
    except (ValueError, UnicodeEncodeError):
        return b""
    return raw[:20] if len(raw) >= 20 else b""


_identity_of = identity_key


def provided_by(
    dep: Dependency, candidate: Candidate | None, version: str | None, owner: object = None
) -> bool:
    """apk's ``apk_dep_is_provided``: does ``candidate`` (providing ``dep.name`` at
    ``version``) satisfy ``dep``? ``owner`` is the package that has the dependency; a
    package never conflicts with itself."""
    if candidate is None:
        return dep.conflict
    if dep.conflict and owner is candidate:
        return True
    if dep.op == CHECKSUM and dep.version is not None:
        return _identity_of(dep.version) == candidate.identity
    return version_match(version, _dep_mask(dep), dep.version)


# --------------------------------------------------------------------------------------
# Per-solve state


class _Pkg:
    """Solver state of one candidate during one solve."""

    __slots__ = (
        "cand",
        "conflicts",
        "dependencies_merged",
        "dependencies_used",
        "depends",
        "error",
        "iif_failed",
        "iif_targets",
        "iif_triggered",
        "in_changeset",
        "install_if",
        "name",
        "pinning_allowed",
        "pinning_preferred",
        "pkg_available",
        "pkg_selectable",
        "provider_priority",
        "provides",
        "rdep_targets",
        "repos",
        "solver_flags",
        "solver_flags_inheritable",
        "tag_ok",
        "tag_preferred",
    )

    def __init__(self, cand: Candidate, name: _Name) -> None:
        self.cand = cand
        self.name = name
        self.provider_priority = cand.package.provider_priority or 0
        self.depends: Sequence[tuple[Dependency, _Name]] = ()
        self.provides: Sequence[tuple[Dependency, _Name]] = ()
        self.install_if: Sequence[tuple[Dependency, _Name]] = ()
        # Reverse dependencies and reverse install_if of the package's own name and of every
        # name it provides, flattened in that order (made on first use; see _targets).
        self.rdep_targets: tuple[str, ...] | None = None
        self.iif_targets: tuple[_Name, ...] | None = None
        self.repos = 0
        self.conflicts = 0
        self.pinning_allowed = 0
        self.pinning_preferred = 0
        self.solver_flags = 0
        self.solver_flags_inheritable = 0
        self.pkg_available = False
        self.pkg_selectable = False
        self.tag_ok = False
        self.tag_preferred = False
        self.dependencies_used = False
        self.dependencies_merged = False
        self.in_changeset = False
        self.iif_triggered = False
        self.iif_failed = False
        self.error = False

    def __repr__(self) -> str:
        return f"<_Pkg {self.cand}>"


if TYPE_CHECKING:
    _T = TypeVar("_T")

_NO_QUEUE, _Q_RESOLVENOW, _Q_SELECTABLE, _Q_UNRESOLVED = range(4)


class _Name:
    """Solver state of one name during one solve."""

    __slots__ = (
        "changeset_processed",
        "changeset_removed",
        "chosen_pkg",
        "chosen_version",
        "dirty",
        "has_auto_selectable",
        "has_iif",
        "has_options",
        "has_virtual_provides",
        "iif_needed",
        "installed_name",
        "installed_pkg",
        "irequirers",
        "locked",
        "merge_depends",
        "merge_provides",
        "name",
        "no_iif",
        "order_id",
        "providers",
        "qgen",
        "queue",
        "rdepends",
        "reevaluate_deps",
        "reevaluate_iif",
        "requirers",
        "resolvenow",
        "reverse_deps_done",
        "rinstall_if",
        "seen",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.providers: list[tuple[_Pkg, str | None]] | None = None
        # names only: most reverse dependencies never enter the solve, so they get no state
        self.rdepends: Sequence[str] | None = None
        self.rinstall_if: Sequence[_Name] | None = None
        self.seen = False
        self.locked = False
        self.chosen_pkg: _Pkg | None = None
        self.chosen_version: str | None = None
        self.requirers = 0
        self.merge_depends = 0
        self.merge_provides = 0
        self.order_id = 0
        self.reevaluate_deps = False
        self.reevaluate_iif = False
        self.has_iif = False
        self.iif_needed = False
        self.no_iif = False
        self.has_options = False
        self.reverse_deps_done = False
        self.has_virtual_provides = False
        self.has_auto_selectable = False
        self.resolvenow = False
        self.dirty = False
        self.queue = _NO_QUEUE
        self.qgen = 0
        # change set generation
        self.changeset_processed = False
        self.changeset_removed = False
        self.installed_pkg: _Pkg | None = None
        self.installed_name: _Name | None = None
        self.irequirers = 0

    def __repr__(self) -> str:
        return f"<_Name {self.name}>"


class _NameTable(dict[str, _Name]):
    """Name -> state, a state made on first lookup (by the solver, which knows what
    discovery found out about the name)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[str], _Name]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, name: str) -> _Name:
        st = self[name] = self.make(name)
        return st


# --------------------------------------------------------------------------------------
# The solve


class _Solver:
    def __init__(
        self,
        provider: Provider,
        flags: int,
        presets: Mapping[str, tuple[int, int]],
        reporter: Reporter,
        closures: MutableMapping[str, Closure] | None = None,
    ) -> None:
        self.provider = provider
        self.reporter = reporter
        self.closures = closures
        self.tracing = type(reporter).discovered is not Reporter.discovered
        # plain ints: IntFlag arithmetic goes through enum's Python-level operators
        flags = int(flags)
        self.flags = flags
        self.ignore_conflict = bool(flags & SolverFlag.IGNORE_CONFLICT)
        self._providers_of = provider.providers
        self.available_repos = provider.available_repos
        self.tag_repos = tuple(provider.tag_repos)
        self.default_repos = self.mask_repos(DEFAULT_PINNING)
        self.names = _NameTable(self._new_name)
        self.pkgs: dict[int, _Pkg] = {}
        # What discovery found: the names it saw and each one's order id (the packages it
        # saw are the providers of those names). States are made from these on first use.
        self.seen_names: set[str] = set()
        self.seen_pkgs: set[int] = set()  # by id of the candidate: whose depends were walked
        self.order_ids: dict[str, int] = {}
        # seen names marked by _reevaluate_deps before they had a state
        self.reevaluate_later: set[str] = set()
        self.flags_inherit = 0
        self.pinning_inherit = 0
        self.order_counter = 0
        self.errors = 0
        self.performing_preupgrade = False
        self.dirty: deque[_Name] = deque()
        self.resolvenow: deque[tuple[_Name, int]] = deque()
        self.selectable: list[tuple[int, int, _Name]] = []
        self.unresolved: list[tuple[int, int, _Name]] = []
        self.qseq = 0
        self.changes: list[Change] = []
        self.flagged: frozenset[str] = frozenset()
        self.presets = presets

    def apply_presets(self) -> None:
        """apk_solver_set_name_flags: every provider of the name gets the flags."""
        for pname, (pflags, pinherit) in self.presets.items():
            for ps, _ in self.providers(self.name(pname)):
                ps.solver_flags |= int(pflags)
                ps.solver_flags_inheritable |= int(pinherit)

    def release(self) -> None:
        """Cut the references from name states to package and name states.

        What is left (packages pointing at names) has no cycles, so reference counting
        frees the whole state when the solver goes, and the cyclic collector never has to
        walk the tens of thousands of objects a solve makes.
        """
        self.names.make = _Name  # the table no longer refers back to the solver
        for st in self.names.values():
            st.providers = None
            st.rdepends = None
            st.rinstall_if = None
            st.chosen_pkg = None
            st.installed_pkg = None
            st.installed_name = None
        self.dirty.clear()
        self.resolvenow.clear()
        self.selectable.clear()
        self.unresolved.clear()

    # -- name and package state -----------------------------------------------------------

    def name(self, name: str) -> _Name:
        return self.names[name]

    def _names(self, names: Iterable[str]) -> list[_Name]:
        """The states of ``names`` (created as needed), in order."""
        return list(map(self.names.__getitem__, names))

    def providers(self, st: _Name) -> list[tuple[_Pkg, str | None]]:
        provs = st.providers
        if provs is None:
            pkgs = self.pkgs
            provs = st.providers = []
            append = provs.append
            for c, v in self._providers_of(st.name):
                ps = pkgs.get(id(c))
                append((self._make_pkg(c) if ps is None else ps, v))
        return provs

    def pkg(self, cand: Candidate) -> _Pkg:
        ps = self.pkgs.get(id(cand))
        return self._make_pkg(cand) if ps is None else ps

    def _make_pkg(self, cand: Candidate) -> _Pkg:
        pkg = cand.package
        table = self.names
        ps = _Pkg(cand, table[pkg.name])
        deps = pkg.depends
        if deps:
            ps.depends = [(d, table[d.name]) for d in deps]
        deps = pkg.provides
        if deps:
            ps.provides = [(d, table[d.name]) for d in deps]
        deps = pkg.install_if
        if deps:
            ps.install_if = [(d, table[d.name]) for d in deps]
        repos = cand.repos
        if cand.installed:
            repos |= self.tag_allowed(cand.repository_tag)
        ps.repos = repos
        # discovery sees every provider of every name it sees, and nothing else
        seen = self.seen_names
        if pkg.name in seen or any(d.name in seen for d in pkg.provides):
            self._discovered_pkg(ps)
        self.pkgs[id(cand)] = ps
        return ps

    def _new_name(self, name: str) -> _Name:
        """A name's state, with what discovery set in it when discovery saw the name."""
        st = _Name(name)
        order_id = self.order_ids.get(name)
        if order_id is not None:
            st.seen = True
            st.order_id = order_id
            st.no_iif = self._discovered_no_iif(name)
            if name in self.reevaluate_later:
                self.reevaluate_later.discard(name)
                st.reevaluate_deps = True
        return st

    def rdepends(self, st: _Name) -> Sequence[str]:
        """The names whose providers depend on ``st`` (the callers skip the names that
        discovery did not see)."""
        r = st.rdepends
        if r is None:
            r = st.rdepends = self.provider.rdepends(st.name) or ()
        return r

    def rinstall_if(self, st: _Name) -> Sequence[_Name]:
        r = st.rinstall_if
        if r is None:
            names = self.provider.rinstall_if(st.name)
            r = st.rinstall_if = self._names(names) if names else ()
        return r

    def tag_allowed(self, tag: int) -> int:
        if 0 <= tag < len(self.tag_repos):
            return self.tag_repos[tag]
        return 0

    def mask_repos(self, pinning_mask: int) -> int:
        repos = 0
        for i, allowed in enumerate(self.tag_repos):
            if pinning_mask & (1 << i):
                repos |= allowed
        return repos

    def get_tag(self, pinning_mask: int, repos: int) -> int:
        for i, allowed in enumerate(self.tag_repos):
            if pinning_mask & (1 << i) and allowed & repos:
                return i
        return 0

    def mark_error(self, ps: _Pkg | None) -> None:
        if ps is None or ps.error:
            return
        ps.error = True
        self.errors += 1

    # -- queues ----------------------------------------------------------------------------

    def queue_dirty(self, st: _Name) -> None:
        if st.dirty or st.locked or (st.requirers == 0 and not st.reevaluate_iif):
            return
        st.dirty = True
        self.dirty.append(st)

    def _resolvenow_ok(self, st: _Name) -> bool:
        return bool(
            st.reverse_deps_done and st.requirers and st.has_auto_selectable and not st.has_options
        )

    def _dequeue(self, st: _Name) -> None:
        st.queue = _NO_QUEUE
        st.qgen += 1

    def queue_unresolved(self, st: _Name, reevaluate: bool) -> None:
        if st.locked:
            return
        if st.queue != _NO_QUEUE:
            if st.resolvenow:
                return
            if self._resolvenow_ok(st):
                st.resolvenow = True
            elif not reevaluate:
                return
            self._dequeue(st)
        else:
            if st.requirers == 0 and not st.has_iif and not st.iif_needed:
                return
            st.resolvenow = self._resolvenow_ok(st)
        st.qgen += 1
        if st.resolvenow:
            st.queue = _Q_RESOLVENOW
            self.resolvenow.append((st, st.qgen))
            return
        entry = (-st.order_id, st.qgen, st)
        if st.has_auto_selectable:
            st.queue = _Q_SELECTABLE
            heapq.heappush(self.selectable, entry)
        else:
            st.queue = _Q_UNRESOLVED
            heapq.heappush(self.unresolved, entry)

    def dequeue_next(self) -> _Name | None:
        rq = self.resolvenow
        while rq:
            st, gen = rq.popleft()
            if st.queue == _Q_RESOLVENOW and st.qgen == gen:
                self._dequeue(st)
                return st
        for heap, kind in ((self.selectable, _Q_SELECTABLE), (self.unresolved, _Q_UNRESOLVED)):
            while heap:
                _, gen, st = heapq.heappop(heap)
                if st.queue == kind and st.qgen == gen:
                    self._dequeue(st)
                    return st
        return None

    # -- propagation -----------------------------------------------------------------------

    def reevaluate_reverse_deps(self, st: _Name) -> None:
        self._reevaluate_deps(self.rdepends(st))

    def _reevaluate_deps(self, names: Sequence[str]) -> None:
        """Mark the seen ones of ``names`` for a new look at their dependencies.

        A seen name without a state yet has no requirers (nothing constrained it), so it
        would not be queued: it only keeps the mark, which its state gets when made. A
        solve marks thousands of names this way (everything that needs libc, say) and
        looks again at a few of them.
        """
        hit = self.seen_names.intersection(names)
        if not hit:
            return
        states = self.names
        stateful = hit & states.keys()
        if len(stateful) != len(hit):
            self.reevaluate_later |= hit - stateful
        if stateful:
            # the dirty queue keeps the order the names come in
            for n in [n for n in names if n in stateful]:
                st0 = states[n]
                st0.reevaluate_deps = True
                self.queue_dirty(st0)

    def reevaluate_reverse_installif(self, st: _Name) -> None:
        for st0 in self.rinstall_if(st):
            if not st0.seen or st0.no_iif:
                continue
            st0.reevaluate_iif = True
            self.queue_dirty(st0)

    def _targets(self, ps: _Pkg, reverse: Callable[[_Name], Sequence[_T]]) -> tuple[_T, ...]:
        """``reverse`` of the package's name, then of each name it provides, in one tuple:
        what apk walks name by name, made once per package (a busybox provides hundreds of
        names, nearly all with empty reverse lists)."""
        out = list(reverse(ps.name))
        for _, st in ps.provides:
            out += reverse(st)
        return tuple(out)

    def reevaluate_reverse_installif_pkg(self, ps: _Pkg) -> None:
        targets = ps.iif_targets
        if targets is None:
            targets = ps.iif_targets = self._targets(ps, self.rinstall_if)
        for st0 in targets:
            if not st0.seen or st0.no_iif:
                continue
            st0.reevaluate_iif = True
            self.queue_dirty(st0)

    def disqualify(self, ps: _Pkg, reason: str) -> None:
        self.reporter.disqualified(ps.cand, reason)
        ps.pkg_selectable = False
        targets = ps.rdep_targets
        if targets is None:
            targets = ps.rdep_targets = self._targets(ps, self.rdepends)
        self._reevaluate_deps(targets)
        self.reevaluate_reverse_installif_pkg(ps)

    def dependency_satisfiable(self, dpkg: _Pkg, dep: Dependency, st: _Name) -> bool:
        if dep.conflict and self.ignore_conflict:
            return True
        owner = dpkg.cand
        if st.locked:
            chosen = st.chosen_pkg
            return provided_by(dep, chosen.cand if chosen else None, st.chosen_version, owner)
        if st.requirers == 0 and provided_by(dep, None, None, owner):
            return True
        for p, ver in self.providers(st):
            if p.pkg_selectable and provided_by(dep, p.cand, ver, owner):
                return True
        return False

    # -- discovery --------------------------------------------------------------------------

    def discover(self, roots: Iterable[str]) -> None:
        """apk's discovery from each of ``roots`` in turn: every name reachable through
        providers, dependencies, provided names and install_if, each numbered (its order
        id) when its walk is done.

        It walks the provider's records by name, making no solver state: a solve discovers
        thousands of names and packages (busybox alone provides hundreds of names) but
        touches a few hundred. The state of a seen name or package, made when the solve
        first asks for it, gets what discovery would have set (:meth:`_new_name`,
        :meth:`_discovered_pkg`); nothing else is set before the solve proper begins.

        With ``closures`` (and no reporter to tell), a root whose :class:`Closure` is known
        is not walked but numbered from it, and a root walked when nothing was seen yet
        leaves its closure there.
        """
        providers_of = self._providers_of
        rinstall_if_of = self.provider.rinstall_if
        seen = self.seen_names
        seen_pkgs = self.seen_pkgs
        order_ids = self.order_ids
        flagged = self.flagged
        reporter = self.reporter if self.tracing else None
        riif_cache: dict[str, Sequence[str]] = {}
        # most names are in no install_if: one membership test instead of a call each
        iif_names = self.provider.install_if_names()
        iif_walked: set[str] = set()
        # how far each package's provided names have been walked: names only ever become
        # seen, so a package providing n names (busybox: hundreds) costs n steps, not n * n
        scanned: dict[int, int] = {}
        counter = self.order_counter
        closures = self.closures if reporter is None else None
        recorded: list[str] | None = None  # the walk of a root on its own, in order
        real: bytearray = bytearray()

        def riif(n: str) -> Sequence[str]:
            r = riif_cache.get(n)
            if r is None:
                r = riif_cache[n] = rinstall_if_of(n) or ()
            return r

        def walk(n: str) -> None:
            nonlocal counter
            seen.add(n)
            if reporter is not None:
                reporter.discovered(n)
            provs = providers_of(n)
            num_virtual = 0
            for cand, _ in provs:
                pkg = cand.package
                k = id(cand)
                if k not in seen_pkgs:
                    seen_pkgs.add(k)
                    for d in pkg.depends:
                        if d.name not in seen:
                            walk(d.name)
                if pkg.name != n:
                    num_virtual += 1
            if n in iif_names:
                for n0 in riif(n):
                    if n0 not in seen:
                        walk(n0)
            for cand, _ in provs:
                pkg = cand.package
                pn = pkg.name
                if pn in iif_names and pn not in iif_walked:
                    for n0 in riif(pn):
                        if n0 not in seen:
                            walk(n0)
                    # all seen now: walking them again (busybox alone provides hundreds of
                    # names, each with it as provider) would find nothing new
                    iif_walked.add(pn)
                provides = pkg.provides
                if provides:
                    k = id(cand)
                    i = scanned.get(k, 0)
                    end = len(provides)
                    while i < end:
                        n0 = provides[i].name
                        i += 1
                        if n0 not in seen:
                            scanned[k] = i
                            walk(n0)
                            i = max(i, scanned[k])
                    scanned[k] = i
            order_flags = 0 if n in flagged else 1 << 31
            if len(provs) != num_virtual:
                order_flags |= 1 << 30
            if recorded is not None:
                recorded.append(n)
                real.append(len(provs) != num_virtual)
            counter += 1
            order_id = order_flags | counter
            # apk keeps this in a signed int: bit 31 makes the id negative, so names without
            # per-name flags are decided after the flagged ones
            order_ids[n] = order_id - (1 << 32) if order_id & (1 << 31) else order_id
            for cand, _ in provs:
                for d in cand.package.install_if:
                    if d.name not in seen:
                        walk(d.name)

        for n in roots:
            if n in seen:
                continue
            known = closures.get(n) if closures is not None else None
            if known is not None and not seen:
                # the first root: every name of its closure, numbered in order at once
                seen.update(known.names)
                top = (1 << 31) - (1 << 32) + counter + 1  # bit 31 set: negative, as apk's int
                order_ids.update(
                    zip(
                        known.names,
                        [top + k + (r << 30) for k, r in enumerate(known.real)],
                        strict=True,
                    )
                )
                for n0 in flagged & seen:  # per-name flags: bit 31 clear
                    k = known.names.index(n0)
                    order_ids[n0] = (known.real[k] << 30) | (counter + k + 1)
                counter += len(known.names)
                continue
            if known is not None:
                for n0, is_real in zip(known.names, known.real, strict=True):
                    if n0 in seen:
                        continue
                    seen.add(n0)
                    order_flags = (0 if n0 in flagged else 1 << 31) | (is_real << 30)
                    counter += 1
                    order_id = order_flags | counter
                    order_ids[n0] = order_id - (1 << 32) if order_id & (1 << 31) else order_id
                continue
            if closures is not None and not seen:
                recorded = []
                real = bytearray()
                walk(n)
                closures[n] = Closure(tuple(recorded), bytes(real))
                recorded = None
                continue
            walk(n)
        self.order_counter = counter

    def _discovered_pkg(self, ps: _Pkg) -> None:
        """What apk's discovery sets in a package it sees (``ps.repos`` is set already)."""
        cand = ps.cand
        ps.pinning_allowed = DEFAULT_PINNING
        ps.pinning_preferred = DEFAULT_PINNING
        available = ps.pkg_available = bool(cand.repos & self.available_repos)
        ps.pkg_selectable = not cand.uninstallable and (
            available
            or cand.cached
            or cand.cached_non_repository
            or cand.package.installed_size == 0
            or cand.installed
        )
        ps.iif_failed = not ps.install_if or bool(self.flags & _AVAILABLE and not available)
        preferred = ps.tag_preferred = cand.package.installed_size == 0 or bool(
            ps.repos & self.default_repos
        )
        ps.tag_ok = preferred or cand.cached_non_repository or cand.installed

    def _discovered_no_iif(self, name: str) -> bool:
        """A seen name's ``no_iif`` after discovery: no provider has an install_if that
        can trigger (:meth:`_discovered_pkg`'s ``iif_failed`` for each)."""
        unavailable_fails = self.flags & _AVAILABLE
        for cand, _ in self._providers_of(name):
            if cand.package.install_if and not (
                unavailable_fails and not cand.repos & self.available_repos
            ):
                return False
        return True

    def name_requirers_changed(self, st: _Name) -> None:
        self.queue_unresolved(st, False)
        self.reevaluate_reverse_installif(st)
        self.queue_dirty(st)

    def inherit(self, ps: _Pkg, parent: _Pkg | None) -> None:
        repos = ps.repos
        if parent is not None:
            ps.solver_flags |= parent.solver_flags_inheritable
            ps.solver_flags_inheritable |= parent.solver_flags_inheritable
            ps.pinning_allowed |= parent.pinning_allowed
        else:
            ps.solver_flags |= self.flags_inherit
            ps.solver_flags_inheritable |= self.flags_inherit
            ps.pinning_allowed |= self.pinning_inherit
            ps.pinning_preferred = self.pinning_inherit
            ps.tag_preferred = bool(repos & self.mask_repos(ps.pinning_preferred))
        if repos & self.mask_repos(ps.pinning_allowed):
            ps.tag_ok = True

    def apply_constraint(self, parent: _Pkg | None, dep: Dependency, st: _Name) -> None:
        if dep.conflict:
            if self.ignore_conflict:
                return
        else:
            st.requirers += 1
            if st.requirers == 1:
                self.name_requirers_changed(st)
        owner = parent.cand if parent else None
        for p0, ver in self.providers(st):
            provided = provided_by(dep, p0.cand, ver, owner)
            if not provided:
                p0.conflicts += 1
            if p0.pkg_selectable and p0.conflicts:
                self.disqualify(p0, "conflicting dependency")
            if provided:
                self.inherit(p0, parent)

    def exclude_non_providers(self, st: _Name, must_provide: _Name, skip_virtuals: bool) -> None:
        if st is must_provide or self.ignore_conflict:
            return
        for p, ver in self.providers(st):
            if p.name is must_provide or not p.pkg_selectable or (skip_virtuals and ver is None):
                continue
            keep = False
            for d, dst in p.provides:
                if dst is must_provide or (skip_virtuals and d.version is None):
                    keep = True
                    break
            if not keep:
                self.disqualify(p, "provides transitivity")

    @staticmethod
    def auto_selectable(p: _Pkg, ver: str | None) -> bool:
        return ver is not None or bool(p.provider_priority) or p.name.requirers > 0

    def reconsider(self, st: _Name) -> None:
        reevaluate_deps = st.reevaluate_deps
        reevaluate_iif = st.reevaluate_iif
        st.reevaluate_deps = False
        st.reevaluate_iif = False
        first: _Pkg | None = None
        num_options = 0
        num_tag_not_ok = 0
        has_iif = False
        no_iif = True
        has_auto = False
        reevaluate = False
        providers = self.providers(st)
        for p, ver in providers:
            p.dependencies_merged = False
            if reevaluate_deps:
                if not p.pkg_selectable:
                    continue
                for d, dst in p.depends:
                    if not self.dependency_satisfiable(p, d, dst):
                        self.disqualify(p, "dependency no longer satisfiable")
                        break
            if not p.pkg_selectable:
                continue
            if reevaluate_iif and not p.iif_triggered and not p.iif_failed:
                p.iif_triggered = True
                p.iif_failed = False
                for d, dst in p.install_if:
                    if not dst.locked:
                        if d.conflict:
                            dst.iif_needed = True
                            self.queue_unresolved(dst, False)
                        p.iif_triggered = False
                        p.iif_failed = False
                        break
                    chosen = dst.chosen_pkg
                    if not provided_by(
                        d, chosen.cand if chosen else None, dst.chosen_version, p.cand
                    ):
                        p.iif_triggered = False
                        p.iif_failed = True
                        break
            if reevaluate_iif and p.iif_triggered:
                for _, dst in p.install_if:
                    self.inherit(p, dst.chosen_pkg)
            has_iif = has_iif or p.iif_triggered
            no_iif = no_iif and p.iif_failed
            has_auto = has_auto or p.iif_triggered
            if st.requirers == 0:
                continue
            # merge common dependencies
            p.dependencies_merged = True
            if first is None:
                first = p
            for d, dst in p.depends:
                if not d.conflict and dst.merge_depends == num_options:
                    dst.merge_depends = num_options + 1
            pname = p.name
            if pname.merge_provides == num_options:
                pname.merge_provides = num_options + 1
                if ver is None:
                    pname.has_virtual_provides = True
            for d, dst in p.provides:
                if dst.merge_provides == num_options:
                    dst.merge_provides = num_options + 1
                    if d.version is None:
                        dst.has_virtual_provides = True
            if not p.tag_ok:
                num_tag_not_ok += 1
            num_options += 1
            if not has_auto and self.auto_selectable(p, ver):
                has_auto = True
        st.has_options = num_options > 1 or num_tag_not_ok > 0
        st.has_iif = has_iif
        st.no_iif = no_iif
        if has_auto != st.has_auto_selectable:
            st.has_auto_selectable = has_auto
            reevaluate = True

        if first is not None:
            for p, _ in providers:
                p.dependencies_used = p.dependencies_merged
            if num_options == 1:
                for d, dst in first.depends:
                    ok = dst.merge_depends == num_options
                    dst.merge_depends = 0
                    if ok:
                        self.apply_constraint(first, d, dst)
            else:
                for _, dst in first.depends:
                    ok = dst.merge_depends == num_options
                    dst.merge_depends = 0
                    if ok and dst.requirers == 0:
                        dst.requirers += 1
                        self.name_requirers_changed(dst)
                        for p0, _ in self.providers(dst):
                            self.inherit(p0, first)
            # provides transitivity
            pname = first.name
            ok = pname.merge_provides == num_options
            pname.merge_provides = 0
            if ok:
                self.exclude_non_providers(pname, st, pname.has_virtual_provides)
            for _, dst in first.provides:
                ok = dst.merge_provides == num_options
                dst.merge_provides = 0
                if ok:
                    self.exclude_non_providers(dst, st, dst.has_virtual_provides)
            pname.has_virtual_provides = False
            for _, dst in first.provides:
                dst.has_virtual_provides = False

        done = True
        get = self.names.get
        seen = self.seen_names
        for n in self.rdepends(st):
            if n in seen:
                st0 = get(n)  # a seen name without a state yet is not locked
                if st0 is None or not st0.locked:
                    done = False
                    break
        st.reverse_deps_done = done
        self.queue_unresolved(st, reevaluate)

    # -- choosing --------------------------------------------------------------------------

    def compare(self, pa: _Pkg, va: str | None, pb: _Pkg | None, vb: str | None) -> int:
        """apk's ``compare_providers``: > 0 when (pa, va) is preferred over (pb, vb)."""
        if pb is None:
            return 1
        flags = pa.solver_flags | pb.solver_flags
        if (
            flags & _LATEST
            and pa.pinning_allowed == DEFAULT_PINNING
            and pb.pinning_allowed == DEFAULT_PINNING
        ):
            r = pa.tag_ok - pb.tag_ok
            if r:
                return r
            if flags & _AVAILABLE:
                r = pa.pkg_available - pb.pkg_available
                if r:
                    return r
            elif flags & _REINSTALL:
                r = pa.pkg_selectable - pb.pkg_selectable
                if r:
                    return r
        else:
            r = pa.pkg_selectable - pb.pkg_selectable
            if r:
                return r
            r = pa.dependencies_used - pb.dependencies_used
            if r:
                return r
            r = pb.conflicts - pa.conflicts
            if r:
                return r
            a_inst = pa.cand.installed
            b_inst = pb.cand.installed
            if (self.performing_preupgrade and not flags & _UPGRADE) or flags & _INSTALLED:
                r = a_inst - b_inst
                if r:
                    return r
            r = pa.tag_ok - pb.tag_ok
            if r:
                return r
            if flags & _AVAILABLE:
                r = pa.pkg_available - pb.pkg_available
                if r:
                    return r
            r = pa.tag_preferred - pb.tag_preferred
            if r:
                return r
            if not flags & (_REMOVE | _UPGRADE) and (
                pa.name is pb.name or va is not None or vb is not None
            ):
                r = a_inst - b_inst
                if r:
                    return r
        # latest by requested name
        if va is not None and vb is not None:
            c = compare_mask(va, vb)
            if c == Op.LT:
                return -1
            if c == Op.GT:
                return 1
        # latest by principal name
        if pa.name is pb.name:
            c = compare_mask(pa.cand.package.version, pb.cand.package.version)
            if c == Op.LT:
                return -1
            if c == Op.GT:
                return 1
        r = pa.provider_priority - pb.provider_priority
        if r:
            return r
        if not flags & _REMOVE:
            r = pa.cand.installed - pb.cand.installed
            if r:
                return r
        r = pa.pkg_selectable - pb.pkg_selectable
        if r:
            return r
        return _ffs(pb.cand.repos) - _ffs(pa.cand.repos)

    def assign(self, st: _Name, p: _Pkg | None, ver: str | None) -> None:
        if st.locked:
            if ver is None and st.chosen_version is None:
                return
            if self.ignore_conflict:
                return
            self.mark_error(p)
            self.mark_error(st.chosen_pkg)
            return
        st.locked = True
        st.chosen_pkg = p
        st.chosen_version = ver
        if st.queue != _NO_QUEUE:
            self._dequeue(st)
        st.dirty = False  # removed from the dirty list
        if p is not None and st.requirers == 0 and p.iif_triggered:
            for d, dst in p.install_if:
                if not dst.locked:
                    self.apply_constraint(p, d, dst)
        if not self.ignore_conflict:
            for p0, v0 in self.providers(st):
                if p0 is p:
                    continue
                if ver is None and v0 is None:
                    continue
                self.disqualify(p0, "conflicting provides")
        self.reevaluate_reverse_deps(st)
        if p is not None:
            self.reevaluate_reverse_installif_pkg(p)
        else:
            self.reevaluate_reverse_installif(st)

    def select(self, st: _Name) -> None:
        best: _Pkg | None = None
        best_ver: str | None = None
        if st.requirers or st.has_iif:
            for p, ver in self.providers(st):
                if st.requirers == 0 and (
                    not p.iif_triggered or not p.tag_ok or not p.pkg_selectable
                ):
                    continue
                if not self.auto_selectable(p, ver):
                    continue
                if self.compare(p, ver, best, best_ver) > 0:
                    best = p
                    best_ver = ver
        if best is not None:
            if not best.pkg_selectable or not best.tag_ok:
                self.mark_error(best)
            self.reporter.selected(st.name, best.cand)
            self.assign(best.name, best, best.cand.package.version)
            for d, dst in best.provides:
                self.assign(dst, best, d.version)
            for d, dst in best.depends:
                self.apply_constraint(best, d, dst)
        else:
            self.reporter.selected(st.name, None)
            self.assign(st, None, None)
            if st.requirers > 0:
                self.errors += 1

    # -- change set ------------------------------------------------------------------------

    def record(self, old: _Pkg | None, new: _Pkg | None) -> None:
        self.changes.append(
            Change(
                old=old.cand if old else None,
                new=new.cand if new else None,
                old_tag=old.cand.repository_tag if old else 0,
                new_tag=self.get_tag(new.pinning_allowed, new.repos) if new else 0,
                reinstall=bool(new.solver_flags & _REINSTALL) if new else False,
            )
        )

    def track_deps_added(self, ps: _Pkg) -> None:
        for d, dst in ps.depends:
            if d.conflict or dst.installed_name is None:
                continue
            dst.installed_name.irequirers += 1

    def track_deps_removed(self, ps: _Pkg) -> None:
        for d, dst in ps.depends:
            iname = dst.installed_name
            if d.conflict or iname is None:
                continue
            # apk's counter is an unsigned short: going below zero wraps and stays "used"
            iname.irequirers = (iname.irequirers - 1) & 0xFFFF
            if iname.irequirers > 0:
                continue
            if dst.installed_pkg is not None:
                self.gen_remove(dst.installed_pkg)

    def check_removal_by_deps(self, ps: _Pkg) -> None:
        if ps.name.irequirers == 0 and ps.name.chosen_pkg is None:
            self.gen_remove(ps)

    def check_install_by_iif(self, st: _Name) -> None:
        p = st.chosen_pkg
        if p is None or not st.seen or st.changeset_processed:
            return
        for d, dst in p.install_if:
            if not d.conflict and not dst.changeset_processed:
                return
            chosen = dst.chosen_pkg
            if not provided_by(d, chosen.cand if chosen else None, dst.chosen_version, p.cand):
                return
        self.gen_change(st)

    def check_removal_by_iif(self, st: _Name) -> None:
        p = st.installed_pkg
        if p is None or st.chosen_pkg is not None:
            return
        if st.changeset_processed or st.changeset_removed:
            return
        for _, dst in p.install_if:
            if dst.changeset_removed and dst.chosen_pkg is None:
                self.check_removal_by_deps(p)
                return

    def by_reverse_iif(self, ps: _Pkg | None, cb: Callable[[_Name], None]) -> None:
        if ps is None:
            return
        for st in self.rinstall_if(ps.name):
            cb(st)
        for _, dst in ps.provides:
            for st in self.rinstall_if(dst):
                cb(st)

    def preprocess(self, st: _Name) -> None:
        if st.changeset_processed:
            return
        st.changeset_processed = True
        ipkg = st.installed_pkg
        if ipkg is not None and (st.chosen_pkg is None or st.chosen_pkg.name is not st):
            self.gen_remove(ipkg)
        for p0, _ in self.providers(st):
            n0 = p0.name
            if n0.installed_pkg is p0 and n0.chosen_pkg is None:
                self.gen_remove(p0)

    def gen_change(self, st: _Name) -> None:
        if st.changeset_processed:
            return
        self.preprocess(st)
        p = st.chosen_pkg
        if p is None or p.in_changeset:
            return
        p.in_changeset = True
        self.preprocess(p.name)
        for _, dst in p.provides:
            self.preprocess(dst)
        old = p.name.installed_pkg
        self.by_reverse_iif(old, self.check_removal_by_iif)
        for d, dst in p.depends:
            self.gen_dep(p, d, dst)
        self.record(old, p)
        self.by_reverse_iif(p, self.check_install_by_iif)
        self.track_deps_added(p)
        if old is not None:
            self.track_deps_removed(old)

    def gen_remove(self, ps: _Pkg) -> None:
        st = ps.name
        if ps.in_changeset or (st.chosen_pkg is not None and st.chosen_pkg.name is st):
            return
        st.changeset_removed = True
        ps.in_changeset = True
        for pkg0, _ in self.reverse_dependencies(ps, installed=True):
            self.gen_remove(pkg0)
        self.by_reverse_iif(ps, self.check_removal_by_iif)
        self.record(ps, None)
        self.track_deps_removed(ps)

    def reverse_dependencies(
        self, ps: _Pkg, *, installed: bool
    ) -> Iterable[tuple[_Pkg, Dependency]]:
        """Installed packages with a dependency that ``ps`` satisfies, in apk's order
        (apk_pkg_foreach_reverse_dependency with APK_DEP_SATISFIES)."""
        lists = [self.rdepends(ps.name)] + [self.rdepends(dst) for _, dst in ps.provides]
        for rdeps in lists:
            for st0 in self._names(rdeps):
                for pkg0, _ in self.providers(st0):
                    if installed and not pkg0.cand.installed:
                        continue
                    for d0, dst0 in pkg0.depends:
                        if _analyze_satisfies(pkg0, d0, dst0, ps):
                            yield pkg0, d0

    def gen_dep(self, parent: _Pkg | None, dep: Dependency, st: _Name) -> None:
        if dep.conflict and self.ignore_conflict:
            return
        chosen = st.chosen_pkg
        owner = parent.cand if parent else None
        if not provided_by(dep, chosen.cand if chosen else None, st.chosen_version, owner):
            self.mark_error(parent)
        self.gen_change(st)
        if chosen is not None and chosen.error:
            self.mark_error(parent)

    def generate_changeset(self, world: Sequence[tuple[Dependency, _Name]]) -> None:
        self.changes = []
        installed = [self.pkg(c) for c in self.provider.installed()]
        for ps in installed:
            ps.name.installed_pkg = ps
            ps.name.installed_name = ps.name
            for d, dst in ps.provides:
                if d.version is not None:
                    dst.installed_name = ps.name
        for ps in installed:
            self.track_deps_added(ps)
        for ps in installed:
            self.check_removal_by_deps(ps)
        for d, dst in world:
            self.gen_dep(None, d, dst)
        for ps in installed:
            self.gen_change(ps.name)

    # -- main loop -------------------------------------------------------------------------

    def run(self, world: Sequence[Dependency], broken: set[int]) -> None:
        self.discover(d.name for i, d in enumerate(world) if i not in broken)
        self.apply_presets()
        resolved = [(d, self.name(d.name)) for d in world]
        self.flags_inherit = self.flags
        for i, (d, st) in enumerate(resolved):
            if i not in broken:
                self.pinning_inherit = 1 << _tag_id(d, self.provider)
                self.apply_constraint(None, d, st)
        self.flags_inherit = 0
        self.pinning_inherit = 0
        while True:
            dirty = self.dirty
            while dirty:
                st = dirty.popleft()
                if not st.dirty:
                    continue
                st.dirty = False
                self.reconsider(st)
            st_next = self.dequeue_next()
            if st_next is None:
                break
            self.select(st_next)
        self.generate_changeset(resolved)


def _tag_id(dep: Dependency, provider: Provider) -> int:
    if dep.tag is None:
        return 0
    return max(provider.tag_id(dep.tag), 0)


def _ffs(mask: int) -> int:
    return (mask & -mask).bit_length()


def _analyze_satisfies(owner: _Pkg, dep: Dependency, dep_name: _Name, target: _Pkg) -> bool:
    """apk_dep_analyze(owner, dep, target) == APK_DEP_SATISFIES."""
    tpkg = target.cand
    if dep_name is target.name:
        return _materialized(dep, tpkg)
    for d, dst in target.provides:
        if dst is not dep_name:
            continue
        return provided_by(dep, tpkg, d.version, owner.cand)
    return False


def _materialized(dep: Dependency, cand: Candidate) -> bool:
    """apk_dep_is_materialized for a package of the dependency's own name."""
    if dep.op == CHECKSUM and dep.version is not None:
        return _identity_of(dep.version) == cand.identity
    return version_match(cand.package.version, _dep_mask(dep), dep.version)


def solve(
    provider: Provider,
    world: Sequence[Dependency],
    flags: int = 0,
    *,
    name_flags: Mapping[str, tuple[int, int]] | None = None,
    force_broken_world: bool = False,
    performing_preupgrade: bool = False,
    reporter: Reporter | None = None,
    closures: MutableMapping[str, Closure] | None = None,
) -> Solution:
    """Decide what to install for ``world`` the way apk-tools does.

    ``flags`` are the run's :class:`SolverFlag` (they apply to world entries and are
    inherited down), ``name_flags`` maps a name to (flags, inheritable flags) set on all its
    providers beforehand (``add -u``, ``upgrade NAME``, ``fix``). The world is sorted by name
    first, as apk does. With ``force_broken_world``, world entries that cannot be satisfied
    are dropped and the solve is repeated (apk's ``--force-broken-world``); note that, like
    apk, the repeat does not keep ``name_flags``.

    ``closures`` is what earlier solves over the same package universe found out
    (:class:`Closure` by root name); this solve uses it and adds to it.
    """
    # The solve allocates tens of thousands of short-lived state objects while the pool's
    # records are alive; the cyclic collector would walk all of them again and again (it
    # doubles the time). Reference counting still frees what it can, and the collector
    # picks up the solver's cycles after.
    enabled = gc.isenabled()
    gc.disable()
    # Discovery and change-set generation recurse like apk's: a level per name or package
    # on the path, so a package providing a thousand names goes a thousand levels deep.
    # These are Python-to-Python calls (frames on the heap, not the C stack); the depth is
    # bounded by the size of the package universe, not by the interpreter's default limit.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
    try:
        return _solve(
            provider,
            world,
            flags,
            name_flags=name_flags,
            force_broken_world=force_broken_world,
            performing_preupgrade=performing_preupgrade,
            reporter=reporter,
            closures=closures,
        )
    finally:
        sys.setrecursionlimit(limit)
        if enabled:
            gc.enable()


def _solve(
    provider: Provider,
    world: Sequence[Dependency],
    flags: int,
    *,
    name_flags: Mapping[str, tuple[int, int]] | None,
    force_broken_world: bool,
    performing_preupgrade: bool,
    reporter: Reporter | None,
    closures: MutableMapping[str, Closure] | None,
) -> Solution:
    reporter = reporter or Reporter()
    ordered = sorted(world, key=lambda d: (d.name.lower(), d.name))
    broken: set[int] = set()
    presets: Mapping[str, tuple[int, int]] = dict(name_flags or {})
    flagged = frozenset(presets)
    while True:
        solver = _Solver(provider, flags, presets, reporter, closures)
        solver.flagged = flagged
        solver.performing_preupgrade = performing_preupgrade
        solver.run(ordered, broken)
        if not (solver.errors and force_broken_world):
            break
        newly = set()
        for i, d in enumerate(ordered):
            if i in broken:
                continue
            st = solver.names[d.name]
            if st.chosen_pkg is None or st.chosen_pkg.error:
                newly.add(i)
        if not newly:
            break  # apk would loop for ever here; nothing more can be dropped
        broken |= newly
        reporter.restarted([ordered[i] for i in sorted(newly)])
        presets = {}
        solver.release()
    chosen = {
        st.name: st.chosen_pkg.cand for st in solver.names.values() if st.chosen_pkg is not None
    }
    solver.release()
    return Solution(
        changes=tuple(solver.changes),
        errors=solver.errors,
        world=tuple(ordered),
        broken=frozenset(broken),
        chosen=chosen,
    )
