"""``apk search``: find packages in the repositories by name (glob) or description.

Each pattern matches anywhere in a name or provided name (``*PATTERN*``) unless ``-e``;
only the newest version per name is shown unless ``-a``. Like apk, the installed database
is not read (``--installed`` reads it instead of the configured repositories).
"""

from __future__ import annotations

import argparse

from alpenglow.apk.catalog import Field, QuerySpec
from alpenglow.apk.report import search_lines
from alpenglow.cli.apk import ApkContext, Applet
from alpenglow.cli.apk._readonly import add_ordered, open_root, ordered, verbosity

__all__ = ["APPLET"]


def _configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("search options")
    add_ordered(g, "-a", "--all", token="all", help="show all versions, not only the newest")
    add_ordered(g, "-d", "--description", token="description", help="search descriptions too")
    add_ordered(g, "-e", "-x", "--exact", token="exact", help="match names exactly (or by glob)")
    add_ordered(g, "--has-origin", token="has-origin", help="list packages of these origins")
    add_ordered(g, "-o", "--origin", token="origin", help="print origin names")
    add_ordered(g, "-r", "--rdepends", token="rdepends", help="print reverse dependencies")
    q = parser.add_argument_group("query options")
    add_ordered(q, "--all-matches", token="all", help="same as --all")
    add_ordered(q, "--available", token="available", help="only installable packages")
    add_ordered(q, "--installed", token="installed", help="search the installed packages")
    parser.add_argument("patterns", nargs="*", metavar="PATTERN")


def _run(ctx: ApkContext) -> int:
    search = True
    all_matches = False
    match: frozenset[Field] = frozenset()
    origin = rdepends = installed = available = False
    for token, _value in ordered(ctx):
        if token == "all":
            all_matches = True
        elif token == "description":
            match = frozenset({Field.NAME, Field.DESCRIPTION})
            search = all_matches = True
        elif token == "exact":
            search = False
        elif token == "has-origin":
            match = frozenset({Field.ORIGIN})
            all_matches, search = True, False
        elif token == "origin":
            origin = True
        elif token == "rdepends":
            rdepends = True
        elif token == "installed":
            installed = True
        elif token == "available":
            available = True
    catalog = open_root(
        ctx,
        world=False,
        installed=installed,
        system_repositories=not installed,
    )
    spec = QuerySpec(
        match=match | {Field.NAME, Field.PROVIDES},
        search=search,
        all_matches=all_matches,
        empty_matches_all=True,
        installed=installed,
        available=available,
    )
    patterns = [p for p in ctx.opts.patterns if p]
    result = catalog.query(patterns, spec)
    lines = search_lines(catalog, result.packages, verbosity(ctx), origin=origin, rdepends=rdepends)
    for line in lines:
        ctx.out(line)
    return min(result.unmatched, 99)


APPLET = Applet(
    name="search",
    summary="Search for packages by name or description",
    configure=_configure,
    run=_run,
)
