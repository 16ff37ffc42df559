"""``apk version``: installed packages against the repositories, or version strings.

Without ``-t``/``-c`` it lists installed packages with the newest version the repositories
offer (only the upgradable ones unless names are given or ``-v``; ``-l CHARS`` picks the
relations to show, ``-a`` considers every repository tag, ``-I`` lists the indexes).
``-t A B`` prints ``<``, ``=`` or ``>``; ``-c V...`` prints every invalid version and exits
non-zero if there was one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alpenglow.apk import version
from alpenglow.cli.apk import ApkContext, Applet

if TYPE_CHECKING:
    import argparse

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


def _installed(ctx: ApkContext, args: list[str]) -> int:
    from alpenglow.apk.report import version_indexes, version_lines
    from alpenglow.cli.apk._readonly import open_root, verbosity

    catalog = open_root(ctx, allow_arch=False)
    if ctx.opts.indexes:
        lines = version_indexes(catalog)
    else:
        lines = version_lines(
            catalog, args, verbosity(ctx), limit=ctx.opts.limit, all_tags=ctx.opts.all
        )
    for line in lines:
        ctx.out(line)
    return 0


def _run(ctx: ApkContext) -> int:
    args: list[str] = ctx.opts.args
    if ctx.opts.test:
        return _test(ctx, args)
    if ctx.opts.check:
        return _check(ctx, args)
    return _installed(ctx, args)


APPLET = Applet(
    name="version",
    summary="Compare package versions",
    configure=_configure,
    run=_run,
)
