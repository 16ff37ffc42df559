"""apk's "unable to select packages" report, built from a failed :class:`Solution`.

Like apk, the report walks the change set the solver produced: every package it would have
installed is checked for problems (uninstallable, masked by pinning or ``--no-network``,
conflicting with another chosen package, breaking a dependency) and every dependency that
nothing satisfies is listed with who requires it. The layout (labels, two and four space
indents, wrapping at 50 columns) is apk's; :func:`report` returns the text to print after
``ERROR: unable to select packages:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cmp_to_key
from typing import TYPE_CHECKING

from alpenglow.apk.changeset import Wrapper
from alpenglow.apk.solver import Candidate, Solution, provided_by, version_match
from alpenglow.apk.version import CHECKSUM, Op, compare, is_valid, op_string

if TYPE_CHECKING:
    from alpenglow.apk.dependency import Dependency
    from alpenglow.apk.pool import Pool

__all__ = ["dep_text", "report"]


def __dir__() -> list[str]:
    return __all__


_PRESENT = 0x80000000
_MISSING = 0x40000000
_VIRTUAL_ONLY = 0x20000000
_INSTALLIF = 0x10000000
_COUNT = 0x0000FFFF

_SATISFIES = 2
_CONFLICTS = 4


def dep_text(dep: Dependency) -> str:
    """apk's ``DEP_FMT``: ``!`` name op version, without the repository tag."""
    text = ("!" if dep.conflict else "") + dep.name
    if dep.version is not None:
        text += op_string(dep.op) + dep.version
    return text


def _mask(dep: Dependency) -> int:
    return int(dep.op) | (Op.CONFLICT if dep.conflict else 0)


def _analyze(owner: Candidate | None, dep: Dependency, pkg: Candidate) -> int:
    """apk_dep_analyze: SATISFIES, CONFLICTS or 0 (irrelevant)."""
    if dep.name == pkg.package.name:
        if dep.op == CHECKSUM and dep.version is not None:
            from alpenglow.apk.solver import identity_key

            ok = identity_key(dep.version) == pkg.identity
        else:
            ok = version_match(pkg.package.version, _mask(dep), dep.version)
        return _SATISFIES if ok else _CONFLICTS
    for p in pkg.package.provides:
        if p.name != dep.name:
            continue
        return _SATISFIES if provided_by(dep, pkg, p.version, owner) else _CONFLICTS
    return 0


def _display_cmp(a: Candidate, b: Candidate) -> int:
    na, nb = a.package.name, b.package.name
    if na != nb:
        ka, kb = (na.lower(), na), (nb.lower(), nb)
        return -1 if ka < kb else 1
    return compare(a.package.version, b.package.version)


class _Report:
    def __init__(self, pool: Pool, solution: Solution, width: int) -> None:
        self.pool = pool
        self.world = solution.world
        self.out = Wrapper(width)
        self.label: str | None = None
        self.num_labels = 0
        self.marked: set[int] = set()
        self.pkg_state: dict[int, int] = {}
        self.name_state: dict[str, int] = {}

    # -- output ----------------------------------------------------------------------------

    def label_start(self, text: str) -> None:
        if self.label is not None:
            self.out.line(f"  {self.label}:\n")
            self.label = None
            self.num_labels += 1
        if not self.out.x:
            self.out.group(f"    {text}")

    def label_end(self) -> None:
        self.out.close()

    # -- discovery -------------------------------------------------------------------------

    def is_marked(self, cand: Candidate) -> bool:
        return id(cand) in self.marked

    def discover_deps(self, deps: Sequence[Dependency]) -> None:
        for d in deps:
            if not d.conflict:
                self.discover_name(d.name, _PRESENT)

    def discover_name(self, name: str, pkg_state: int) -> None:
        for cand, _ in self.pool.providers(name):
            if not self.is_marked(cand):
                continue
            state = pkg_state
            if (
                state in (_PRESENT, _INSTALLIF)
                and not cand.package.provider_priority
                and not _is_concrete(cand, name)
            ):
                state = _VIRTUAL_ONLY
            key = id(cand)
            if self.pkg_state.get(key, 0) & state:
                continue
            self.pkg_state[key] = self.pkg_state.get(key, 0) | state
            pname = cand.package.name
            self.name_state[pname] = self.name_state.get(pname, 0) | state
            for d in cand.package.provides:
                dep_state = state
                if dep_state == _INSTALLIF and d.version is None:
                    dep_state = _VIRTUAL_ONLY
                self.name_state[d.name] = self.name_state.get(d.name, 0) | dep_state
            self.discover_deps(cand.package.depends)
            if state in (_PRESENT, _INSTALLIF):
                self.discover_reverse_iif(pname)
                for d in cand.package.provides:
                    self.discover_reverse_iif(d.name)

    def discover_reverse_iif(self, name: str) -> None:
        for name0 in self.pool.rinstall_if(name):
            for cand, _ in self.pool.providers(name0):
                if not self.is_marked(cand) or not cand.package.install_if:
                    continue
                ok = True
                for d in cand.package.install_if:
                    present = bool(self.name_state.get(d.name, 0) & (_PRESENT | _INSTALLIF))
                    if d.conflict == present:
                        ok = False
                        break
                if ok:
                    self.discover_name(cand.package.name, _INSTALLIF)
                    for d in cand.package.provides:
                        self.discover_name(d.name, _INSTALLIF)

    # -- analysis --------------------------------------------------------------------------

    def pinning_errors(self, cand: Candidate, tag: int) -> None:
        pool = self.pool
        if cand.installed:
            return
        if not cand.repos & pool.available_repos and not cand.cached:
            self.label_start("masked in:")
            self.out.item("--no-network")
        elif not cand.repos and cand.cached:
            self.label_start("masked in:")
            self.out.item("cache")
        else:
            allowed = 0
            tag_repos = pool.tag_repos
            for i in (0, tag):
                if i < len(tag_repos):
                    allowed |= tag_repos[i]
            if cand.repos & allowed:
                return
            for i, repos in enumerate(tag_repos):
                if cand.repos & repos:
                    self.label_start("masked in:")
                    self.out.item(pool.tag_name(i))
        self.label_end()

    def conflicts(self, cand: Candidate) -> None:
        for p, _ in self.pool.providers(cand.package.name):
            if p is cand or not self.is_marked(p):
                continue
            self.label_start("conflicts:")
            self.out.item(str(p))
        for d in cand.package.provides:
            once = True
            for p, ver in self.pool.providers(d.name):
                if not self.is_marked(p):
                    continue
                if d.version is None and ver is None:
                    continue
                if once and p is cand and ver == d.version:
                    once = False
                    continue
                self.label_start("conflicts:")
                self.out.item(f"{p}[{dep_text(d)}]")
        self.label_end()

    def print_mdeps(self, label: str, found: list[tuple[Candidate | None, Dependency]]) -> None:
        if not found:
            return
        self.label_start(label)

        def order(
            a: tuple[Candidate | None, Dependency], b: tuple[Candidate | None, Dependency]
        ) -> int:
            if a[0] is not None and b[0] is not None:
                r = _display_cmp(a[0], b[0])
                if r:
                    return r
            return _mask(a[1]) - _mask(b[1])

        for owner, dep in sorted(found, key=cmp_to_key(order)):
            if owner is None:
                tag = self.pool.tag_name(self.pool.tag_id(dep.tag)) if dep.tag else ""
                self.out.item(f"world[{dep_text(dep)}{tag}]")
            else:
                self.out.item(f"{owner}[{dep_text(dep)}]")

    def print_deps(self, cand: Candidate, match: int) -> None:
        label = "satisfies:" if match & _SATISFIES else "breaks:"
        found: list[tuple[Candidate | None, Dependency]] = [
            (None, d) for d in self.world if _analyze(None, d, cand) & match
        ]
        self.print_mdeps(label, found)
        found = []
        visited: set[int] = set()
        names = [cand.package.name] + [d.name for d in cand.package.provides]
        for name in names:
            for name0 in self.pool.rdepends(name):
                for pkg0, _ in self.pool.providers(name0):
                    if not self.is_marked(pkg0) or id(pkg0) in visited:
                        continue
                    visited.add(id(pkg0))
                    for d0 in pkg0.package.depends:
                        if _analyze(pkg0, d0, cand) & match:
                            found.append((pkg0, d0))
        self.print_mdeps(label, found)
        self.label_end()

    def broken_deps(self, deps: Sequence[Dependency], label: str) -> None:
        for d in deps:
            if d.version is None or d.op == CHECKSUM or is_valid(d.version):
                continue
            self.label_start(label)
            self.out.item(dep_text(d))
        self.label_end()

    def analyze_package(self, cand: Candidate, tag: int) -> None:
        self.label = str(cand)
        pkg = cand.package
        if cand.uninstallable:
            self.label_start("error:")
            self.out.item("uninstallable")
            self.label_end()
            if not self.pool.arch_compatible(pkg.arch):
                self.label_start("arch:")
                self.out.item(pkg.arch)
                self.label_end()
            self.broken_deps(pkg.depends, "depends:")
            self.broken_deps(pkg.provides, "provides:")
            self.broken_deps(pkg.install_if, "install_if:")
        self.pinning_errors(cand, tag)
        self.conflicts(cand)
        self.print_deps(cand, _CONFLICTS)
        if self.label is None:
            self.print_deps(cand, _SATISFIES)

    def analyze_missing_name(self, name: str) -> None:
        providers = self.pool.providers(name)
        if providers:
            self.label = f"{name} (virtual)"
            self.label_start("note:")
            self.out.words("please select one of the 'provided by' packages explicitly")
            self.label_end()
            self.label_start("provided by:")
            counts: dict[str, int] = {}
            for p, _ in providers:
                counts[p.package.name] = counts.get(p.package.name, 0) + 1
            for p, _ in providers:
                pname = p.package.name
                refs = counts.get(pname, 0)
                if refs == len(self.pool.providers(pname)):
                    self.out.item(pname)
                    counts[pname] = 0
                elif refs > 0:
                    self.out.item(str(p))
                    counts[pname] = refs - 1
            self.label_end()
        else:
            self.label = f"{name} (no such package)"
        self.label_start("required by:")
        for d in self.world:
            if d.name != name or d.conflict:
                continue
            tag = self.pool.tag_name(self.pool.tag_id(d.tag)) if d.tag else ""
            self.out.item(f"world[{dep_text(d)}{tag}]")
        visited: set[int] = set()
        for name0 in self.pool.rdepends(name):
            done = False
            for p0, _ in self.pool.providers(name0):
                if not self.is_marked(p0) or id(p0) in visited:
                    continue
                visited.add(id(p0))
                for d0 in p0.package.depends:
                    if d0.name != name or d0.conflict:
                        continue
                    self.out.item(f"{p0}[{dep_text(d0)}]")
                    done = True
                    break
                if done:
                    break
        self.label_end()

    def analyze_deps(self, deps: Sequence[Dependency]) -> None:
        for d in deps:
            if d.conflict:
                continue
            state = self.name_state.get(d.name, 0)
            if state & (_INSTALLIF | _PRESENT | _MISSING):
                continue
            self.name_state[d.name] = state | _MISSING
            self.analyze_missing_name(d.name)


def _is_concrete(cand: Candidate, name: str) -> bool:
    if cand.package.name == name:
        return True
    return any(d.name == name and d.version is not None for d in cand.package.provides)


def report(pool: Pool, solution: Solution, *, width: int = 50) -> str:
    """The indented problem list apk prints after ``ERROR: unable to select packages:``."""
    rep = _Report(pool, solution, width)
    news = [(c.new, c.new_tag) for c in solution.changes if c.new is not None]
    rep.marked = {id(n) for n, _ in news}
    rep.discover_deps(solution.world)
    rep.analyze_deps(solution.world)
    for cand, tag in news:
        rep.analyze_package(cand, tag)
        rep.analyze_deps(cand.package.depends)
    if not rep.num_labels:
        rep.out.line("Huh? Error reporter did not find the broken constraints.\n")
    return rep.out.end()
