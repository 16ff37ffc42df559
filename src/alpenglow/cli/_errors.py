"""How the command line shows a library error: one ``ERROR:`` line on stderr, a ``hint:``
line when the error has one, and docker's exit statuses. (``alpenglow apk`` prints apk's
own error lines instead.)"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from collections.abc import Callable

    from alpenglow.errors import AlpenglowError

__all__ = ["exit_status", "guarded", "report"]


def __dir__() -> list[str]:
    return __all__


def report(exc: AlpenglowError) -> None:
    """Print ``exc`` for the user, after what the command wrote to stdout so far."""
    sys.stdout.flush()
    sys.stderr.write(f"ERROR: {exc}\n")
    if exc.hint:
        sys.stderr.write(f"hint: {exc.hint}\n")


def exit_status(exc: AlpenglowError) -> int:
    """2 for a usage error, a container's own status (125, 126, 127) for one that could not
    run, 1 for everything else."""
    from alpenglow.errors import ContainerError, UsageError

    if isinstance(exc, UsageError):
        return 2
    if isinstance(exc, ContainerError):
        return exc.exit_status
    return 1


def guarded(action: Callable[[], int]) -> int:
    """Run a command's ``action`` and return its exit status; a library error is reported
    (:func:`report`) and becomes :func:`exit_status`, Ctrl-C becomes 130, and stdout is
    flushed either way."""
    from alpenglow.errors import AlpenglowError

    try:
        return action()
    except KeyboardInterrupt:
        return 130
    except AlpenglowError as exc:
        report(exc)
        return exit_status(exc)
    finally:
        sys.stdout.flush()
