"""``apk update``: refresh every repository index, then list what is available.

Opening the root refreshes the indexes (this applet treats every cached index as stale;
an unchanged one costs a conditional request). Output as apk-tools 3: one line
``<DESCRIPTION> [<url>]`` per repository whose index was loaded, then ``OK: <n> distinct
packages available`` or ``<u> unavailable, <s> stale; <n> distinct packages available``.
The exit status is the number of unavailable plus stale repositories.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alpenglow.apk.repository import Repository
from alpenglow.cli.apk import ApkContext, Applet
from alpenglow.cli.apk._session import Failed, exit_status, open_session

if TYPE_CHECKING:
    import argparse

__all__ = ["APPLET"]


def _configure(parser: argparse.ArgumentParser) -> None:
    pass


def _run(ctx: ApkContext) -> int:
    from alpenglow.apk.state import printable_url

    try:
        session = open_session(ctx)
    except Failed as exc:
        return exc.status
    problems = session.unavailable + session.stale
    out = session.out
    if out.verbosity < 1:
        return exit_status(problems)
    arch = session.arches[0]
    repositories = session.extra.get("repositories", [])
    assert isinstance(repositories, list)
    for repo, description in repositories:
        assert isinstance(repo, Repository)
        if description is None:
            continue
        out.msg(f"{description} [{printable_url(repo, arch)}]")
    head = "OK:"
    if session.unavailable or session.stale:
        head = f"{session.unavailable} unavailable, {session.stale} stale;"
    count = sum(1 for _ in session.pool.candidates())
    out.msg(f"{head} {count} distinct packages available")
    return exit_status(problems)


APPLET = Applet(
    name="update",
    summary="Update repository indexes",
    configure=_configure,
    run=_run,
)
