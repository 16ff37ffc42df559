"""``apk fix``: reinstall (or with ``-u`` upgrade) the named packages, or every installed
package marked broken; ``-d`` does the same for their dependencies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from alpenglow.apk.solver import SolverFlag
from alpenglow.cli.apk import ApkContext, Applet, add_commit_options
from alpenglow.cli.apk._session import Failed, exit_status, open_session, solve_and_commit

if TYPE_CHECKING:
    import argparse

__all__ = ["APPLET"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_commit_options(parser)
    g = parser.add_argument_group("fix options")
    g.add_argument("-d", "--depends", action="store_true", help="fix the dependencies too")
    g.add_argument(
        "--directory-permissions", action="store_true", help="reset directory permissions"
    )
    g.add_argument("-r", "--reinstall", action="store_true", help="reinstall (the default)")
    g.add_argument("-u", "--upgrade", action="store_true", help="upgrade when possible")
    g.add_argument("-x", "--xattr", action="store_true", help="fix packages with broken xattrs")
    parser.add_argument("packages", nargs="*", metavar="PACKAGE")


def _run(ctx: ApkContext) -> int:
    try:
        session = open_session(ctx)
    except Failed as exc:
        return exc.status
    opts = ctx.opts
    flags = 0
    if opts.reinstall:
        flags |= SolverFlag.REINSTALL
    if opts.upgrade:
        flags |= SolverFlag.UPGRADE
    if not flags:
        flags = SolverFlag.REINSTALL
    inherit = flags if opts.depends else 0
    name_flags: dict[str, tuple[int, int]] = {}

    def mark(name: str) -> None:
        old = name_flags.get(name, (0, 0))
        name_flags[name] = (old[0] | flags, old[1] | inherit)

    args = [a for a in opts.packages if a]
    if not args:
        for ip in session.installed:
            flagset = ip.package.flags
            if "f" in flagset or "s" in flagset or ("x" in flagset and opts.xattr):
                mark(ip.package.name)
    else:
        from alpenglow.cli.apk.del_ import matching_names

        errors = 0
        for pattern, name in matching_names(session, args):
            if name is None:
                session.out.err(f"Package '{pattern}' not found")
                errors += 1
                continue
            mark(name)
        if errors:
            return exit_status(errors)
    return exit_status(solve_and_commit(session, session.world, 0, name_flags=name_flags))


APPLET = Applet(
    name="fix",
    summary="Repair packages or upgrade them without changing world",
    configure=_configure,
    run=_run,
)
