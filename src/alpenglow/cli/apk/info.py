"""``apk info``: installed packages, or details of packages by name, like apk-tools 3.

Without arguments it lists the installed packages (``-v`` adds versions). With names it
prints the chosen sections (default: description, webpage, installed size) of every
package with that name or providing it, installed or in a repository. ``-e`` tests which
names are installed; ``-W`` tells which package owns a path.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from alpenglow.apk.archive import DIRECTORY
from alpenglow.apk.catalog import Entry, Field, QuerySpec
from alpenglow.apk.report import (
    INFO_ALL,
    INFO_DEFAULT,
    INFO_INSTALLED_ONLY,
    InfoField,
    file_info_sections,
    info_exists,
    info_oneline,
    info_sections,
)
from alpenglow.cli.apk import ApkContext, Applet
from alpenglow.cli.apk._readonly import add_ordered, open_root, ordered, verbosity
from alpenglow.errors import AlpenglowError

__all__ = ["APPLET"]

_SECTIONS = {
    "all": INFO_ALL,
    "contents": InfoField.CONTENTS,
    "depends": InfoField.DEPENDS,
    "description": InfoField.DESCRIPTION,
    "install-if": InfoField.INSTALL_IF,
    "license": InfoField.LICENSE,
    "provides": InfoField.PROVIDES,
    "rdepends": InfoField.RDEPENDS,
    "replaces": InfoField.REPLACES,
    "rinstall-if": InfoField.RINSTALL_IF,
    "size": InfoField.SIZE,
    "triggers": InfoField.TRIGGERS,
    "webpage": InfoField.WEBPAGE,
}


def _configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("info options")
    add_ordered(g, "-a", "--all", token="all", help="print all information")
    add_ordered(g, "-L", "--contents", token="contents", help="list the files")
    add_ordered(g, "-R", "--depends", token="depends", help="list the dependencies")
    add_ordered(g, "-d", "--description", token="description", help="print the description")
    add_ordered(g, "-e", "--exists", token="exists", help="check which are installed")
    add_ordered(g, "--install-if", token="install-if", help="print the install_if rule")
    add_ordered(g, "--installed", token="exists", help="same as --exists")
    add_ordered(g, "--license", token="license", help="print the license")
    add_ordered(g, "-P", "--provides", token="provides", help="list what it provides")
    add_ordered(g, "-r", "--rdepends", token="rdepends", help="list what depends on it")
    add_ordered(g, "--replaces", token="replaces", help="list what it may replace")
    add_ordered(g, "--rinstall-if", token="rinstall-if", help="list what it auto-installs")
    add_ordered(g, "-s", "--size", token="size", help="print the installed size")
    add_ordered(g, "-t", "--triggers", token="triggers", help="print the triggers")
    add_ordered(g, "-w", "--webpage", token="webpage", help="print the web page")
    add_ordered(g, "-W", "--who-owns", token="who-owns", help="print who owns the files")
    parser.add_argument(
        "--file",
        dest="package_file",
        metavar="PKG.apk",
        help="show the metadata of a package file instead (alpenglow extension)",
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE")


def _who_owns(ctx: ApkContext, args: list[str], level: int) -> int:
    catalog = open_root(
        ctx, system_repositories=False, command_line_repositories=False, allow_arch=True
    )
    root = Path(str(ctx.opts.root or "/"))
    errors = 0
    owners: dict[int, object] = {}
    for arg in args:
        path = arg
        if not arg.startswith("/") and os.path.exists(arg):
            path = os.path.realpath(arg)
        entry = catalog.owner(path)
        via_link = False
        if entry is None:
            try:
                target = os.readlink(root / path.lstrip("/"))
            except OSError:
                target = ""
            if target.startswith("/"):
                entry = catalog.owner(target)
                via_link = entry is not None
        if entry is None:
            ctx.error(f"{path}: Could not find owner package")
            errors += 1
            continue
        if level >= 1:
            what = "symlink target " if via_link else ""
            ctx.out(f"{path} {what}is owned by {entry}")
        else:
            owners.setdefault(entry.index, entry)
    if owners:
        from alpenglow.apk.catalog import Entry, sort_display

        found = [e for e in owners.values() if isinstance(e, Entry)]
        for entry in sort_display(found):
            ctx.out(entry.package.name)
    return errors


def _package_file(ctx: ApkContext, path: str, fields: InfoField, level: int) -> int:
    """``info --file PKG.apk``: the package's own metadata, checked (signature when a trusted
    key is there or ``--allow-untrusted``, identity, datahash, every file's checksum)."""
    from alpenglow.apk.package import read_package
    from alpenglow.cli.apk.verify import trusted_keys

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AlpenglowError(f"{path}: {exc.strerror or exc}") from None
    keys = trusted_keys(ctx)
    apk = read_package(data, keys, source=path, allow_untrusted=ctx.opts.allow_untrusted)
    # Like ``info -L`` on an installed package: files, links and devices, not directories.
    paths = [e.path for e in apk.entries(verify=True) if e.type != DIRECTORY]
    entry = Entry(package=apk.package, index=0, triggers=apk.info.triggers)
    for line in file_info_sections(entry, paths, fields, level):
        ctx.out(line)
    return 0


def _run(ctx: ApkContext) -> int:
    level = verbosity(ctx)
    args: list[str] = [a for a in ctx.opts.packages if a]
    exists = who_owns = False
    fields = InfoField(0)
    for token, _value in ordered(ctx):
        exists = who_owns = False
        if token == "exists":
            exists = True
        elif token == "who-owns":
            who_owns = True
        else:
            fields |= _SECTIONS[token]
    if ctx.opts.package_file:
        return _package_file(ctx, ctx.opts.package_file, fields or INFO_DEFAULT, level)
    if who_owns:
        return min(_who_owns(ctx, args, level), 99)
    if exists:
        catalog = open_root(ctx, system_repositories=False, command_line_repositories=False)
        lines, errors = info_exists(catalog, args, level)
        for line in lines:
            ctx.out(line)
        return min(errors, 99)
    catalog = open_root(ctx)
    if not args:
        spec = QuerySpec(installed=True, empty_matches_all=True, all_matches=True)
        for entry in catalog.query([], spec).packages:
            text = info_oneline(entry, max(level, 1))
            if text is not None:
                ctx.out(text)
        return 0
    wanted = fields or INFO_DEFAULT
    spec = QuerySpec(match=frozenset({Field.NAME, Field.PROVIDES}), all_matches=True)
    result = catalog.query(args, spec)
    partial = False
    for entry in result.packages:
        if entry.installed is None and wanted & INFO_INSTALLED_ONLY:
            partial = True
        for line in info_sections(catalog, entry, wanted, level):
            ctx.out(line)
    if result.unmatched == 0 and partial and wanted == INFO_ALL:
        return 1
    return min(result.unmatched, 99)


APPLET = Applet(
    name="info",
    summary="Give detailed information about packages or repositories",
    configure=_configure,
    run=_run,
)
