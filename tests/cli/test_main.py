"""The console script's dispatch (alpenglow.cli.main)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from alpenglow.cli.main import main


def test_a_caller_in_this_process_gets_system_exit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["pull", "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("Usage: alpenglow pull [OPTIONS] REF")
    with pytest.raises(SystemExit) as exited:
        main(["pull"])
    assert exited.value.code == 2


def test_the_console_script_flushes_before_it_exits_at_once() -> None:
    script = (
        "import sys\n"
        "from alpenglow.cli.main import _exit_now\n"
        "sys.stdout.write('partial line, still buffered')\n"
        "sys.stderr.write('and stderr')\n"
        "_exit_now(3)\n"
        "print('never')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        3,
        "partial line, still buffered",
        "and stderr",
    )


def test_transfer_usage_error_through_the_console_script() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from alpenglow.cli.main import main; "
            "sys.argv = ['alpenglow', 'copy', 'only-one']; main()",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("ERROR: Missing argument 'DST'.")
