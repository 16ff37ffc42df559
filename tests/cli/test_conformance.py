"""apk-tools' own solver cases (``shared/conformance/apk-solver/*.test``), run exactly as
``shared/conformance/README.md`` describes: a fresh root per case, each ``@REPO`` tarred as
``APKINDEX`` into ``R/tmp/NAME.tar.gz`` behind a ``test://`` line, and ``alpenglow apk
--root R --allow-untrusted --simulate --root-tmpfs=no [--no-cache] ARGS`` run as a real
process in ``R/tmp``; stdout and stderr together must equal the ``@EXPECT`` lines. Each case
runs twice with one cache directory, so that the second run numbers names from the
discovery closures the first one kept."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cli.query_roots import tar_index

REPO = Path(__file__).resolve().parents[2]
CASES = REPO.parent / "shared" / "conformance" / "apk-solver"


@dataclass
class Case:
    args: list[str] = field(default_factory=list)
    repos: list[tuple[str | None, str]] = field(default_factory=list)
    installed: str | None = None
    world: list[str] = field(default_factory=list)
    cache: str | None = None
    expect: str = ""


def parse_case(path: Path) -> Case:
    case = Case()
    lines = path.read_text().split("\n")
    for i, line in enumerate(lines):
        if line.startswith("@EXPECT"):
            rest = lines[i + 1 :]
            if rest and rest[-1] == "":
                rest = rest[:-1]
            case.expect = "".join(f"{r}\n" for r in rest)
            break
        words = line.split()
        if not words:
            continue
        key, values = words[0], words[1:]
        if key == "@ARGS":
            case.args += values
        elif key == "@REPO":
            if len(values) == 2:
                case.repos.append((values[0], values[1]))
            else:
                case.repos.append((None, values[0]))
        elif key == "@INSTALLED":
            case.installed = values[0]
        elif key == "@WORLD":
            case.world += values
        elif key == "@CACHE":
            case.cache = values[0]
    return case


def build_root(case: Case, root: Path) -> None:
    for sub in ("etc/apk/cache", "lib/apk/db", "tmp", "var/log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "etc/apk/world").write_text("".join(f"{w}\n" for w in case.world))
    installed = b""
    if case.installed:
        installed = (CASES / case.installed).read_bytes()
    (root / "lib/apk/db/installed").write_bytes(installed)
    if case.cache:
        (root / "etc/apk/cache/installed").write_bytes((CASES / case.cache).read_bytes())
    lines = []
    for tag, name in case.repos:
        target = root / "tmp" / (Path(name).stem + ".tar.gz")
        tar_index((CASES / name).read_text(), target)
        url = f"test://{target}"
        lines.append(f"{tag} {url}" if tag else url)
    (root / "etc/apk/repositories").write_text("".join(f"{line}\n" for line in lines))


def run_case(case: Case, root: Path, cache_home: Path | None = None) -> str:
    if not root.exists():
        build_root(case, root)
    cmd = [
        sys.executable,
        "-m",
        "alpenglow.cli.main",
        "apk",
        "--root",
        str(root),
        "--allow-untrusted",
        "--simulate",
        "--root-tmpfs=no",
    ]
    if case.cache is None:
        cmd.append("--no-cache")
    cmd += case.args
    env = dict(os.environ)
    env.pop("APK_PREUPGRADE_TOKEN", None)
    env.pop("APK_SELFUPGRADE_TOKEN", None)
    if cache_home is not None:
        env["XDG_CACHE_HOME"] = str(cache_home)
    proc = subprocess.run(
        cmd,
        cwd=root / "tmp",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        timeout=60,
        check=False,
    )
    return proc.stdout.decode("utf-8", "replace")


TESTS = sorted(CASES.glob("*.test")) if CASES.is_dir() else []


def test_cases_present() -> None:
    assert len(TESTS) >= 89, f"expected the apk-solver cases in {CASES}"


@pytest.mark.parametrize("path", TESTS, ids=[p.stem for p in TESTS])
def test_conformance(path: Path, tmp_path: Path) -> None:
    case = parse_case(path)
    # twice: the first run leaves what discovery found in its cache, the second uses it
    for _ in range(2):
        got = run_case(case, tmp_path / "root", tmp_path / "xdg-cache")
        assert got == case.expect
