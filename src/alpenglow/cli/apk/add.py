"""``apk add``: add dependencies to the world and install what they need.

``-t/--virtual NAME[=VERSION]`` bundles the arguments into a virtual package ``NAME`` that
only this run knows (apk records it in the installed database); ``-u`` and ``-l`` ask for
the newest versions of the named packages and what they pull in.
"""

from __future__ import annotations

import hashlib
import os
import time

from alpenglow._typing import TYPE_CHECKING
from alpenglow.apk.dependency import Dependency, parse
from alpenglow.apk.solver import SolverFlag
from alpenglow.apk.version import ANY, Op
from alpenglow.cli.apk import ApkContext, Applet, add_commit_options
from alpenglow.cli.apk._session import Failed, exit_status, open_session, solve_and_commit
from alpenglow.errors import InvalidDependency

if TYPE_CHECKING:
    import argparse

__all__ = ["APPLET"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_commit_options(parser)
    g = parser.add_argument_group("add options")
    g.add_argument("-l", "--latest", action="store_true", help="prefer the newest versions")
    g.add_argument("-u", "--upgrade", action="store_true", help="upgrade the named packages")
    g.add_argument("--no-chown", action="store_true", help="do not change file owners")
    g.add_argument("--usermode", action="store_true", help="install as an ordinary user")
    g.add_argument(
        "-t", "--virtual", metavar="NAME", help="group the arguments under a virtual package"
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE")


def _deps_add(deps: list[Dependency], dep: Dependency) -> None:
    """apk_deps_add: replace the entry with the same name in place, else append."""
    for i, d in enumerate(deps):
        if d.name == dep.name:
            deps[i] = dep
            return
    deps.append(dep)


def _virtual_identity(name: str, version: str) -> str:
    import base64

    digest = hashlib.sha1(
        os.getpid().to_bytes(4, "little") + name.encode() + b"\0" + version.encode()
    ).digest()
    return "Q1" + base64.b64encode(digest).decode()


def _run(ctx: ApkContext) -> int:
    try:
        session = open_session(ctx)
    except Failed as exc:
        return exc.status
    out = session.out
    opts = ctx.opts
    flags = (SolverFlag.LATEST if opts.latest else 0) | (SolverFlag.UPGRADE if opts.upgrade else 0)
    world = list(session.world)
    name_flags: dict[str, tuple[int, int]] = {}
    virt: Dependency | None = None
    virt_deps: list[Dependency] = []
    if opts.virtual is not None:
        spec = opts.virtual
        try:
            virt = parse(spec)
        except InvalidDependency:
            virt = None
        if virt is None or virt.conflict:
            out.err(f"{spec}: bad package specifier")
            return 1
        if virt.name[0] != "." and _non_repository_refused(session):
            return 1
        if virt.op == ANY and virt.version is None:
            version = time.strftime("%Y%m%d.%H%M%S", time.gmtime())
            virt = Dependency(virt.name, Op.EQ, version, False, virt.tag)
        elif virt.op != Op.EQ or virt.version is None:
            out.err(f"{spec}: bad package specifier")
            return 1
        if not opts.packages:
            out.warn("creating empty virtual package")
    for arg in [a for a in opts.packages if a]:
        if "." in arg and os.path.exists(arg):
            out.err(f"{arg}: adding package files is not supported yet")
            return 1
        try:
            dep = parse(arg)
            if virt is not None and dep.tag is not None:
                raise InvalidDependency("tag not allowed", arg, 0)
        except InvalidDependency:
            kind, fmt = (
                ("package", "name([<>~=]version)")
                if virt is not None
                else ("world", "name(@tag)([<>~=]version)")
            )
            out.err(f"'{arg}' is not a valid {kind} dependency, format is {fmt}")
            return 1
        if dep.tag is not None:
            session.pool.tag_id(dep.tag)
        if virt is not None:
            _deps_add(virt_deps, dep)
        else:
            _deps_add(world, dep)
            _or_flags(name_flags, dep.name, flags)
    if virt is not None:
        from alpenglow.apk.index import Package

        assert virt.version is not None
        session.pool.add_virtual(
            Package(
                name=virt.name,
                version=virt.version,
                checksum=_virtual_identity(virt.name, virt.version),
                arch="noarch",
                description="virtual meta package",
                depends=tuple(virt_deps),
            )
        )
        _deps_add(world, virt)
        _or_flags(name_flags, virt.name, flags)
    return exit_status(solve_and_commit(session, world, 0, name_flags=name_flags))


def _or_flags(table: dict[str, tuple[int, int]], name: str, flags: int) -> None:
    old = table.get(name, (0, 0))
    table[name] = (old[0] | flags, old[1] | flags)


def _non_repository_refused(session: object) -> bool:
    from alpenglow.cli.apk._session import Session

    assert isinstance(session, Session)
    opts = session.ctx.opts
    if getattr(opts, "force_non_repository", False) or getattr(opts, "force", False):
        return False
    if session.cache_active or not getattr(opts, "root_tmpfs", None):
        return False
    session.out.err(
        "You tried to add a non-repository package to system, but it would be lost on next "
        "reboot. Enable package caching (apk cache --help) or use --force-non-repository "
        "if you know what you are doing."
    )
    return True


APPLET = Applet(
    name="add",
    summary="Add or update constraints to world and commit changes",
    configure=_configure,
    run=_run,
)
