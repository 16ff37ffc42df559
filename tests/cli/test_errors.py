"""One way to show a library error on the command line (alpenglow.cli._errors)."""

from __future__ import annotations

import pytest

from alpenglow.cli._errors import exit_status, report
from alpenglow.errors import AlpenglowError, ContainerError, RegistryError, UsageError


def test_report_is_one_error_line_and_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    report(AlpenglowError("oci:out: no such layout", hint="build it first"))
    report(UsageError("Missing argument 'REF'."))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "ERROR: oci:out: no such layout\nhint: build it first\nERROR: Missing argument 'REF'.\n"
    )


def test_report_comes_after_what_was_printed(capsys: pytest.CaptureFixture[str]) -> None:
    print("partial result", end="")  # buffered, not yet a line
    report(AlpenglowError("failed"))
    captured = capsys.readouterr()
    assert captured.out == "partial result"
    assert captured.err == "ERROR: failed\n"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UsageError("bad option"), 2),
        (ContainerError("runc failed"), 125),
        (ContainerError("no such command", exit_status=127), 127),
        (RegistryError("denied"), 1),
        (AlpenglowError("anything else"), 1),
    ],
)
def test_exit_status(error: AlpenglowError, status: int) -> None:
    assert exit_status(error) == status
