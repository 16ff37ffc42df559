"""``alpenglow apk``: apk-tools' command line, option for option.

apk parses its options with getopt, so global options and applet options may be mixed in any
order around the applet name (``apk -v upgrade`` and ``apk upgrade -v`` are the same). This
module finds the applet, builds one parser from the global options plus the applet's own, and
hands the applet an :class:`ApkContext`. Each applet is a module in this package exposing
``APPLET``; only the chosen applet is imported, to keep start-up fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from alpenglow._record import field, record
from alpenglow._typing import TYPE_CHECKING, cast
from alpenglow.cli.apk._options import Options, OptionTable, Unsupported
from alpenglow.errors import AlpenglowError, UsageError

if TYPE_CHECKING:
    # argparse is imported only when a command line needs it (see _options): it is slow
    import argparse
    from typing import TextIO

__all__ = ["APPLETS", "ApkContext", "Applet", "build_parser", "parse_options", "run"]


def __dir__() -> list[str]:
    return __all__


@record
class Applet:
    """One apk applet: its name, a one-line summary, and how to parse and run it."""

    name: str
    summary: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[ApkContext], int]


# Applet name -> module in this package. Keep sorted by name.
APPLETS: dict[str, str] = {
    "add": "add",
    "del": "del_",
    "fix": "fix",
    "index": "index",
    "info": "info",
    "list": "list_",
    "policy": "policy",
    "search": "search",
    "update": "update",
    "upgrade": "upgrade",
    "verify": "verify",
    "version": "version",
    "why": "why",
}


@record(frozen=False, slots=False)
class ApkContext:
    """What an applet gets: the parsed options and apk-style output channels.

    ``opts`` holds every option (global and the applet's own) and positional argument,
    as argparse would parse them (:mod:`alpenglow.cli.apk._options` reads most command
    lines without it). Normal output goes to stdout; ``error``/``warning`` go to stderr
    with apk's prefixes, flushing stdout first so that combined output keeps its order.
    """

    applet: str
    opts: argparse.Namespace | Options
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    errors: int = 0

    def out(self, line: str = "") -> None:
        self.stdout.write(line + "\n")

    def error(self, message: str) -> None:
        self.errors += 1
        self.stdout.flush()
        self.stderr.write(f"ERROR: {message}\n")
        self.stderr.flush()

    def warning(self, message: str) -> None:
        self.stdout.flush()
        self.stderr.write(f"WARNING: {message}\n")
        self.stderr.flush()


def _bool_arg(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("yes", "y", "true", "1", "on"):
        return True
    if lowered in ("no", "n", "false", "0", "off"):
        return False
    import argparse

    raise argparse.ArgumentTypeError(f"expected yes or no, not {value!r}")


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """apk-tools' global options (see apk(8))."""
    g = parser.add_argument_group("global options")
    g.add_argument("-p", "--root", default="/", help="manage the file system at ROOT")
    g.add_argument("--arch", action="append", default=[], help="architecture to use")
    g.add_argument(
        "-X",
        "--repository",
        dest="repositories",
        action="append",
        default=[],
        metavar="REPO",
        help="use an extra repository",
    )
    g.add_argument("--repositories-file", help="read repositories from this file")
    g.add_argument("--keys-dir", help="trusted keys directory (default ROOT/etc/apk/keys)")
    g.add_argument("--allow-untrusted", action="store_true", help="install unsigned packages")
    g.add_argument("--cache-dir", help="package and index cache directory")
    g.add_argument("--cache-max-age", type=int, help="index age in minutes before refresh")
    g.add_argument("--no-cache", action="store_true", help="do not use any local cache")
    g.add_argument("--no-network", action="store_true", help="do not use the network")
    g.add_argument("-U", "--update-cache", action="store_true", help="refresh indexes first")
    g.add_argument("-q", "--quiet", action="count", default=0, help="print less")
    g.add_argument("-v", "--verbose", action="count", default=0, help="print more")
    g.add_argument("-i", "--interactive", action="store_true", help="ask before changes")
    g.add_argument("--no-interactive", action="store_true", help="never ask")
    g.add_argument("-f", "--force", action="store_true", help="enable all --force-* options")
    g.add_argument("--force-broken-world", action="store_true", help="continue with a broken world")
    g.add_argument("--force-overwrite", action="store_true", help="overwrite other packages' files")
    g.add_argument("--force-old-apk", action="store_true", help="accept old-format packages")
    g.add_argument("--force-refresh", action="store_true", help="do not use cached indexes")
    g.add_argument("--force-non-repository", action="store_true", help="allow non-repo packages")
    g.add_argument("--force-missing-repositories", action="store_true", help="go on without repos")
    g.add_argument("--force-no-chroot", action="store_true", help="run scripts without chroot")
    g.add_argument(
        "--root-tmpfs",
        nargs="?",
        const=True,
        default=None,
        type=_bool_arg,
        metavar="BOOL",
        help="whether ROOT is a tmpfs (auto-detected)",
    )
    g.add_argument("--progress", action="store_true", help="show a progress bar")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-logfile", action="store_true", help="do not write var/log/apk.log")
    g.add_argument("--purge", action="store_true", help="also delete modified config files")
    g.add_argument("--wait", type=int, default=0, metavar="SECONDS", help="wait for the lock")
    g.add_argument("--timeout", type=int, metavar="SECONDS", help="network timeout")
    g.add_argument("--print-arch", action="store_true", help="print the default architecture")
    g.add_argument("--preserve-env", action="store_true", help="pass the environment to scripts")
    g.add_argument("--no-check-certificate", action="store_true", help="skip TLS checks")


def add_commit_options(parser: argparse.ArgumentParser) -> None:
    """Options of applets that change the installed packages (add, del, upgrade, fix)."""
    c = parser.add_argument_group("commit options")
    c.add_argument("-s", "--simulate", action="store_true", help="show what would be done")
    c.add_argument("--initdb", action="store_true", help="initialise a new package database")
    c.add_argument("--no-scripts", action="store_true", help="do not run package scripts")
    c.add_argument("--scripts", action="store_true", help="run package scripts")
    c.add_argument("--clean-protected", action="store_true", help="no .apk-new files")
    c.add_argument("--no-commit-hooks", action="store_true", help="skip commit hooks")
    c.add_argument("--overlay-from-stdin", action="store_true", help="read an overlay")


# Options that take a value in the next argument; needed to find the applet name.
_VALUE_OPTIONS = frozenset(
    {
        "-p",
        "--root",
        "--arch",
        "-X",
        "--repository",
        "--repositories-file",
        "--keys-dir",
        "--cache-dir",
        "--cache-max-age",
        "--wait",
        "--timeout",
    }
)


def _find_applet(argv: list[str]) -> int | None:
    """Index in ``argv`` of the applet name, skipping options and their values."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return i + 1 if i + 1 < len(argv) else None
        if arg.startswith("-") and arg != "-":
            if arg in _VALUE_OPTIONS:
                i += 2
                continue
            # Short option clusters such as -vX REPO: the value follows the cluster.
            if not arg.startswith("--") and len(arg) > 2 and arg[-1] in "pX":
                i += 2
                continue
            i += 1
            continue
        return i
    return None


def _usage(stream: TextIO) -> None:
    stream.write("usage: alpenglow apk [<OPTIONS>...] COMMAND [<ARGUMENTS>...]\n\n")
    stream.write("Commands:\n")
    for name, module_name in sorted(APPLETS.items()):
        applet = _load(module_name)
        stream.write(f"  {name:<10} {applet.summary}\n")
    stream.write("\nRun `alpenglow apk COMMAND --help` for a command's options.\n")


def _version(stream: TextIO) -> None:
    """``apk --version``: what this is and the architecture it installs by default."""
    from alpenglow import __version__
    from alpenglow.cli.apk._session import default_arch

    stream.write(f"alpenglow apk {__version__} (apk-tools 3 compatible), for {default_arch()}.\n")


def _load(module_name: str) -> Applet:
    module = importlib.import_module(f"alpenglow.cli.apk.{module_name}")
    applet: Applet = module.APPLET
    return applet


def build_parser(applet: Applet) -> argparse.ArgumentParser:
    """The parser for one applet: global options plus the applet's own."""
    import argparse
    from typing import NoReturn

    class _Parser(argparse.ArgumentParser):
        """An ArgumentParser that raises instead of printing usage and exiting."""

        def error(self, message: str) -> NoReturn:
            raise UsageError(f"{self.prog}: {message}")

    parser = _Parser(prog=f"alpenglow apk {applet.name}", description=applet.summary)
    add_global_options(parser)
    applet.configure(parser)
    return parser


def parse_options(applet: Applet, args: list[str]) -> argparse.Namespace | Options:
    """The applet's options and arguments in ``args`` (the applet name taken out), as
    ``parse_intermixed_args`` reads them; argparse itself is used only for what
    :class:`~alpenglow.cli.apk._options.OptionTable` leaves to it (help, errors, ...)."""
    try:
        table = OptionTable()
        add_global_options(cast("argparse.ArgumentParser", table))
        applet.configure(cast("argparse.ArgumentParser", table))
        return table.parse(args)
    except Unsupported:
        return build_parser(applet).parse_intermixed_args(args)


def run(argv: list[str]) -> int:
    """Run ``alpenglow apk ARGV`` and return the exit status. Never raises."""
    ctx: ApkContext | None = None
    try:
        index = _find_applet(argv)
        if any(a in ("-V", "--version") for a in argv[:index]):
            _version(sys.stdout)
            return 0
        if index is None:
            if any(a in ("-h", "--help") for a in argv) or not argv:
                _usage(sys.stdout)
                return 0 if argv else 2
            raise UsageError("no command given; run `alpenglow apk --help`")
        name = argv[index]
        module_name = APPLETS.get(name)
        if module_name is None:
            raise UsageError(f"unknown command {name!r}; run `alpenglow apk --help`")
        applet = _load(module_name)
        opts = parse_options(applet, argv[:index] + argv[index + 1 :])
        ctx = ApkContext(applet=name, opts=opts)
        status = applet.run(ctx)
        sys.stdout.flush()
        return status
    except UsageError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"ERROR: {exc}\n")
        return 2
    except AlpenglowError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"ERROR: {exc}\n")
        return 1
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        return 130
