"""The text of apk-tools 3's read-only applets, line for line.

Each function takes a :class:`~alpenglow.apk.catalog.Catalog` (and what the command line
asked for) and returns the lines apk prints, without their newlines; the CLI only writes
them. ``verbosity`` is apk's: 1 by default, one more per ``-v``, one less per ``-q``.

>>> from alpenglow.apk.catalog import Catalog
>>> from alpenglow.apk.database import InstalledPackage
>>> from alpenglow.apk.index import parse_index
>>> pkg = parse_index("C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\\nP:a\\nV:1.0-r0\\nT:the a\\nI:20480\\n")[0]
>>> cat = Catalog(installed=[InstalledPackage(pkg)])
>>> wanted = InfoField.DESCRIPTION | InfoField.SIZE
>>> print("\\n".join(info_sections(cat, cat.entries[0], wanted, 1)))
a-1.0-r0 description:
the a
<BLANKLINE>
a-1.0-r0 installed size:
20 KiB
<BLANKLINE>
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from alpenglow._record import record
from alpenglow.apk import version
from alpenglow.apk.catalog import Catalog, Entry, compile_glob, sort_display
from alpenglow.apk.dependency import Dependency

__all__ = [
    "INFO_ALL",
    "INFO_DEFAULT",
    "INFO_INSTALLED_ONLY",
    "InfoField",
    "ListOptions",
    "human_size",
    "info_exists",
    "info_oneline",
    "info_sections",
    "list_lines",
    "policy_lines",
    "search_lines",
    "version_indexes",
    "version_lines",
]


def __dir__() -> list[str]:
    return __all__


def human_size(size: int) -> str:
    """apk_get_human_size: divide by 1024 while the value is 10000 or more.

    >>> human_size(253640), human_size(9999), human_size(10000)
    ('247 KiB', '9999 B', '9 KiB')
    """
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    unit = 0
    while size >= 10000 and unit < len(units):
        size //= 1024
        unit += 1
    return f"{size} {units[min(unit, len(units) - 1)]}"


# --------------------------------------------------------------------------------------
# info


class InfoField(enum.Flag):
    """The sections ``apk info`` can print, in the order it prints them."""

    DESCRIPTION = enum.auto()
    WEBPAGE = enum.auto()
    SIZE = enum.auto()
    DEPENDS = enum.auto()
    PROVIDES = enum.auto()
    RDEPENDS = enum.auto()
    CONTENTS = enum.auto()
    TRIGGERS = enum.auto()
    INSTALL_IF = enum.auto()
    RINSTALL_IF = enum.auto()
    REPLACES = enum.auto()
    LICENSE = enum.auto()


INFO_DEFAULT = InfoField.DESCRIPTION | InfoField.WEBPAGE | InfoField.SIZE
INFO_ALL = InfoField(sum(f.value for f in InfoField))
INFO_INSTALLED_ONLY = (
    InfoField.RDEPENDS
    | InfoField.CONTENTS
    | InfoField.TRIGGERS
    | InfoField.RINSTALL_IF
    | InfoField.REPLACES
)
"""Sections apk prints only for installed packages (the others make the result partial)."""


def info_oneline(entry: Entry, verbosity: int) -> str | None:
    """``name``, ``name-version`` or ``name-version - description`` by verbosity."""
    if verbosity < 1:
        return None
    text = entry.package.name
    if verbosity > 1:
        text += "-" + entry.package.version
    if verbosity > 2:
        text += " - " + entry.package.description
    return text


def _blob(entry: Entry, title: str, value: str, verbosity: int) -> list[str]:
    if verbosity > 1:
        return [f"{entry.package.name}: {value}"]
    return [f"{entry} {title}:", value, ""]


def _items(entry: Entry, title: str | None, items: Sequence[str], verbosity: int) -> list[str]:
    """A list section: a header, one item per line and a blank line, or with ``-vv`` one
    line ``name: item item ``."""
    if verbosity > 1:
        return [f"{entry.package.name}: " + "".join(item + " " for item in items)]
    lines = [f"{entry} {title}:"] if verbosity == 1 and title is not None else []
    return [*lines, *items, ""]


def _deps(entry: Entry, title: str, deps: Sequence[Dependency], verbosity: int) -> list[str]:
    return _items(entry, title, [str(d) for d in deps], verbosity)


def info_sections(catalog: Catalog, entry: Entry, fields: InfoField, verbosity: int) -> list[str]:
    """What ``apk info -FLAGS PKG`` prints for one package."""
    if entry.installed is None:
        fields &= ~INFO_INSTALLED_ONLY
    out: list[str] = []
    for section in InfoField:
        if section not in fields:
            continue
        if section == InfoField.RDEPENDS:
            rdeps = catalog.reverse_dependencies(entry, installed_only=True)
            out += _items(entry, "is required by", [str(e) for e, _dep in rdeps], verbosity)
        elif section == InfoField.CONTENTS:
            out += _contents(catalog, entry, verbosity)
        elif section == InfoField.RINSTALL_IF:
            found = _rinstall_if(catalog, entry)
            out += _items(entry, "affects auto-installation of", found, verbosity)
        else:
            out += _record_section(entry, section, verbosity)
    return out


def _record_section(entry: Entry, section: InfoField, verbosity: int) -> list[str]:
    """A section that reads only the package record (no other packages)."""
    pkg = entry.package
    if section == InfoField.DESCRIPTION:
        return _blob(entry, "description", pkg.description, verbosity)
    if section == InfoField.WEBPAGE:
        return _blob(entry, "webpage", pkg.url, verbosity)
    if section == InfoField.SIZE:
        return _blob(entry, "installed size", human_size(pkg.installed_size), verbosity)
    if section == InfoField.DEPENDS:
        return _deps(entry, "depends on", pkg.depends, verbosity)
    if section == InfoField.PROVIDES:
        return _deps(entry, "provides", pkg.provides, verbosity)
    if section == InfoField.TRIGGERS:
        return _triggers(entry, verbosity)
    if section == InfoField.INSTALL_IF:
        return _deps(entry, "has auto-install rule", pkg.install_if, verbosity)
    if section == InfoField.REPLACES:
        return _deps(entry, "replaces", pkg.replaces, verbosity)
    if section == InfoField.LICENSE:
        return _blob(entry, "license", pkg.license, verbosity)
    return []


def _contents(catalog: Catalog, entry: Entry, verbosity: int) -> list[str]:
    return _content_lines(entry, catalog.contents(entry), verbosity)


def _content_lines(entry: Entry, paths: Sequence[str], verbosity: int) -> list[str]:
    prefix = f"{entry.package.name}: " if verbosity > 1 else ""
    lines = [f"{entry} contains:"] if verbosity == 1 else []
    lines += [prefix + path for path in paths]
    return [*lines, ""]


# Sections that need other packages (a database or repositories) to answer.
_NEEDS_CATALOG = InfoField.RDEPENDS | InfoField.RINSTALL_IF


def file_info_sections(
    entry: Entry, paths: Sequence[str], fields: InfoField, verbosity: int
) -> list[str]:
    """What ``apk info -FLAGS --file PKG.apk`` prints: the sections of :func:`info_sections`
    that a package file answers by itself, with ``paths`` (its files) as its contents."""
    out: list[str] = []
    for section in InfoField:
        if section not in fields or section in _NEEDS_CATALOG:
            continue
        if section == InfoField.CONTENTS:
            out += _content_lines(entry, paths, verbosity)
        else:
            out += _record_section(entry, section, verbosity)
    return out


def _triggers(entry: Entry, verbosity: int) -> list[str]:
    prefix = f"{entry.package.name}: trigger " if verbosity > 1 else ""
    lines = [f"{entry} triggers:"] if verbosity == 1 else []
    lines += [prefix + t for t in entry.triggers]
    return [*lines, ""]


def _rinstall_if(catalog: Catalog, entry: Entry) -> list[str]:
    found: list[str] = []
    for name in catalog.rinstall_if(entry.package.name):
        other = catalog.installed_named(name)
        if other is None:
            continue
        for dep in other.package.install_if:
            if dep.name == entry.package.name and not dep.conflict:
                found.append(str(other))
                break
    return found


def info_exists(catalog: Catalog, args: Sequence[str], verbosity: int) -> tuple[list[str], int]:
    """``apk info -e``: the installed packages satisfying each argument, and the number of
    arguments nothing installed satisfies. Arguments that are not dependencies are skipped."""
    from alpenglow.apk.dependency import parse
    from alpenglow.errors import InvalidDependency

    lines: list[str] = []
    errors = 0
    for arg in args:
        try:
            dep = parse(arg)
        except InvalidDependency:
            continue
        ok = dep.conflict
        for prov in catalog.providers(dep.name):
            if prov.entry.installed is None:
                continue
            ok = catalog.is_provided(dep, prov)
            if ok:
                line = info_oneline(prov.entry, verbosity)
                if line is not None:
                    lines.append(line)
            break
        if not ok:
            errors += 1
    return lines, errors


# --------------------------------------------------------------------------------------
# search


def search_lines(
    catalog: Catalog,
    entries: Sequence[Entry],
    verbosity: int,
    *,
    origin: bool = False,
    rdepends: bool = False,
) -> list[str]:
    """``apk search`` output for the matched ``entries``."""

    def show(entry: Entry) -> str:
        pkg = entry.package
        if origin:
            text = pkg.origin or pkg.name
            return text + ("-" + pkg.version if verbosity > 0 else "")
        text = pkg.name
        if verbosity > 0:
            text += "-" + pkg.version
        if verbosity > 1:
            text += " - " + pkg.description
        return text

    if not rdepends:
        return [show(e) for e in entries]
    lines: list[str] = []
    shared: set[int] = set()
    for entry in entries:
        seen = shared
        if verbosity > 0:
            seen = set()
            lines.append(f"{entry} is required by:")
        for other, _dep in catalog.reverse_dependencies(entry, seen=seen):
            lines.append(show(other))
    return lines


# --------------------------------------------------------------------------------------
# policy


def policy_lines(catalog: Catalog, entries: Sequence[Entry]) -> list[str]:
    """``apk policy``: each name, its versions and where each comes from."""
    lines: list[str] = []
    current: str | None = None
    tags = catalog.tags
    for entry in entries:
        if entry.package.name != current:
            current = entry.package.name
            lines.append(f"{current} policy:")
        lines.append(f"  {entry.package.version}:")
        if entry.installed is not None:
            lines.append("    lib/apk/db/installed")
        for number, repo in enumerate(catalog.repositories):
            if not entry.repos & (1 << number):
                continue
            for tag_id, tag in enumerate(tags):
                if catalog.allowed_repos(tag_id) & entry.repos:
                    lines.append(f"    {tag}{'' if tag_id == 0 else ' '}{repo.url}")
    return lines


# --------------------------------------------------------------------------------------
# list


@record
class ListOptions:
    """``apk list`` options (after apk's option interplay has been applied)."""

    installed: bool = False
    orphaned: bool = False
    available: bool = False
    upgradable: bool = False
    origin: bool = False
    depends: bool = False
    providers: bool = False
    manifest: bool = False


def list_lines(
    catalog: Catalog, patterns: Sequence[str], options: ListOptions, verbosity: int
) -> list[str]:
    """``apk list``: packages of the matching names (or origins), in apk's order."""
    lines: list[str] = []
    # apk sorts a name's providers in place when it lists that name; later walks see it.
    order: dict[str, list[Entry]] = {}

    def providers(name: str) -> list[tuple[Entry, str]]:
        entries = order.get(name)
        if entries is None:
            entries = [p.entry for p in catalog.providers(name)]
        return [(e, name) for e in entries]

    def emit(entry: Entry, via: str) -> None:
        pkg = entry.package
        if options.origin and pkg.origin not in patterns:
            return
        if options.installed and entry.installed is None:
            return
        if options.orphaned and catalog.has_repository_providers(pkg.name):
            return
        if options.available and not catalog.is_available(entry):
            return
        if options.upgradable and catalog.upgradable_from(entry) is None:
            return
        prefix = f"<{via}> " if options.providers else ""
        if options.manifest:
            lines.append(f"{prefix}{pkg.name} {pkg.version}")
            return
        if verbosity <= 0:
            lines.append(prefix + pkg.name)
            return
        text = f"{prefix}{entry} {pkg.arch} {{{pkg.origin}}} ({pkg.license})"
        if entry.installed is not None:
            text += " [installed]"
        else:
            older = catalog.upgradable_from(entry)
            if older is not None:
                text += f" [upgradable from: {older}]"
        lines.append(text)
        if verbosity > 1:
            lines.append(f"  {pkg.description}")
            if verbosity > 2:
                lines.append(f"  <{pkg.url}>")
            lines.append("")

    def walk(name: str) -> None:
        for entry, via in providers(name):
            if not options.providers and entry.package.name != name:
                continue
            emit(entry, via)

    for name in _sorted_matching_names(catalog, [] if options.origin else patterns):
        order[name] = sort_display(p.entry for p in catalog.providers(name))
        if options.depends:
            for other in catalog.rdepends(name):
                walk(other)
        else:
            walk(name)
    return lines


def _sorted_matching_names(catalog: Catalog, patterns: Sequence[str]) -> list[str]:
    """apk_db_foreach_sorted_name: the names matching ``patterns`` (all without), sorted."""
    from alpenglow.apk.catalog import sort_names

    if not patterns:
        return catalog.sorted_names()
    walk_all = False
    found: list[str] = []
    for pattern in patterns:
        if "*" in pattern:
            walk_all = True
            continue
        if catalog.has_name(pattern) and not walk_all:
            found.append(pattern)
    candidates = catalog.sorted_names() if walk_all else sort_names(found)
    return [n for n in candidates if any(_fnmatch(p, n) for p in patterns)]


def _fnmatch(pattern: str, value: str) -> bool:
    return compile_glob(pattern).match(value) is not None


# --------------------------------------------------------------------------------------
# version


def version_indexes(catalog: Catalog) -> list[str]:
    """``apk version -I``: each repository's description and address."""
    return [f"{repo.description} [{repo.url}]" for repo in catalog.repositories]


def version_lines(
    catalog: Catalog,
    patterns: Sequence[str],
    verbosity: int,
    *,
    limit: str | None = None,
    all_tags: bool = False,
) -> list[str]:
    """``apk version``: installed packages against the newest available version."""
    if limit is not None:
        limchars: str | None = limit or None
    elif not patterns and verbosity == 1:
        limchars = "<"
    else:
        limchars = None
    tags = catalog.tags
    states: dict[str, tuple[Entry, Entry, int, str]] = {}
    width = 39
    for name in _matching_names(catalog, patterns):
        installed = catalog.installed_named(name)
        if installed is None:
            continue
        latest = installed
        latest_repos = 0
        allowed = catalog.allowed_repos(installed.repository_tag)
        for prov in catalog.providers(name):
            other = prov.entry
            if other.package.name != name or other.repos == 0:
                continue
            if not (all_tags or other.repos & allowed):
                continue
            order = version.compare(other.package.version, latest.package.version)
            if order > 0:
                latest, latest_repos = other, other.repos
            elif order == 0:
                latest_repos |= other.repos
        op = "<=>"[version.compare(installed.package.version, latest.package.version) + 1]
        if limchars is not None and op not in limchars:
            continue
        tag = next((i for i in range(1, len(tags)) if latest_repos & catalog.allowed_repos(i)), 0)
        states[name] = (installed, latest, tag, op)
        width = max(width, len(str(installed)))
    lines = [f"{'Installed:':<{width}}   Available:"] if verbosity >= 1 else []
    for name in _sorted_matching_names(catalog, patterns):
        state = states.get(name)
        if state is None:
            continue
        installed, latest, tag, op = state
        if verbosity <= 0:
            lines.append(name)
            continue
        text = f"{installed!s:<{width}} {op} {latest.package.version} {tags[tag]}"
        lines.append(text)
    return lines


def _matching_names(catalog: Catalog, patterns: Sequence[str]) -> list[str]:
    """apk_db_foreach_matching_name (order does not matter to its callers here)."""
    if not patterns or any("*" in p for p in patterns):
        return [n for n in catalog.names() if not patterns or any(_fnmatch(p, n) for p in patterns)]
    return [p for p in patterns if catalog.has_name(p)]
