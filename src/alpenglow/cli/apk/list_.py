"""``apk list``: packages by name pattern, with version, arch, origin, license and state.

``-I`` installed, ``-a`` available, ``-u`` upgradable, ``-O`` orphaned (installed but in no
repository), ``-o`` by origin, ``-d`` packages depending on the names, ``-P`` packages
providing them, ``--manifest`` ``name version`` of installed packages.
"""

from __future__ import annotations

import argparse

from alpenglow.apk.report import ListOptions, list_lines
from alpenglow.cli.apk import ApkContext, Applet
from alpenglow.cli.apk._readonly import add_ordered, open_root, ordered, verbosity

__all__ = ["APPLET"]


def _configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("list options")
    add_ordered(g, "-a", "--available", token="available", help="only available packages")
    add_ordered(g, "-d", "--depends", token="depends", help="packages depending on the names")
    add_ordered(g, "-I", "--installed", token="installed", help="only installed packages")
    add_ordered(g, "--manifest", token="manifest", help="installed packages as 'name version'")
    add_ordered(g, "-o", "--origin", token="origin", help="match origin names")
    add_ordered(g, "-O", "--orphaned", token="orphaned", help="installed, in no repository")
    add_ordered(g, "-P", "--providers", token="providers", help="packages providing the names")
    add_ordered(g, "-u", "--upgradable", token="upgradable", help="only upgradable packages")
    add_ordered(g, "--upgradeable", token="upgradable", help="same as --upgradable")
    s = parser.add_argument_group("source options")
    add_ordered(
        s,
        "--from",
        token="from",
        value="FROMSPEC",
        help="none, repositories, installed or system (the default)",
    )
    parser.add_argument("patterns", nargs="*", metavar="PATTERN")


def _run(ctx: ApkContext) -> int:
    from alpenglow.errors import UsageError

    flags = dict.fromkeys(
        ("installed", "orphaned", "available", "upgradable", "origin", "depends", "providers"),
        False,
    )
    manifest = False
    no_sys_repos = no_installed = False
    for token, value in ordered(ctx):
        if token == "available":
            flags["available"], flags["orphaned"] = True, False
        elif token == "installed":
            flags["installed"] = no_sys_repos = True
        elif token == "manifest":
            manifest = flags["installed"] = True
        elif token == "orphaned":
            flags["installed"] = flags["orphaned"] = True
        elif token == "upgradable":
            flags.update(available=True, orphaned=False, installed=False, upgradable=True)
        elif token == "from":
            sources = {
                "none": (True, True),
                "repositories": (False, True),
                "installed": (True, False),
                "system": (False, False),
            }
            if value not in sources:
                raise UsageError(f"invalid argument for option '--from': {value!r}")
            no_sys_repos, no_installed = sources[value]
        else:
            flags[token] = True
    catalog = open_root(ctx, installed=not no_installed, system_repositories=not no_sys_repos)
    options = ListOptions(manifest=manifest, **flags)
    patterns = [p for p in ctx.opts.patterns if p]
    for line in list_lines(catalog, patterns, options, verbosity(ctx)):
        ctx.out(line)
    return 0


APPLET = Applet(
    name="list",
    summary="List packages by pattern and other criteria",
    configure=_configure,
    run=_run,
)
