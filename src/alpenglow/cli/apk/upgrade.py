"""``apk upgrade``: upgrade the installed packages (all of them, or the named ones).

Before the main transaction apk "preupgrades": it first upgrades the package that owns the
running apk binary, and the ``--preupgrade-depends`` names, on their own (the
``Preupgrading:`` block). ``--prune`` drops world entries no repository offers,
``--available`` (``-a``) replaces packages that are no longer in any repository, ``--ignore``
keeps the named packages as they are.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from alpenglow.apk.dependency import Dependency, parse
from alpenglow.apk.solver import SolverFlag, version_match
from alpenglow.apk.version import ANY, CHECKSUM, Op
from alpenglow.cli.apk import ApkContext, Applet, add_commit_options
from alpenglow.cli.apk._session import (
    Failed,
    Session,
    check_world,
    commit,
    exit_status,
    open_session,
    solve_and_commit,
    solve_session,
)
from alpenglow.errors import InvalidDependency

if TYPE_CHECKING:
    import argparse

__all__ = ["APPLET"]

_PREUPGRADE_TOKEN = "laiNgeiThu6ip1Te"


def _configure(parser: argparse.ArgumentParser) -> None:
    add_commit_options(parser)
    g = parser.add_argument_group("upgrade options")
    g.add_argument("-a", "--available", action="store_true", help="replace unavailable packages")
    g.add_argument("--ignore", action="store_true", help="keep the named packages as they are")
    g.add_argument("-l", "--latest", action="store_true", help="prefer the newest versions")
    g.add_argument("--prune", action="store_true", help="drop world entries nothing provides")
    for flag in ("preupgrade", "self-upgrade"):
        g.add_argument(
            f"--{flag}",
            dest="preupgrade",
            action="store_const",
            const=True,
            help="upgrade apk and --preupgrade-depends first (default)",
        )
        g.add_argument(f"--no-{flag}", dest="preupgrade", action="store_const", const=False)
    for flag in ("preupgrade-only", "self-upgrade-only"):
        g.add_argument(
            f"--{flag}", dest="preupgrade_only", action="store_true", help="only preupgrade"
        )
    g.add_argument(
        "--preupgrade-depends",
        action="append",
        default=[],
        metavar="DEPS",
        help="also preupgrade these (repeatable)",
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE")


def _self_owner(session: Session) -> str | None:
    """The installed package owning the running apk: ``/proc/self/exe`` in the root's
    database, or the target of the link (apk's ``apk_query_who_owns``)."""
    from alpenglow.apk.database import find_owner

    owner = find_owner(session.installed, "/proc/self/exe")
    if owner is None:
        try:
            target = os.readlink("/proc/self/exe")
        except OSError:
            target = ""
        if target.startswith("/"):
            owner = find_owner(session.installed, target)
    return owner.package.name if owner is not None else None


def _deps_add(deps: list[Dependency], dep: Dependency) -> None:
    for i, d in enumerate(deps):
        if d.name == dep.name:
            deps[i] = dep
            return
    deps.append(dep)


def _preupgrade(session: Session, flags: int, only: bool) -> int:
    """apk_do_preupgrade: returns < 0 to stop, else 0."""
    out = session.out
    pool = session.pool
    deps: list[Dependency] = []
    owner = _self_owner(session)
    if owner is not None:
        deps.append(Dependency(owner))
    for text in session.ctx.opts.preupgrade_depends:
        warn = False
        for atom in text.split():
            try:
                dep = parse(atom)
            except InvalidDependency:
                warn = True
                break
            _deps_add(deps, dep)
        if warn:
            out.warn(f"Ignored invalid preupgrade dependencies from: {text}")
    name_flags: dict[str, tuple[int, int]] = {}
    for dep in deps:
        installed = next(
            (c for c, _ in pool.providers(dep.name) if c.package.name == dep.name and c.installed),
            None,
        )
        if installed is None:
            continue
        mask = int(dep.op) | (Op.CONFLICT if dep.conflict else 0)
        if dep.op == CHECKSUM:
            continue
        if not version_match(installed.package.version, mask, dep.version):
            continue
        for cand, _ in pool.providers(dep.name):
            if cand.repos == 0:
                continue
            if not version_match(cand.package.version, Op.GT, installed.package.version):
                continue
            name_flags[dep.name] = (flags, 0)
            break
    if not name_flags:
        return 0
    solution = solve_session(
        session, session.world, 0, name_flags=name_flags, performing_preupgrade=True
    )
    if solution.errors:
        out.warn("Failed to perform initial preupgrade, continuing with a full upgrade.")
        return 0
    if not solution.num_changes:
        return 0
    if not only and session.simulate:
        out.warn("This simulation might not reliable as a preupgrade is available.")
        return 0
    out.msg("Preupgrading:")
    r = commit(session, solution, performing_preupgrade=not only)
    if r < 0 or only:
        return r
    out.msg("Continuing with the main upgrade transaction:")
    return 0


def _run(ctx: ApkContext) -> int:
    try:
        session = open_session(ctx)
    except Failed as exc:
        return exc.status
    out = session.out
    opts = ctx.opts
    if not check_world(session, session.world):
        out.err("Not continuing with upgrade due to missing repository tags.")
        return 1
    force_missing = getattr(opts, "force_missing_repositories", False) or getattr(
        opts, "force", False
    )
    if (session.unavailable or session.stale) and not force_missing:
        out.err(
            "Not continuing due to stale/unavailable repositories. "
            "Use --force-missing-repositories to continue."
        )
        return 1
    flags = SolverFlag.UPGRADE
    if opts.available:
        flags |= SolverFlag.AVAILABLE
    if opts.latest:
        flags |= SolverFlag.LATEST
    preupgrade = opts.preupgrade
    if preupgrade is None:
        preupgrade = (
            os.environ.get("APK_PREUPGRADE_TOKEN", os.environ.get("APK_SELFUPGRADE_TOKEN"))
            != _PREUPGRADE_TOKEN
        )
    args = [a for a in opts.packages if a]
    if (opts.preupgrade_only or not session.root_set) and preupgrade and not args:
        r = _preupgrade(session, flags, opts.preupgrade_only)
        if r:
            return exit_status(r)
    if opts.preupgrade_only:
        return 0
    world = list(session.world)
    if opts.available:
        world = [
            Dependency(d.name, ANY, None, d.conflict, d.tag) if d.op == CHECKSUM else d
            for d in world
        ]
    if opts.prune:
        pool = session.pool
        world = [
            d
            for d in world
            if any(c.repos & pool.available_repos for c, _ in pool.providers(d.name))
        ]
    name_flags: dict[str, tuple[int, int]] = {}
    if args:
        from alpenglow.cli.apk.del_ import matching_names

        if not opts.ignore:
            flags &= ~SolverFlag.UPGRADE
        errors = 0
        for pattern, name in matching_names(session, args):
            if name is None:
                out.err(f"Package '{pattern}' not found")
                errors += 1
                continue
            old = name_flags.get(name, (0, 0))
            mark = SolverFlag.INSTALLED if opts.ignore else SolverFlag.UPGRADE
            name_flags[name] = (old[0] | mark, old[1])
        if errors:
            return exit_status(errors)
    return exit_status(solve_and_commit(session, world, flags, name_flags=name_flags))


APPLET = Applet(
    name="upgrade",
    summary="Install upgrades available from repositories",
    configure=_configure,
    run=_run,
)
