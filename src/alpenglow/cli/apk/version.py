"""``apk version``: compare and check version strings.

``-t A B`` prints ``<``, ``=`` or ``>``; ``-c V...`` prints every invalid version and exits
non-zero if there was one. Listing installed packages against the repositories needs the
database and is added with the solver.
"""

from __future__ import annotations

import argparse

from alpenglow.apk import version
from alpenglow.cli.apk import ApkContext, Applet

__all__ = ["APPLET"]


def _configure(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-t", "--test", action="store_true", help="compare two versions")
    mode.add_argument("-c", "--check", action="store_true", help="check versions for validity")
    parser.add_argument("-a", "--all", action="store_true", help="consider all packages")
    parser.add_argument("-l", "--limit", help="limit to packages whose status matches")
    parser.add_argument("-I", "--indexes", action="store_true", help="print index descriptions")
    parser.add_argument("args", nargs="*", metavar="ARG")


def _test(ctx: ApkContext, args: list[str]) -> int:
    if len(args) != 2:
        ctx.error("version -t takes exactly two versions")
        return 2
    a, b = args
    if not (version.is_valid(a) and version.is_valid(b)):
        return 1
    ctx.out("<=>"[version.compare(a, b) + 1])
    return 0


def _check(ctx: ApkContext, args: list[str]) -> int:
    invalid = 0
    for arg in args:
        if not version.is_valid(arg):
            ctx.out(arg)
            invalid += 1
    return 1 if invalid else 0


def _run(ctx: ApkContext) -> int:
    args: list[str] = ctx.opts.args
    if ctx.opts.test:
        return _test(ctx, args)
    if ctx.opts.check:
        return _check(ctx, args)
    from alpenglow.errors import UsageError

    raise UsageError("apk version without -t or -c needs an installed database (not yet)")


APPLET = Applet(
    name="version",
    summary="Compare package versions",
    configure=_configure,
    run=_run,
)
