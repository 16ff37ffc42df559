"""Solver benchmarks: a fresh ``alpenglow apk add --simulate`` process, the in-process
solve, and a solve over a synthetic 100,000-package index.

Run ``python benchmarks/resolve.py`` from the repository root. The fresh-process figure is
the median wall time of ``alpenglow apk --root R --keys-dir K --arch x86_64 --simulate
--no-cache add alpine-base python3 nginx`` against the real Alpine v3.16 main index in
``../shared/data`` (target <= 110 ms; apk-tools 3.0.6 takes about 55 ms). Bytecode is
cached in a temporary ``PYTHONPYCACHEPREFIX`` (as an installed package has its ``.pyc``
files), and the parsed-index cache (:mod:`alpenglow.apk.index_cache`, with the discovery
closures it keeps) lives in a temporary ``XDG_CACHE_HOME``; the first run, which fills them,
is reported on its own. A cached index is read as an :class:`~alpenglow.apk.index_table.IndexTable`
(per-name tables; records decoded when the solve asks for them). In process, the solve is
timed with discovery walked, and again with the closures the first solve left.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "alpine-v3.16-main-x86_64"
WORLD = ["alpine-base", "python3", "nginx"]


def calibration_ms() -> float:
    """A fixed pure-Python loop (best of 5), to compare machines or one noisy machine over
    time; the figures above it scale with it."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best * 1000


def make_root(base: Path) -> tuple[Path, Path]:
    root = base / "R"
    keys = base / "K"
    (root / "etc/apk").mkdir(parents=True)
    (root / "lib/apk/db").mkdir(parents=True)
    keys.mkdir()
    (root / "etc/apk/world").write_text("")
    (root / "lib/apk/db/installed").write_text("")
    (root / "etc/apk/repositories").write_text(f"{DATA / 'APKINDEX.tar.gz'}\n")
    for key in DATA.glob("*.pub"):
        shutil.copy(key, keys / key.name)
    return root, keys


def fresh_process(root: Path, keys: Path, runs: int = 9) -> tuple[float, float, str]:
    exe = Path(sys.executable).parent / "alpenglow"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "alpenglow.cli.main"]
    cmd += ["apk", "--root", str(root), "--keys-dir", str(keys), "--arch", "x86_64"]
    cmd += ["--simulate", "--no-cache", "add", *WORLD]
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root.parent / "pycache")
    env["XDG_CACHE_HOME"] = str(root.parent / "cache")
    start = time.perf_counter()
    last = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # warm-up
    first = time.perf_counter() - start
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        last = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
    summary = last.stdout.strip().splitlines()[-1] if last.stdout.strip() else last.stderr
    return first, statistics.median(times), summary


def in_process(runs: int = 5) -> tuple[float, float, float, float, int]:
    from alpenglow.apk.dependency import parse
    from alpenglow.apk.index import load_index_archive
    from alpenglow.apk.pool import Pool
    from alpenglow.apk.signing import Keyring
    from alpenglow.apk.solver import Closure, solve

    start = time.perf_counter()
    archive = load_index_archive(
        (DATA / "APKINDEX.tar.gz").read_bytes(), Keyring.from_directory(DATA), source="main"
    )
    load = time.perf_counter() - start
    world = [parse(n) for n in WORLD]
    times = []
    solves = []
    known = []
    count = 0
    for _ in range(runs):
        start = time.perf_counter()
        pool = Pool(["x86_64"])
        pool.note_world([])
        pool.add_installed([])
        pool.add_repository("main", archive.packages)
        pool.finish()
        built = time.perf_counter()
        closures: dict[str, Closure] = {}
        solution = solve(pool, world, closures=closures)
        times.append(time.perf_counter() - start)
        solves.append(time.perf_counter() - built)
        count = solution.num_changes
        start = time.perf_counter()
        again = solve(pool, world, closures=closures)  # discovery numbered from closures
        known.append(time.perf_counter() - start)
        assert again.changes == solution.changes
    return (
        load,
        statistics.median(times),
        statistics.median(solves),
        statistics.median(known),
        count,
    )


def through_table(runs: int = 5) -> float:
    """Pool and solve over the index read back from the cache's form (an IndexTable
    loaded from its marshal dump, every package in columns besides), with nothing known
    of discovery: what a fresh process does when its package universe changed."""
    import marshal

    from alpenglow.apk.dependency import parse
    from alpenglow.apk.index import load_index_archive
    from alpenglow.apk.index_table import IndexTable, decode_columns, encode_columns
    from alpenglow.apk.pool import Pool
    from alpenglow.apk.signing import Keyring
    from alpenglow.apk.solver import solve

    archive = load_index_archive(
        (DATA / "APKINDEX.tar.gz").read_bytes(), Keyring.from_directory(DATA), source="main"
    )
    names: dict[str, None] = {}
    for pkg in archive.packages:
        names[pkg.name] = None
        for deps in (pkg.depends, pkg.provides, pkg.install_if, pkg.replaces):
            names.update(dict.fromkeys(d.name for d in deps))
    blob = marshal.dumps(IndexTable.build(archive.packages, tuple(names)).dump())
    columns = encode_columns(archive.packages)
    world = [parse(n) for n in WORLD]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        pool = Pool(["x86_64"])
        pool.note_world(world)
        pool.add_installed([])
        table = IndexTable.load(marshal.loads(blob))
        table.set_bulk(lambda: decode_columns(columns))  # as the index cache does
        pool.add_repository("main", table)
        pool.finish()
        solve(pool, world)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic(n: int = 100_000) -> tuple[float, float, int]:
    """A layered index: package i depends on a few lower-numbered ones and on shared
    libraries provided as ``so:`` names; every tenth has a ``-doc`` install_if twin."""
    from alpenglow.apk.dependency import Dependency, parse
    from alpenglow.apk.index import Package
    from alpenglow.apk.pool import Pool
    from alpenglow.apk.solver import solve
    from alpenglow.apk.version import Op

    pkgs = []
    docs = Dependency("docs")
    for i in range(n):
        deps = [Dependency(f"p{j}") for j in (i // 2, i // 3, i // 7) if j < i]
        deps.append(Dependency(f"so:lib{i % 500}.so.1"))
        provides = (Dependency(f"so:lib{i}.so.1", Op.EQ, "1"),) if i < 500 else ()
        pkgs.append(
            Package(
                name=f"p{i}",
                version=f"1.{i % 13}-r0",
                checksum="X1" + i.to_bytes(20, "big").hex(),
                installed_size=1000,
                depends=tuple(deps),
                provides=provides,
            )
        )
        if i % 10 == 0:
            pkgs.append(
                Package(
                    name=f"p{i}-doc",
                    version="1.0-r0",
                    checksum="X1" + (n + i).to_bytes(20, "big").hex(),
                    install_if=(Dependency(f"p{i}", Op.EQ, f"1.{i % 13}-r0"), docs),
                )
            )
    world = [parse(f"p{i}") for i in range(n - 20, n)]
    start = time.perf_counter()
    pool = Pool(["x86_64"])
    pool.note_world([])
    pool.add_installed([])
    pool.add_repository("synthetic", pkgs)
    pool.finish()
    built = time.perf_counter() - start
    start = time.perf_counter()
    solution = solve(pool, world)
    solved = time.perf_counter() - start
    return built, solved, solution.num_changes


def main() -> int:
    if not DATA.is_dir():
        print(f"reference data not found at {DATA}", file=sys.stderr)
        return 1
    reference = calibration_ms()
    with tempfile.TemporaryDirectory() as tmp:
        root, keys = make_root(Path(tmp))
        first, wall, summary = fresh_process(root, keys)
    print(f"fresh process (median of 9): {wall * 1000:.0f} ms  [{summary}]")
    print(f"  first run (no bytecode, no index cache): {first * 1000:.0f} ms")
    load, both, solve_time, known, count = in_process()
    print(f"in-process: index load {load * 1000:.0f} ms; pool+solve {both * 1000:.0f} ms")
    print(
        f"  solve alone {solve_time * 1000:.0f} ms, {known * 1000:.0f} ms with the discovery"
        f" closures known ({count} changes)"
    )
    print(
        f"  table load + pool + solve (the cached index's form, no closures):"
        f" {through_table() * 1000:.0f} ms"
    )
    built, solved, changes = synthetic()
    print(
        f"synthetic 100,000 packages: pool {built:.2f} s, solve {solved:.2f} s ({changes} changes)"
    )
    reference = min(reference, calibration_ms())
    print(f"machine reference: {reference:.1f} ms for a 1,000,000-step Python loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
