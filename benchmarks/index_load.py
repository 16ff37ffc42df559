"""Load + verify Alpine v3.16 main x86_64 APKINDEX.tar.gz (4,929 packages) N times in-process.

Each run starts from the file's bytes and a fresh Keyring: gunzip both members, verify the
RSA signature over the index member, read the tar, parse every stanza into Package records.
The module-level dependency-atom memo (alpenglow.apk.dependency.parse_cached) is shared by
the runs, as it is by the loads within one process; the first run (cold memo) is reported
separately. Usage: .venv/bin/python benchmarks/index_load.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from alpenglow.apk.index import load_index_archive
from alpenglow.apk.signing import Keyring

__all__ = ["main"]

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpine-v3.16-main-x86_64"


def _calibration_ms() -> float:
    """A fixed pure-Python loop, to compare machines (or one noisy machine over time)."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main(argv: list[str]) -> int:
    runs = int(argv[1]) if len(argv) > 1 else 21
    blob = (DATA / "APKINDEX.tar.gz").read_bytes()
    times: list[float] = []
    count = 0
    for _ in range(runs):
        keys = Keyring.from_directory(DATA)
        start = time.perf_counter()
        index = load_index_archive(blob, keys, source="APKINDEX.tar.gz")
        times.append(time.perf_counter() - start)
        count = len(index.packages)
        del index  # freeing the previous result is not part of the next load
    ms = [t * 1000 for t in times]
    print(f"packages: {count}, runs: {runs}")
    print(f"first (cold) run: {ms[0]:.1f} ms")
    rest = ms[1:] or ms
    print(f"median of the other runs: {statistics.median(rest):.1f} ms (min {min(rest):.1f})")
    print(f"machine reference: {_calibration_ms():.1f} ms for a 1,000,000-step Python loop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
