"""``alpenglow run [OPTIONS] IMAGE [CMD...]``: create a container from an image and run it,
as ``docker run`` does.

In the foreground the container gets this terminal's output (and input with ``-i``; a pty
with ``-t``) and its exit status becomes alpenglow's. ``-d`` hands it to a supervisor that
outlives this command and prints the container's id. A command that is not in the image
exits 127, one that cannot be run 126, a failure of the runtime itself 125.

Options are parsed here, Docker's way (``-it``, ``-e K=V``, ``--env=K=V``, options end at the
image), and not by click: :mod:`alpenglow.cli.main` sends ``run`` straight here, so a run
pays neither for click nor for the image model when the image's facts are cached.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = ["RunArgs", "main", "parse_run_args"]  # and `run`, the click command (built lazily)

USAGE = """\
Usage: alpenglow run [OPTIONS] IMAGE [COMMAND] [ARG...]

  Run a command in a new container.

Options:
  -d, --detach               run in the background and print the container's id
  -i, --interactive          keep stdin attached
  -t, --tty                  allocate a pseudo-terminal
      --rm                   remove the container when it exits
      --name NAME            name the container
  -e, --env KEY=VALUE        set an environment variable (KEY alone: the host's value)
      --env-file FILE        read KEY=VALUE lines from FILE
  -w, --workdir DIR          working directory inside the container
  -u, --user USER            NAME|UID[:GROUP|GID]
  -v, --volume HOST:CTR[:ro] bind mount a host path
      --entrypoint CMD       replace the image's entrypoint ("" clears it)
      --network host|none    the host's network (default) or only loopback
  -h, --hostname NAME        the container's host name
      --platform PLATFORM    e.g. linux/arm64 (default: this machine's)
      --pull missing|never   pull the image when the store lacks it (default: missing)
      --stop-timeout SECONDS seconds between the stop signal and SIGKILL (default: 10)
      --help                 show this message
"""

_FLAGS = {
    "-d": "detach",
    "--detach": "detach",
    "-i": "interactive",
    "--interactive": "interactive",
    "-t": "tty",
    "--tty": "tty",
    "--rm": "auto_remove",
    "--help": "help",
}
_VALUES = {
    "--name": "name",
    "-e": "env",
    "--env": "env",
    "--env-file": "env_file",
    "-w": "workdir",
    "--workdir": "workdir",
    "-u": "user",
    "--user": "user",
    "-v": "volumes",
    "--volume": "volumes",
    "--entrypoint": "entrypoint",
    "--network": "network",
    "--net": "network",
    "-h": "hostname",
    "--hostname": "hostname",
    "--platform": "platform",
    "--pull": "pull",
    "--stop-timeout": "stop_timeout",
}
_REPEATED = {"env", "env_file", "volumes"}
_CHOICES = {"network": ("host", "none"), "pull": ("missing", "never")}


class RunArgs:
    """The parsed command line of ``run`` (filled in option by option while parsing).

    A plain slotted class, not a dataclass: ``run`` is the start-up path of every container,
    and generating a dataclass's methods at import costs more than the parsing itself."""

    __slots__ = (
        "auto_remove",
        "command",
        "detach",
        "entrypoint",
        "env",
        "env_file",
        "help",
        "hostname",
        "image",
        "interactive",
        "name",
        "network",
        "platform",
        "pull",
        "stop_timeout",
        "tty",
        "user",
        "volumes",
        "workdir",
    )

    def __init__(self) -> None:
        self.image = ""
        self.command: tuple[str, ...] = ()
        self.detach = False
        self.interactive = False
        self.tty = False
        self.auto_remove = False
        self.help = False
        self.name: str | None = None
        self.env: list[str] = []
        self.env_file: list[str] = []
        self.workdir = ""
        self.user = ""
        self.volumes: list[str] = []
        self.entrypoint: str | None = None
        self.network = "host"
        self.hostname = ""
        self.platform: str | None = None
        self.pull = "missing"
        self.stop_timeout = 10

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"RunArgs({fields})"


def _set(args: RunArgs, dest: str, value: str, option: str) -> None:
    from alpenglow.errors import UsageError

    if dest in _CHOICES and value not in _CHOICES[dest]:
        raise UsageError(
            f"invalid value {value!r} for {option} (choose from {', '.join(_CHOICES[dest])})"
        )
    if dest in _REPEATED:
        getattr(args, dest).append(value)
    elif dest == "stop_timeout":
        if not value.isdigit():
            raise UsageError(f"invalid value {value!r} for {option}: expected seconds")
        args.stop_timeout = int(value)
    else:
        setattr(args, dest, value)


def _flag(args: RunArgs, dest: str, value: str | None, option: str) -> None:
    from alpenglow.errors import UsageError

    if value is None or value.lower() in ("true", "1"):
        setattr(args, dest, True)
    elif value.lower() in ("false", "0"):
        setattr(args, dest, False)
    else:
        raise UsageError(f"invalid value {value!r} for {option}: expected true or false")


def parse_run_args(argv: Sequence[str]) -> RunArgs:
    """Parse ``run``'s arguments as Docker does; :class:`UsageError` when they are wrong.

    >>> a = parse_run_args(["-it", "--rm", "-e", "A=1", "--env=B=2", "img", "sh", "-c", "x"])
    >>> (a.interactive, a.tty, a.auto_remove, a.env, a.image, a.command)
    (True, True, True, ['A=1', 'B=2'], 'img', ('sh', '-c', 'x'))
    >>> parse_run_args(["-uapp", "-v/a:/b:ro", "img"]).volumes
    ['/a:/b:ro']
    """
    from alpenglow.errors import UsageError

    args = RunArgs()
    i = 0
    while i < len(argv):
        item = argv[i]
        i += 1
        if item == "--":
            break
        if not item.startswith("-") or item == "-":
            args.image = item
            args.command = tuple(argv[i:])
            return args
        if item.startswith("--"):
            option, eq, value = item.partition("=")
            if option in _FLAGS:
                _flag(args, _FLAGS[option], value if eq else None, option)
            elif option in _VALUES:
                if not eq:
                    if i >= len(argv):
                        raise UsageError(f"option {option} needs a value")
                    value = argv[i]
                    i += 1
                _set(args, _VALUES[option], value, option)
            else:
                raise UsageError(f"unknown option {option} (see `alpenglow run --help`)")
            if args.help:
                return args
            continue
        j = 1  # a cluster of short options: -it, -dit, -eK=V, -e K=V
        while j < len(item):
            option = f"-{item[j]}"
            j += 1
            if option in _FLAGS:
                _flag(args, _FLAGS[option], None, option)
            elif option in _VALUES:
                value = item[j:]
                if not value:
                    if i >= len(argv):
                        raise UsageError(f"option {option} needs a value")
                    value = argv[i]
                    i += 1
                _set(args, _VALUES[option], value.removeprefix("="), option)
                break
            else:
                raise UsageError(f"unknown option {option} (see `alpenglow run --help`)")
    if i < len(argv) and not args.image:
        args.image = argv[i]
        args.command = tuple(argv[i + 1 :])
    if not args.image and not args.help:
        raise UsageError("run needs an image (see `alpenglow run --help`)")
    return args


def _run(argv: Sequence[str]) -> int:
    from alpenglow.cli._runtime import make_engine, start_detached
    from alpenglow.errors import UsageError
    from alpenglow.runtime.containers import check_name
    from alpenglow.runtime.spec import RunOptions, parse_env, parse_env_file, parse_volume

    args = parse_run_args(argv)
    if args.help:
        sys.stdout.write(USAGE)
        return 0
    if args.tty and args.interactive and not args.detach and not os.isatty(0):
        raise UsageError("the input device is not a TTY")
    if args.workdir and not args.workdir.startswith("/"):
        raise UsageError(f"the working directory {args.workdir!r} is invalid: not absolute")
    if args.name is not None:
        check_name(args.name)
    environment: list[str] = []
    for path in args.env_file:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(f"{path}: cannot read the env file: {reason}") from None
        environment.extend(parse_env_file(text, path, os.environ))
    environment.extend(parse_env(args.env, os.environ))
    options = RunOptions(
        command=args.command,
        entrypoint=args.entrypoint,
        env=tuple(environment),
        workdir=args.workdir,
        user=args.user,
        mounts=tuple(parse_volume(v, os.getcwd()) for v in args.volumes),
        network=args.network,
        hostname=args.hostname,
        tty=args.tty,
        interactive=args.interactive,
    )
    engine = make_engine(pull=args.pull != "never")
    record = engine.create(
        args.image,
        options,
        name=args.name,
        platform=args.platform,
        auto_remove=args.auto_remove,
        stop_timeout=args.stop_timeout,
    )
    if args.detach:
        from alpenglow.errors import ContainerError

        try:
            start_detached(engine, record)
        except ContainerError:
            if record.auto_remove:
                engine.remove(record, force=True)
            raise
        sys.stdout.write(record.id + "\n")
        return 0
    return engine.run_attached(record, stdin=args.interactive)


def main(argv: Sequence[str]) -> int:
    """``alpenglow run``: returns the exit status (the container's in the foreground);
    errors are printed as one line (exit 2 for usage, 125/126/127 for a container that
    could not run, 1 otherwise)."""
    from alpenglow.cli._errors import guarded

    return guarded(lambda: _run(argv))


def _click_command() -> Any:
    """The click face of ``run`` for ``alpenglow --help`` and the click group."""
    from alpenglow.cli.app import passthrough

    summary = "Run a command in a new container (see `alpenglow run --help`)."
    return passthrough("run", summary, main)


def __getattr__(name: str) -> Any:
    # ``run`` (the click command) is built on first use, so that the fast path through
    # :func:`main` never imports click.
    if name == "run":
        command = _click_command()
        globals()["run"] = command
        return command
    raise AttributeError(name)
