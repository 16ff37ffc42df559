"""Roots installed by ``alpenglow apk`` (the real command line, as a process) from the
realistic repository's local mirror: what image builds and containers are compared with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.alpine_repo import BRANCH, RealisticRepo
from tests.support.mirror import Mirror

__all__ = ["ALPENGLOW", "apk", "install"]

ALPENGLOW = Path(sys.executable).parent / "alpenglow"


def apk(
    repo: RealisticRepo, root: Path, arch: str, repository: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """``alpenglow apk --root ROOT --arch ARCH -X REPOSITORY --keys-dir K ARGS``, with the
    package cache in ``cache`` beside the root."""
    return subprocess.run(
        [
            str(ALPENGLOW),
            "apk",
            "--root",
            str(root),
            "--arch",
            arch,
            "-X",
            repository,
            "--keys-dir",
            str(repo.keys_dir),
            "--cache-dir",
            str(root.parent / "cache"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def install(
    repo: RealisticRepo, mirror: Mirror, arch: str, where: Path, branch: str = BRANCH
) -> Path:
    """``alpenglow apk --root WHERE/root-ARCH --initdb --arch ARCH -X MIRROR add
    alpine-base``; skips the test when the repository has no such architecture."""
    if arch not in repo.arches:
        pytest.skip(f"{arch}: {repo.skipped.get(arch, 'not in the realistic repository')}")
    root = where / f"root-{arch}"
    root.mkdir(parents=True)
    done = apk(
        repo, root, arch, mirror.repository(branch), "--initdb", "--quiet", "add", "alpine-base"
    )
    assert done.returncode == 0, done.stderr
    assert (root / "bin" / "busybox").is_file()
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    return root
