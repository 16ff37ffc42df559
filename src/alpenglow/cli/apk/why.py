"""``alpenglow apk why PKG...``: why each installed package is there (not an apk command).

Prints one line per reason: the chain of dependencies from the package up to the world,
each step with the atom that pulls it in (``so:``/``cmd:`` provides included), e.g.
``pcre <- nginx[so:libpcre.so.1] <- world[nginx]``; ``install_if[...]`` when an install_if
rule pulled it in. With ``-v`` packages are shown as ``name-version``. A name that no
installed package has is looked up among what installed packages provide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alpenglow.apk.catalog import sort_display
from alpenglow.apk.why import explain, format_chain
from alpenglow.cli.apk import ApkContext, Applet
from alpenglow.cli.apk._readonly import open_root, verbosity

if TYPE_CHECKING:
    import argparse

__all__ = ["APPLET"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("packages", nargs="+", metavar="PACKAGE")


def _run(ctx: ApkContext) -> int:
    catalog = open_root(ctx, system_repositories=False, command_line_repositories=False)
    versions = verbosity(ctx) > 1
    errors = 0
    for name in ctx.opts.packages:
        entry = catalog.installed_named(name)
        targets = [entry] if entry is not None else []
        if not targets:
            found = {p.entry.index: p.entry for p in catalog.providers(name) if p.entry.installed}
            targets = sort_display(found.values())
        if not targets:
            ctx.error(f"{name}: not installed")
            errors += 1
            continue
        for target in targets:
            chains = explain(catalog, target)
            if not chains:
                shown = str(target) if versions else target.package.name
                ctx.out(f"{shown} is installed, but nothing in the world requires it")
            for chain in chains:
                ctx.out(format_chain(chain, versions=versions))
    return 1 if errors else 0


APPLET = Applet(
    name="why",
    summary="Show why installed packages are there: dependency chains to the world (not in apk)",
    configure=_configure,
    run=_run,
)
