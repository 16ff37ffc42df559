"""Build benchmark: the test repository's ``alpine-base`` image, next to the classic pipeline.

Run ``python benchmarks/build.py [--runs N]`` from the repository root. The repository is the
test suite's (built, or taken from ``~/.cache/alpenglow-tests``) served over HTTP on
127.0.0.1; the package cache is warm (filled by one build before timing). Figures, each the
median wall time of fresh processes:

- ``alpenglow build alpine-base.yaml --arch x86_64 --output oci:DIR`` (one architecture);
- the same for every architecture of the repository (built in parallel);
- the one-architecture build again with the compressed-layer cache emptied first (the layer
  is compressed anew; packages still come from the warm cache);
- the classic pipeline for one architecture: ``alpenglow apk --root R --initdb add
  alpine-base`` into a directory, then ``tar -C R -cf - . | gzip -6 | sha256sum``;
- the compressed layer size of both (target: the build is faster than the pipeline, and its
  layer no larger than the pipeline's gzip -6 output).

A fixed Python loop is timed too, as a reference for how busy the machine is.
"""

from __future__ import annotations

import argparse
import json
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
from tests.support.mirror import serve  # noqa: E402

EXE = Path(sys.executable).parent / "alpenglow"


def machine_reference() -> float:
    start = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i & 7
    return time.perf_counter() - start


def timed(command: list[str] | str, env: dict[str, str], *, shell: bool = False) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, shell=shell
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {command}\n{done.stderr}")
    return elapsed


def write_config(path: Path, repo: RealisticRepo, url: str) -> Path:
    key = sorted(repo.keys_dir.iterdir())[0]
    path.write_text(
        f"contents:\n  repositories: [{url}]\n  keyring: [{key}]\n  packages: [alpine-base]\n"
    )
    return path


def layer_size(layout: Path) -> int:
    index = json.loads((layout / "index.json").read_bytes())
    top = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    entry = top["manifests"][0]
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"][7:]).read_bytes())
    return int(manifest["layers"][0]["size"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()
    repo = realistic_repository()
    work = Path(tempfile.mkdtemp(prefix="alpenglow-bench-build-"))
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["XDG_CACHE_HOME"] = str(work / "cache")
    env["ALPENGLOW_STORE"] = str(work / "store")
    counter = iter(range(1_000_000))

    def fresh(name: str) -> Path:
        return work / f"{name}-{next(counter)}"

    try:
        with serve(repo.mirror) as mirror:
            url = mirror.repository(BRANCH)
            config = write_config(work / "alpine-base.yaml", repo, url)
            build = [str(EXE), "build", str(config)]
            timed([*build, "--arch", "all", "--output", f"oci:{fresh('warm')}"], env)  # warm-up

            def one() -> float:
                return timed([*build, "--arch", "x86_64", "--output", f"oci:{fresh('o')}"], env)

            def one_cold_layer() -> float:
                shutil.rmtree(work / "cache" / "alpenglow" / "layers", ignore_errors=True)
                return one()

            def every() -> float:
                return timed([*build, "--arch", "all", "--output", f"oci:{fresh('o')}"], env)

            def classic() -> float:
                root = fresh("root")
                root.mkdir()
                cache = work / "apk-cache"
                apk = [str(EXE), "apk", "--root", str(root), "--initdb", "--arch", "x86_64"]
                apk += ["-X", url, "--keys-dir", str(repo.keys_dir), "--cache-dir", str(cache)]
                apk += ["--quiet", "add", "alpine-base"]
                out = work / "classic.tar.gz"
                pipeline = (
                    f"{' '.join(apk)} && tar -C {root} -cf - . | gzip -6 | tee {out} | sha256sum"
                )
                return timed(pipeline, env, shell=True)

            classic()  # fills the apk cache
            ref = statistics.median(machine_reference() for _ in range(3))
            t_one = statistics.median(one() for _ in range(opts.runs))
            t_all = statistics.median(every() for _ in range(opts.runs))
            t_cold_layer = statistics.median(one_cold_layer() for _ in range(opts.runs))
            t_classic = statistics.median(classic() for _ in range(opts.runs))
            sample = fresh("size")
            timed([*build, "--arch", "x86_64", "--output", f"oci:{sample}"], env)
            ours = layer_size(sample)
            theirs = (work / "classic.tar.gz").stat().st_size
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine reference loop: {ref * 1000:.0f} ms")
    print(f"architectures: {', '.join(repo.arches)} ({len(repo.arches)})")
    print(f"alpenglow build, x86_64:           {t_one * 1000:.0f} ms (median of {opts.runs})")
    print(f"alpenglow build, all architectures: {t_all * 1000:.0f} ms")
    print(
        "alpenglow build, x86_64, layer compressed anew (no layer cache): "
        f"{t_cold_layer * 1000:.0f} ms"
    )
    print(f"classic apk --root + tar | gzip -6 | sha256sum, x86_64: {t_classic * 1000:.0f} ms")
    print(f"layer size: alpenglow {ours} B, classic gzip -6 {theirs} B ({ours / theirs:.3f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
