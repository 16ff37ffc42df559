"""``apk del``: remove dependencies from the world, and the packages nothing needs any more.

With ``-r/--rdepends`` the installed packages that depend on the named ones go too. When a
named package stays because something else still needs it, apk says who (the "World
updated, but the following packages are not removed due to:" notice).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from alpenglow.apk.changeset import Wrapper
from alpenglow.apk.dependency import Dependency
from alpenglow.apk.solver import Candidate, SolverFlag
from alpenglow.cli.apk import ApkContext, Applet, add_commit_options
from alpenglow.cli.apk._session import (
    Failed,
    Session,
    commit,
    exit_status,
    open_session,
    print_errors,
    solve_session,
)

if TYPE_CHECKING:
    import argparse

__all__ = ["APPLET", "matching_names", "reverse_dependencies"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_commit_options(parser)
    g = parser.add_argument_group("del options")
    g.add_argument(
        "-r", "--rdepends", action="store_true", help="also remove what depends on the packages"
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE")


def matching_names(session: Session, patterns: list[str]) -> list[tuple[str, str | None]]:
    """apk_db_foreach_matching_name: (pattern, name or None) in apk's order. With a ``*``
    anywhere, every known name matching any pattern (case-insensitively), in apk's
    name-table order."""
    pool = session.pool
    if any("*" in p for p in patterns):
        found: list[tuple[str, str | None]] = []
        for name in pool.all_names():
            for p in patterns:
                if fnmatchcase(name.lower(), p.lower()):
                    found.append((p, name))
                    break
        return found
    return [(p, p if pool.has_name(p) else None) for p in patterns]


def sorted_names(session: Session, patterns: list[str]) -> list[tuple[str, str | None]]:
    """apk_db_foreach_sorted_name: missing names first (in argument order, as None), then
    the names in display order."""
    pool = session.pool
    out: list[tuple[str, str | None]] = []
    names: list[tuple[str, str]] = []
    walk_all = False
    for p in patterns:
        if "*" in p:
            walk_all = True
            continue
        if not pool.has_name(p):
            out.append((p, None))
            continue
        if not walk_all:
            names.append((p, p))
    if walk_all:
        names = []
        for name in sorted(pool.all_names(), key=lambda n: (n.lower(), n)):
            for p in patterns:
                if fnmatchcase(name.lower(), p.lower()):
                    names.append((p, name))
                    break
    else:
        names.sort(key=lambda m: (m[1].lower(), m[1]))
    return out + [(p, n) for p, n in names]


def installed_of(session: Session, name: str) -> Candidate | None:
    """apk_pkg_get_installed: the installed package called ``name``."""
    for cand, _ in session.pool.providers(name):
        if cand.package.name == name and cand.installed:
            return cand
    return None


def _analyze_satisfies(owner: Candidate, dep: Dependency, target: Candidate) -> bool:
    from alpenglow.apk.problems import _analyze

    return _analyze(owner, dep, target) == 2


def reverse_dependencies(
    session: Session,
    pkg: Candidate,
    *,
    installed: bool = False,
    marked: set[int] | None = None,
    visited: set[int] | None = None,
    one_dep_only: bool = False,
) -> list[tuple[Candidate, Dependency]]:
    """apk_pkg_foreach_reverse_dependency with APK_DEP_SATISFIES."""
    pool = session.pool
    out = []
    for name in [pkg.package.name] + [d.name for d in pkg.package.provides]:
        for name0 in pool.rdepends(name):
            for pkg0, _ in pool.providers(name0):
                if installed and not pkg0.installed:
                    continue
                if marked is not None and id(pkg0) not in marked:
                    continue
                if visited is not None:
                    if id(pkg0) in visited:
                        continue
                    visited.add(id(pkg0))
                for d0 in pkg0.package.depends:
                    if _analyze_satisfies(pkg0, d0, pkg):
                        out.append((pkg0, d0))
                        if one_dep_only:
                            break
    return out


def _deps_del(world: list[Dependency], name: str) -> None:
    """apk_deps_del: the last entry takes the removed one's place."""
    for i, d in enumerate(world):
        if d.name == name:
            world[i] = world[-1]
            world.pop()
            return


def _run(ctx: ApkContext) -> int:
    try:
        session = open_session(ctx)
    except Failed as exc:
        return exc.status
    out = session.out
    args = [a for a in ctx.opts.packages if a]
    recursive = bool(ctx.opts.rdepends)
    orig_world = list(session.world)
    world = list(session.world)
    name_flags: dict[str, tuple[int, int]] = {}
    errors = 0
    visited: set[int] = set()

    def delete_pkg(pkg0: Candidate) -> None:
        _deps_del(world, pkg0.package.name)
        name_flags[pkg0.package.name] = (SolverFlag.REMOVE, 0)
        if recursive:
            for d in pkg0.package.provides:
                _deps_del(world, d.name)
            for rpkg, _ in reverse_dependencies(
                session, pkg0, installed=True, visited=visited, one_dep_only=True
            ):
                delete_pkg(rpkg)

    for pattern, name in matching_names(session, args) if args else []:
        if name is None:
            out.err(f"No such package: {pattern}")
            errors += 1
            continue
        pkg = installed_of(session, name)
        if pkg is not None:
            delete_pkg(pkg)
        else:
            _deps_del(world, name)
    if errors:
        return exit_status(errors)

    solution = solve_session(session, world, 0, name_flags=name_flags)
    if solution.errors:
        print_errors(session, solution)
        return exit_status(solution.errors)
    if out.verbosity >= 1 and args:
        _not_removed_notice(session, solution.changes, orig_world, solution.world, args)
    return exit_status(commit(session, solution))


def _not_removed_notice(
    session: Session,
    changes: object,
    orig_world: list[Dependency],
    world: tuple[Dependency, ...],
    args: list[str],
) -> None:
    out = session.out
    pool = session.pool
    was_conflict = {d.name for d in orig_world if d.conflict}
    in_world = {d.name for d in world if not d.conflict}
    marked = {id(c.new) for c in changes if c.new is not None}  # type: ignore[attr-defined]
    verbose = out.verbosity >= 2
    header = False
    text: list[str] = []
    for _, name in sorted_names(session, args):
        if name is None or name in was_conflict:
            continue
        w = Wrapper(out.width)
        visited: set[int] = set()

        def show(
            pkg0: Candidate, w: Wrapper = w, visited: set[int] = visited, name: str = name
        ) -> None:
            nonlocal header
            if not header:
                text.append("World updated, but the following packages are not removed due to:\n")
                header = True
            if not w.indent:
                w.group(f"  {name}:")
            if pkg0.package.name in in_world:
                w.item(pkg0.package.name)
            for d in pkg0.package.provides:
                if d.name in in_world:
                    w.item(d.name)
            for rpkg, _ in reverse_dependencies(
                session, pkg0, marked=marked, visited=visited, one_dep_only=True
            ):
                show(rpkg)
            for d in pkg0.package.install_if:
                for p, _ in pool.providers(d.name):
                    if id(p) not in marked or id(p) in visited:
                        continue
                    visited.add(id(p))
                    if not verbose and p.package.name not in in_world:
                        continue
                    show(p)

        for p, _ in pool.providers(name):
            if id(p) in marked:
                show(p)
        text.append(w.end())
    if header:
        text.append("\n")
    if text:
        out.write("".join(text))


APPLET = Applet(
    name="del",
    summary="Remove constraints from world and commit changes",
    configure=_configure,
    run=_run,
)
