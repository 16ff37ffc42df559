"""Install benchmark: ``alpine-base`` from the realistic test repository into an empty root.

Run ``python benchmarks/install.py [--runs N] [--arch ARCH]`` from the repository root. The
repository is the test suite's (built, or taken from ``~/.cache/alpenglow-tests``; the first
build downloads Debian's busybox-static and musl once) and is served over HTTP on 127.0.0.1.
Each run is a fresh ``alpenglow apk --root R --initdb --arch ARCH -X URL --keys-dir K
--cache-dir C add alpine-base`` process into a new empty root:

- *warm*: the cache ``C`` already holds the index and every package (filled by one
  install before timing); the figure is the median wall time;
- *cold*: ``C`` is a new empty directory each run, so the index and all packages are
  downloaded from the local mirror; median wall time too.

Bytecode is cached in a temporary ``PYTHONPYCACHEPREFIX`` after one warm-up run (as an
installed package has its ``.pyc`` files). When apk-tools (``apk``) is on PATH, the same
two installs are timed with it for comparison (target: alpenglow within 1.5x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.alpine_repo import BRANCH, RealisticRepo, realistic_repository  # noqa: E402
from tests.support.mirror import Mirror, serve  # noqa: E402


def alpenglow_command() -> list[str]:
    exe = Path(sys.executable).parent / "alpenglow"
    return (
        [str(exe), "apk"] if exe.exists() else [sys.executable, "-m", "alpenglow.cli.main", "apk"]
    )


def install_args(root: Path, cache: Path, arch: str, url: str, keys: Path) -> list[str]:
    return [
        "--root",
        str(root),
        "--initdb",
        "--arch",
        arch,
        "-X",
        url,
        "--keys-dir",
        str(keys),
        "--cache-dir",
        str(cache),
        "--quiet",
        "add",
        "alpine-base",
    ]


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"install failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    return elapsed


def measure(
    tool: list[str], work: Path, repo: RealisticRepo, mirror: Mirror, arch: str, runs: int
) -> tuple[float, float, int]:
    """(median warm seconds, median cold seconds, HTTP requests during the warm runs)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    url = mirror.repository(BRANCH)
    counter = iter(range(1_000_000))

    def fresh(name: str) -> Path:
        path = work / f"{name}-{next(counter)}"
        path.mkdir()
        return path

    warm_cache = fresh("cache")
    timed([*tool, *install_args(fresh("root"), warm_cache, arch, url, repo.keys_dir)], env)
    before = len(mirror.requests)
    warm = [
        timed([*tool, *install_args(fresh("root"), warm_cache, arch, url, repo.keys_dir)], env)
        for _ in range(runs)
    ]
    warm_requests = len(mirror.requests) - before
    cold = [
        timed([*tool, *install_args(fresh("root"), fresh("cache"), arch, url, repo.keys_dir)], env)
        for _ in range(runs)
    ]
    return statistics.median(warm), statistics.median(cold), warm_requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--arch", default="x86_64")
    opts = parser.parse_args()
    repo = realistic_repository()
    if opts.arch not in repo.arches:
        print(f"{opts.arch}: {repo.skipped.get(opts.arch, 'not in the repository')}")
        return 1
    files = list(repo.arch_dir(opts.arch).glob("*.apk"))
    print(f"repository: {repo.path} ({len(files)} .apk files for {opts.arch})")
    work = Path(tempfile.mkdtemp(prefix="alpenglow-bench-install-"))
    try:
        with serve(repo.mirror) as mirror:
            warm, cold, requests = measure(
                alpenglow_command(), work, repo, mirror, opts.arch, opts.runs
            )
            print(
                f"alpenglow: warm cache {warm * 1000:.0f} ms, cold cache {cold * 1000:.0f} ms "
                f"(median of {opts.runs}; {requests} HTTP requests in the warm runs)"
            )
            apk = shutil.which("apk")
            if apk is None:
                print("apk-tools: not installed here, no comparison")
            else:
                a_warm, a_cold, _ = measure([apk], work, repo, mirror, opts.arch, opts.runs)
                print(
                    f"apk-tools: warm cache {a_warm * 1000:.0f} ms, cold cache "
                    f"{a_cold * 1000:.0f} ms; ratio warm {warm / a_warm:.2f}x, "
                    f"cold {cold / a_cold:.2f}x"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
