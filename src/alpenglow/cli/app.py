"""The click application behind the ``alpenglow`` console script.

Every command is a thin wrapper over the library. ``alpenglow apk ...`` never gets here:
:mod:`alpenglow.cli.main` hands it straight to :mod:`alpenglow.cli.apk`, which parses
apk-tools' own option syntax (and so that apk start-up does not pay for importing click).
Nor do ``run`` (:mod:`alpenglow.cli.run`) and the transfer commands ``push``, ``pull`` and
``copy`` (:func:`alpenglow.cli.distribution.main`): they parse their own options, and the
commands listed for them here hand their arguments over unparsed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import click

from alpenglow import __version__
from alpenglow.cli._errors import exit_status, report
from alpenglow.errors import AlpenglowError

__all__ = ["cli", "main", "passthrough"]


def __dir__() -> list[str]:
    return __all__


class _LazyGroup(click.Group):
    """A group whose commands living in their own modules are imported only when run (or
    listed by ``--help``), so that each command pays only for its own imports."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = _COMMANDS.get(cmd_name)
        if where is not None and cmd_name not in self.commands:
            import importlib

            module = importlib.import_module(f"alpenglow.cli.{where[0]}")
            self.add_command(getattr(module, where[1]), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="alpenglow")
def cli() -> None:
    """Alpine packages and OCI images, without a daemon."""


def passthrough(name: str, help: str, run: Callable[[list[str]], int]) -> click.Command:
    """The click face of a command that parses its own arguments (``apk``, ``run``,
    ``push``, ``pull``, ``copy``): listed by ``alpenglow --help``, it hands its arguments,
    unparsed, to ``run`` and exits with what that returns."""

    def face(args: tuple[str, ...]) -> None:
        sys.exit(run(list(args)))

    return click.Command(
        name,
        callback=face,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=help,
        context_settings={
            "ignore_unknown_options": True,
            "allow_extra_args": True,
            "help_option_names": [],
        },
        add_help_option=False,
    )


def _apk(args: list[str]) -> int:
    from alpenglow.cli.apk import run

    return run(args)


cli.add_command(
    passthrough("apk", "apk-tools compatible package manager (run `alpenglow apk --help`).", _apk)
)


# Commands that live in their own modules: click command name -> (module under alpenglow.cli,
# attribute).
_COMMANDS: dict[str, tuple[str, str]] = {
    "keygen": ("keygen", "keygen"),
    "pkg": ("pkg", "pkg"),
    "build": ("build", "build"),
    "lock": ("build", "lock"),
    "images": ("images", "images"),
    "inspect": ("inspect", "inspect"),
    "push": ("distribution", "push"),
    "pull": ("distribution", "pull"),
    "copy": ("distribution", "copy"),
    "tag": ("distribution", "tag"),
    "ls": ("distribution", "ls"),
    "digest": ("distribution", "digest"),
    "manifest": ("distribution", "manifest"),
    "login": ("login", "login"),
    "logout": ("login", "logout"),
    "release": ("release", "release"),
    "run": ("run", "run"),
    "ps": ("ps", "ps"),
    "start": ("container", "start"),
    "stop": ("container", "stop"),
    "restart": ("container", "restart"),
    "rm": ("container", "rm"),
    "rmi": ("container", "rmi"),
    "prune": ("container", "prune"),
    "container": ("container", "container"),
    "system": ("system", "system"),
    "attach": ("attach", "attach"),
    "exec": ("exec", "exec_command"),
    "logs": ("logs", "logs"),
}


def main(argv: Sequence[str] | None = None) -> None:
    """Run the click application, turning library errors into one line and an exit status."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except AlpenglowError as exc:
        report(exc)
        sys.exit(exit_status(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
