"""The click application: commands with parsers of their own are listed and reached through
one kind of pass-through face (:func:`alpenglow.cli.app.passthrough`)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from alpenglow import __version__
from alpenglow.cli import apk
from alpenglow.cli.app import cli, passthrough


def test_passthrough_hands_every_argument_over_unparsed() -> None:
    seen: list[list[str]] = []

    def own_parser(args: list[str]) -> int:
        seen.append(args)
        return 7

    command = passthrough("demo", "A demo.", own_parser)
    result = CliRunner().invoke(command, ["--help", "-x", "value", "--flag=1", "-abc"])
    assert seen == [["--help", "-x", "value", "--flag=1", "-abc"]]
    assert result.exit_code == 7
    assert command.get_short_help_str() == "A demo."


@pytest.mark.parametrize("name", ["apk", "run", "push", "pull", "copy"])
def test_commands_with_their_own_parsers_are_listed(name: str) -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if line.split()[:1] == [name])
    assert len(line.split()) > 1  # with a summary


def test_apk_through_the_click_group_is_the_same_command() -> None:
    result = CliRunner().invoke(cli, ["apk", "--version"])
    assert result.exit_code == 0
    assert result.output.startswith(f"alpenglow apk {__version__} ")


def test_apk_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert apk.run(["--version"]) == 0
    assert apk.run(["-V", "add", "x"]) == 0  # a global option: it wins over the applet
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0] == out[1]
    assert out[0].startswith(f"alpenglow apk {__version__} (apk-tools 3 compatible), for ")
