"""Why is a package installed? The dependency chains from the world down to it.

apk has no such command; ``alpenglow apk why`` answers it from the installed database and
the world. Starting from the world, every installed package is reached along the shortest
chain of dependencies (a dependency is satisfied by the installed packages that have the
name or provide it, as apk matches them; ``install_if`` rules whose conditions are met
count as a start too). For one package, :func:`explain` then gives one chain per reason it
is there: each world entry it satisfies, its install_if rule, and each installed package
that depends on it, followed up to the world. :func:`format_chain` writes a chain as

    pcre <- nginx[so:libpcre.so.1] <- world[nginx]

which reads: pcre is there for nginx's dependency ``so:libpcre.so.1``, and nginx for the
world entry ``nginx``.

>>> from alpenglow.apk.catalog import Catalog
>>> from alpenglow.apk.database import parse_installed, parse_world
>>> db = parse_installed(
...     "C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\\nP:nginx\\nV:1\\nD:so:libpcre.so.1\\n\\n"
...     "C:Q1BBBBBBBBBBBBBBBBBBBBBBBBBBB=\\nP:pcre\\nV:8\\np:so:libpcre.so.1=1\\n\\n")
>>> cat = Catalog(world=parse_world("nginx\\n"), installed=db)
>>> [format_chain(c) for c in explain(cat, cat.installed_named("pcre"))]
['pcre <- nginx[so:libpcre.so.1] <- world[nginx]']
"""

from __future__ import annotations

import enum
import functools
from collections import deque
from collections.abc import Sequence

from alpenglow._record import record
from alpenglow.apk.catalog import Catalog, Entry, compare_display
from alpenglow.apk.dependency import Dependency

__all__ = ["Chain", "Reason", "Step", "explain", "format_chain"]


def __dir__() -> list[str]:
    return __all__


class Reason(enum.Enum):
    """How a package is pulled in."""

    WORLD = "world"
    """A world entry names it (or something it provides)."""
    DEPENDENCY = "dependency"
    """An installed package depends on it."""
    INSTALL_IF = "install_if"
    """Its install_if rule is met."""


@record
class Step:
    """``entry`` is installed because of ``atoms``: world entries, the dependency of
    package ``by``, or ``entry``'s own install_if rule."""

    entry: Entry
    reason: Reason
    atoms: tuple[Dependency, ...]
    by: Entry | None = None


@record
class Chain:
    """Steps from a package up towards the world: ``steps[i + 1].entry`` is
    ``steps[i].by``. ``complete`` is False when the chain ends at a package that nothing
    in the world requires."""

    steps: tuple[Step, ...]
    complete: bool


class _Graph:
    """The installed packages, reached from the world along shortest chains."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.installed = [e for e in catalog.entries if e.installed is not None]
        self.parent: dict[int, Step] = {}
        self._reach()

    def satisfying(self, dep: Dependency) -> list[Entry]:
        """Installed packages satisfying ``dep`` (by name or a provide)."""
        found: list[Entry] = []
        for prov in self.catalog.providers(dep.name):
            entry = prov.entry
            if entry.installed is None or entry in found:
                continue
            if self.catalog.is_provided(dep, prov):
                found.append(entry)
        return found

    def install_if_met(self, entry: Entry, present: set[int]) -> bool:
        for dep in entry.package.install_if:
            hit = any(e.index in present for e in self.satisfying(dep.without_conflict()))
            if hit == dep.conflict:
                return False
        return True

    def _reach(self) -> None:
        queue: deque[Entry] = deque()
        for dep in self.catalog.world:
            if dep.conflict:
                continue
            for entry in self.satisfying(dep):
                if entry.index not in self.parent:
                    self.parent[entry.index] = Step(entry, Reason.WORLD, (dep,))
                    queue.append(entry)
        while True:
            while queue:
                entry = queue.popleft()
                for dep in entry.package.depends:
                    if dep.conflict:
                        continue
                    for target in self.satisfying(dep):
                        if target.index not in self.parent:
                            step = Step(target, Reason.DEPENDENCY, (dep,), entry)
                            self.parent[target.index] = step
                            queue.append(target)
            present = set(self.parent)
            for entry in self.installed:
                if entry.index in present or not entry.package.install_if:
                    continue
                if self.install_if_met(entry, present):
                    step = Step(entry, Reason.INSTALL_IF, entry.package.install_if)
                    self.parent[entry.index] = step
                    queue.append(entry)
            if not queue:
                return

    def path(self, entry: Entry) -> tuple[list[Step], bool]:
        """The shortest chain from ``entry`` up to the world (without ``entry``'s own
        reasons when it is not reached)."""
        steps: list[Step] = []
        current: Entry | None = entry
        while current is not None:
            step = self.parent.get(current.index)
            if step is None:
                return steps, False
            steps.append(step)
            current = step.by
        return steps, True


def explain(catalog: Catalog, target: Entry) -> list[Chain]:
    """Every reason ``target`` (an installed package) is installed, as chains.

    World entries come first, then its install_if rule, then one chain per installed
    package depending on it (complete and short chains first). Chains that would pass
    through ``target`` again (or an install_if rule it is part of) are left out. An empty
    list means nothing requires it.
    """
    graph = _Graph(catalog)
    chains: list[Chain] = []
    for dep in catalog.world:
        if not dep.conflict and target in graph.satisfying(dep):
            chains.append(Chain((Step(target, Reason.WORLD, (dep,)),), True))
    if target.package.install_if and graph.install_if_met(
        target, {e.index for e in graph.installed}
    ):
        chains.append(Chain((Step(target, Reason.INSTALL_IF, target.package.install_if),), True))
    dependents: list[Chain] = []
    for entry in graph.installed:
        if entry is target:
            continue
        for dep in entry.package.depends:
            if dep.conflict or target not in graph.satisfying(dep):
                continue
            upward, complete = graph.path(entry)
            if any(_through(graph, step, target) for step in upward):
                break
            first = Step(target, Reason.DEPENDENCY, (dep,), entry)
            dependents.append(Chain((first, *upward), complete))
            break

    def order(a: Chain, b: Chain) -> int:
        ka = (not a.complete, len(a.steps))
        kb = (not b.complete, len(b.steps))
        if ka != kb:
            return -1 if ka < kb else 1
        by_a, by_b = a.steps[0].by, b.steps[0].by
        assert by_a is not None
        assert by_b is not None
        return compare_display(by_a, by_b)

    chains += sorted(dependents, key=functools.cmp_to_key(order))
    return chains


def _through(graph: _Graph, step: Step, target: Entry) -> bool:
    """Whether ``step`` holds only because ``target`` is installed (a circular reason)."""
    if step.entry is target:
        return True
    if step.reason is Reason.INSTALL_IF:
        return any(target in graph.satisfying(a) for a in step.atoms if not a.conflict)
    return False


def _label(entry: Entry, versions: bool) -> str:
    return str(entry) if versions else entry.package.name


def _atoms(atoms: Sequence[Dependency]) -> str:
    return " ".join(str(a) for a in atoms)


def format_chain(chain: Chain, *, versions: bool = False) -> str:
    """One line: ``pkg <- parent[atom] <- ... <- world[atom]`` (``install_if[...]`` when
    a rule pulled it in; ``(X is not required by world)`` when the chain stops short)."""
    parts = [_label(chain.steps[0].entry, versions)]
    for step in chain.steps:
        if step.reason is Reason.WORLD:
            parts.append(f"world[{_atoms(step.atoms)}]")
        elif step.reason is Reason.INSTALL_IF:
            parts.append(f"install_if[{_atoms(step.atoms)}]")
        else:
            assert step.by is not None
            parts.append(f"{_label(step.by, versions)}[{_atoms(step.atoms)}]")
    text = " <- ".join(parts)
    if not chain.complete:
        last = chain.steps[-1].by
        if last is not None:
            text += f" ({_label(last, versions)} is not required by world)"
    return text
