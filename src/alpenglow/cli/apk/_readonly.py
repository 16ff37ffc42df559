"""Shared plumbing of the read-only applets (info, search, list, policy, version, why).

apk applies an applet's options in command-line order and some of them undo others
(``search -d -e`` is not ``search -e -d``); :func:`add_ordered` records such options in
order so the applet can replay them. :func:`open_root` opens the root with the applet's
open flags and reports unreadable repositories as apk does.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alpenglow.apk.catalog import Catalog
from alpenglow.cli.apk import ApkContext
from alpenglow.cli.apk._remote import cache_root

__all__ = ["add_ordered", "open_root", "ordered", "verbosity"]


def __dir__() -> list[str]:
    return __all__


_ORDERED_DEST = "ordered_options"


class _Ordered(argparse.Action):
    """A flag (or ``--opt VALUE``) appended to ``opts.ordered_options`` as it is met."""

    def __init__(self, option_strings: list[str], dest: str, token: str = "", **kw: Any) -> None:
        self.token = token
        super().__init__(option_strings, _ORDERED_DEST, **kw)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        items = list(getattr(namespace, _ORDERED_DEST, None) or [])
        items.append((self.token, values if isinstance(values, str) else None))
        setattr(namespace, _ORDERED_DEST, items)


def add_ordered(
    parser: argparse._ActionsContainer, *names: str, token: str, help: str, value: str = ""
) -> None:
    """Add an option whose position among the others matters; ``value`` names its
    argument (a flag when empty)."""
    if value:
        parser.add_argument(
            *names, action=_Ordered, token=token, nargs=None, metavar=value, help=help
        )
    else:
        parser.add_argument(*names, action=_Ordered, token=token, nargs=0, help=help)
    parser.set_defaults(**{_ORDERED_DEST: []})


def ordered(ctx: ApkContext) -> list[tuple[str, str | None]]:
    """The recorded options as (token, value) in command-line order."""
    items: list[tuple[str, str | None]] = getattr(ctx.opts, _ORDERED_DEST, None) or []
    return items


def verbosity(ctx: ApkContext) -> int:
    """apk's verbosity: 1, plus one per ``-v``, minus one per ``-q`` (never below 0)."""
    verbose = int(getattr(ctx.opts, "verbose", 0) or 0)
    quiet = int(getattr(ctx.opts, "quiet", 0) or 0)
    return max(0, 1 + verbose - quiet)


def _arches(ctx: ApkContext, root: Path, allow_arch: bool) -> tuple[str, ...]:
    opts = ctx.opts
    given = [a.strip() for a in getattr(opts, "arch", []) or [] if a.strip()]
    if given and (str(opts.root) != "/" or allow_arch):
        return tuple(dict.fromkeys(given))
    try:
        text = (root / "etc/apk/arch").read_text("utf-8", "replace")
    except OSError:
        text = ""
    found = [line.strip() for line in text.split("\n") if line.strip()]
    if found:
        return tuple(dict.fromkeys(found))
    from alpenglow.cli.apk._session import default_arch

    return (default_arch(),)


def open_root(
    ctx: ApkContext,
    *,
    world: bool = True,
    installed: bool = True,
    system_repositories: bool = True,
    command_line_repositories: bool = True,
    allow_arch: bool = True,
) -> Catalog:
    """Open ``--root`` as an applet with these open flags would (apk_db_open)."""
    from alpenglow.apk.state import OpenOptions, open_catalog

    opts = ctx.opts
    root = Path(str(opts.root or "/"))
    options = OpenOptions(
        root=root,
        arches=_arches(ctx, root, allow_arch),
        world=world,
        installed=installed,
        system_repositories=system_repositories,
        command_line_repositories=command_line_repositories,
        repositories=tuple(getattr(opts, "repositories", []) or []),
        repositories_file=getattr(opts, "repositories_file", None),
        no_network=bool(getattr(opts, "no_network", False)),
        no_cache=bool(getattr(opts, "no_cache", False)),
        cache_dir=getattr(opts, "cache_dir", None),
        allow_untrusted=bool(getattr(opts, "allow_untrusted", False)),
        keys_dir=getattr(opts, "keys_dir", None),
        download_cache=cache_root(ctx, root),
    )
    return open_catalog(options, ctx.warning)
