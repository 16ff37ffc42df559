"""The argparse-free option reader (alpenglow.cli.apk._options) against argparse itself:
whatever it accepts, argparse reads the same way; everything else is left to argparse."""

from __future__ import annotations

import contextlib
import io
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpenglow.cli.apk import APPLETS, _load, add_global_options, build_parser, parse_options
from alpenglow.cli.apk._options import Options, OptionTable, Unsupported
from alpenglow.errors import UsageError


def _fast(applet_name: str, args: list[str]) -> dict[str, Any] | None:
    applet = _load(APPLETS[applet_name])
    table = OptionTable()
    try:
        add_global_options(cast(Any, table))
        applet.configure(cast(Any, table))
        return dict(vars(table.parse(args)))
    except Unsupported:
        return None


def _slow(applet_name: str, args: list[str]) -> dict[str, Any] | None:
    parser = build_parser(_load(APPLETS[applet_name]))
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return dict(vars(parser.parse_intermixed_args(args)))
    except (UsageError, SystemExit):
        return None


def _agree(applet_name: str, args: list[str]) -> bool:
    """Asserts the fast reader agrees with argparse; True when it answered itself."""
    fast = _fast(applet_name, args)
    if fast is None:
        return False
    assert _slow(applet_name, args) == fast, args
    return True


BENCH = "--root R --keys-dir K --arch x86_64 --simulate --no-cache alpine-base python3 nginx"

CASES = [
    ("add", BENCH),
    ("add", "-vv -q --arch x86 --arch aarch64 -X a -X b -u -l foo"),
    ("add", "-vqU -pROOT -Xrepo -t .virt a b"),
    ("add", "--root=/x --repository=r --cache-max-age=5 --wait 3 --timeout=9 a"),
    ("add", "foo -s bar --initdb -- baz"),
    ("add", "--help"),
    ("add", "--simul foo"),
    ("add", "--root"),
    ("add", "--root -v"),
    ("add", "--wait nope a"),
    ("add", "--root-tmpfs yes a"),
    ("add", "--root-tmpfs a"),
    ("add", "--simulate=1 a"),
    ("add", "-p=/r a"),
    ("add", "-Z a"),
    ("add", "-1 a"),
    ("add", ""),
    ("add", "- a"),
    ("del", "-r a b --purge"),
    ("del", "--rdepends"),
    ("upgrade", "--no-self-upgrade -a --preupgrade-depends x --preupgrade-depends y"),
    ("upgrade", "--preupgrade --no-preupgrade --self-upgrade-only"),
    ("upgrade", ""),
    ("fix", "-d -r -u -x --directory-permissions a"),
    ("update", "-q"),
    ("why", "a b"),
    ("why", ""),
    ("verify", "f.apk"),
    ("verify", ""),
    ("policy", "a"),
    ("index", "-o out -d text --sign-type RSA256 a.apk"),
    ("index", "--no-warnings a.apk"),
    ("version", "-t 1 2"),
    ("info", "-L a"),
    ("search", "-v a"),
    ("list", "-I"),
]


@pytest.mark.parametrize(("applet", "line"), CASES)
def test_agrees_with_argparse(applet: str, line: str) -> None:
    _agree(applet, line.split())


def test_the_usual_command_lines_need_no_argparse() -> None:
    assert _agree("add", BENCH.split())
    assert _agree(
        "add",
        [
            "-vv",
            "-q",
            "--arch",
            "x86",
            "--arch",
            "aarch64",
            "-X",
            "a",
            "-X",
            "b",
            "-u",
            "-l",
            "foo",
        ],
    )
    assert _agree("del", ["-r", "a", "b", "--purge"])
    assert _agree("upgrade", ["--no-self-upgrade", "-a"])
    assert _agree("update", ["-q"])


def test_left_to_argparse() -> None:
    for applet, line in [
        ("add", "--help"),
        ("add", "--simul foo"),  # abbreviation
        ("add", "--root"),  # missing value
        ("add", "--wait nope a"),  # bad int
        ("add", "--root-tmpfs yes a"),  # optional value
        ("add", "a -- b"),
        ("add", "-Z a"),
        ("version", "-t 1 2"),  # exclusive group
        ("index", "--sign-type RSA a"),  # choices
    ]:
        assert _fast(applet, line.split()) is None, line


def test_parse_options_falls_back_to_argparse() -> None:
    applet = _load("add")
    opts = parse_options(applet, ["--root-tmpfs", "no", "a"])
    assert not isinstance(opts, Options)
    assert opts.root_tmpfs is False
    assert opts.packages == ["a"]
    with pytest.raises(UsageError, match="invalid int value"):
        parse_options(applet, ["--wait", "x"])
    fast = parse_options(applet, ["-v", "a"])
    assert isinstance(fast, Options)
    assert fast.verbose == 1
    assert "verbose" in fast


def test_declarations_it_does_not_model() -> None:
    table = OptionTable()
    with pytest.raises(Unsupported):
        table.add_argument("--x", choices=("a", "b"))
    with pytest.raises(Unsupported):
        table.add_argument("--y", nargs=2)
    with pytest.raises(Unsupported):
        table.add_argument("pos")
    with pytest.raises(Unsupported):
        table.add_mutually_exclusive_group()


_TOKENS = [
    "-v",
    "-q",
    "-vq",
    "-s",
    "-u",
    "-l",
    "-X",
    "-Xr",
    "-p",
    "-pR",
    "--root",
    "--root=R",
    "--arch",
    "--arch=x",
    "--simulate",
    "--no-cache",
    "--wait",
    "--wait=2",
    "3",
    "x",
    "pkg",
    "a=1",
    "-",
    "--",
    "-t",
    "--virtual",
    ".v",
    "--cache-max-age",
    "-U",
    "--quiet",
    "-h",
    "--no",
    "-vX",
]


@settings(max_examples=300, deadline=None)
@given(
    applet=st.sampled_from(["add", "del", "upgrade", "fix"]),
    args=st.lists(st.sampled_from(_TOKENS), max_size=7),
)
def test_random_command_lines_agree(applet: str, args: list[str]) -> None:
    _agree(applet, args)
