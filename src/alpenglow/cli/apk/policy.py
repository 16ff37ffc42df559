"""``apk policy``: every version of the named packages and where each one comes from.

For each version: ``lib/apk/db/installed`` when it is installed, then the repositories
that list it, each with the pinning tags that allow it (``@edge URL``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alpenglow.apk.catalog import QuerySpec
from alpenglow.apk.report import policy_lines
from alpenglow.cli.apk import ApkContext, Applet
from alpenglow.cli.apk._readonly import open_root

if TYPE_CHECKING:
    import argparse

__all__ = ["APPLET"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("packages", nargs="*", metavar="PACKAGE")


def _run(ctx: ApkContext) -> int:
    catalog = open_root(ctx)
    patterns = [p for p in ctx.opts.packages if p]
    result = catalog.query(patterns, QuerySpec(all_matches=True))
    for line in policy_lines(catalog, result.packages):
        ctx.out(line)
    return 0


APPLET = Applet(
    name="policy",
    summary="Show repository policy for packages",
    configure=_configure,
    run=_run,
)
