"""``alpenglow apk version -t/-c`` and the apk option dispatcher, through the console script."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Run


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("1.0", "1.0-r0", "<"), ("1.0_p1", "1.0", ">"), ("01", "1", "="), ("1.10a", "1.9z", ">")],
)
def test_version_test(run_cli: Run, a: str, b: str, expected: str) -> None:
    result = run_cli("apk", "version", "-t", a, b)
    assert result.returncode == 0
    assert result.stdout == expected + "\n"
    assert result.stderr == ""


def test_version_test_with_invalid_version_prints_nothing(run_cli: Run) -> None:
    result = run_cli("apk", "version", "-t", "1.0", "foo")
    assert result.returncode == 1
    assert result.stdout == ""


def test_version_check(run_cli: Run) -> None:
    ok = run_cli("apk", "version", "-c", "1.0", "2.3_rc1-r4")
    assert (ok.returncode, ok.stdout) == (0, "")
    bad = run_cli("apk", "version", "-c", "1.0", "1.0_foo", "x")
    assert bad.returncode == 1
    assert bad.stdout == "1.0_foo\nx\n"


def test_global_options_may_come_after_the_applet(run_cli: Run) -> None:
    before = run_cli("apk", "-q", "--root", "/nonexistent", "version", "-t", "1", "2")
    after = run_cli("apk", "version", "-t", "--root", "/nonexistent", "-q", "1", "2")
    assert before.stdout == after.stdout == "<\n"


def test_unknown_applet_is_a_usage_error(run_cli: Run) -> None:
    result = run_cli("apk", "frobnicate")
    assert result.returncode == 2
    assert result.stderr.startswith("ERROR: unknown command 'frobnicate'")
    assert "Traceback" not in result.stderr


def test_unknown_option_is_a_usage_error(run_cli: Run) -> None:
    result = run_cli("apk", "version", "--no-such-option", "-t", "1", "2")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--no-such-option" in result.stderr


def test_apk_help_lists_applets(run_cli: Run) -> None:
    result = run_cli("apk", "--help")
    assert result.returncode == 0
    assert "version" in result.stdout
