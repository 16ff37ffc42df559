"""Helpers for running the real ``alpenglow`` console script."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ALPENGLOW = Path(sys.executable).parent / "alpenglow"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli() -> Run:
    """Run ``alpenglow ARGS`` as a subprocess; stdout and stderr captured separately."""

    def run(
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        return subprocess.run(
            [str(ALPENGLOW), *args],
            cwd=cwd,
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run
