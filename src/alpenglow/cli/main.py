"""The ``alpenglow`` console script.

Commands whose start-up matters do not pay for importing click: ``alpenglow apk ...`` goes
straight to :mod:`alpenglow.cli.apk` (apk-tools' option syntax), ``run`` to
:mod:`alpenglow.cli.run`, and the transfer commands ``push``, ``pull`` and ``copy`` to
:func:`alpenglow.cli.distribution.main`; everything else goes to the click application in
:mod:`alpenglow.cli.app` (which still lists those commands in ``alpenglow --help``).
``alpenglow --version`` is answered here too, as click's version option answers it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_TRANSFERS = frozenset({"push", "pull", "copy"})


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``alpenglow`` command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--version":  # eager, as click's: whatever follows is ignored
        from alpenglow import __version__

        sys.stdout.write(f"alpenglow, version {__version__}\n")
        sys.exit(0)
    if args and args[0] == "apk":
        if argv is None:  # the console script: this process is the command's alone
            _fewer_collections()
        from alpenglow.cli.apk import run

        sys.exit(run(args[1:]))
    if args and args[0] == "run":  # containers start fast: no click, no image model
        from alpenglow.cli.run import main as run_main

        sys.exit(run_main(args[1:]))
    if args and args[0] in _TRANSFERS:  # images travel without click's start-up either
        from alpenglow.cli.distribution import main as transfer_main

        status = transfer_main(args[0], args[1:])
        if argv is None:  # the console script, not a caller in this process
            _exit_now(status)
        sys.exit(status)
    from alpenglow.cli import app

    app.main(args)


def _fewer_collections() -> None:
    """Run the cyclic garbage collector's young generation every 10,000 allocations
    instead of 700. An apk command makes tens of thousands of records that live until it
    ends and form no cycles; each young collection walks the ones made since the last.
    Measured on ``apk --simulate add alpine-base python3 nginx``: 267 million instructions
    become 264 (1%); turning the collector off would save a little more, but leave the rare
    cycles of a long install uncollected."""
    import gc

    gc.set_threshold(10_000, 20, 20)


def _exit_now(status: int) -> None:
    """Exit with ``status`` once stdout and stderr are flushed, skipping the interpreter's
    tear-down (freeing every module and object: some 30 million instructions after a pull).

    Only for commands that leave nothing to it: every file they write is closed (and
    renamed into place) before they return, their worker threads are joined, and they
    register no exit handlers."""
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        status = status or 1
    os._exit(status)


if __name__ == "__main__":
    main()
