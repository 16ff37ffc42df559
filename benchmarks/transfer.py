"""Transfer benchmark: push and pull the multi-architecture fixture image with a local
registry, next to ``skopeo copy`` of the same OCI layout.

Run ``python benchmarks/transfer.py [--runs N] [--jobs J]`` from the repository root. The
image is the test suite's: ``alpenglow build`` of ``alpine-base`` for every architecture of the
realistic repository (tests/support/fixture_image.py), an index of up to nine platforms with
one gzip layer each. The registry is Debian's ``docker-registry`` on 127.0.0.1
(tests/support/registry.py), started afresh with empty storage for every timed run, so each
push uploads every blob. Figures are the median wall time of fresh processes:

- push: ``alpenglow push --no-referrers oci:LAYOUT:latest HOST/bench/img:1`` and
  ``skopeo copy --all oci:LAYOUT:latest docker://HOST/bench/img:1`` (the image alone: skopeo
  leaves the layout's SBOM artifacts behind); and, on its own row, ``alpenglow push`` with
  the SBOMs (nine more artifact manifests and their ``sha256-<hex>`` referrers tags);
- pull: ``alpenglow pull HOST/bench/img:1`` (into an empty image store),
  ``alpenglow copy docker://HOST/bench/img:1 oci:DIR`` (into a new OCI layout, as skopeo
  writes) and ``skopeo copy --all docker://HOST/bench/img:1 oci:DIR:latest``;
- the start-up of each tool (``alpenglow --version``, ``skopeo --version``), as a floor,
  and ``alpenglow pull --help``: the start-up of the transfer commands (their option
  parser and help, without the transfer machinery).

CPU time (user + system) is shown next to each wall time: on a busy machine it is the steadier
figure. Python byte code is cached in a private directory (``PYTHONPYCACHEPREFIX``, filled by a
warm-up run), as it is for an installed package, even when ``PYTHONDONTWRITEBYTECODE`` is set.

Target: alpenglow no slower than skopeo. A fixed Python loop is timed too, as a reference
for how busy the machine is.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.alpine_repo import realistic_repository  # noqa: E402
from tests.support.fixture_image import build_fixture_image  # noqa: E402
from tests.support.registry import RegistryServer, running_registry  # noqa: E402

from alpenglow.oci.transport import read_oci  # noqa: E402

EXE = Path(sys.executable).parent / "alpenglow"


def machine_reference() -> float:
    start = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i & 7
    return time.perf_counter() - start


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], env: dict[str, str], cpu: list[float] | None = None) -> float:
    """Wall seconds of ``command`` (its CPU seconds appended to ``cpu``)."""
    before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    if cpu is not None:
        cpu.append(_children_cpu() - before)
    return elapsed


Measure = Callable[[RegistryServer, Path, list[float]], float]


def medians(runs: int, work: Path, measures: dict[str, Measure]) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each measure over ``runs`` rounds. The measures take
    turns within a round (so a change in the machine's load hits them alike), each with a
    fresh registry (empty storage) and scratch directory."""
    walls: dict[str, list[float]] = {name: [] for name in measures}
    cpus: dict[str, list[float]] = {name: [] for name in measures}
    for n in range(runs):
        for number, (name, measure) in enumerate(measures.items()):
            scratch = work / f"run-{n}-{number}"
            with running_registry(scratch / "registry") as registry:
                walls[name].append(measure(registry, scratch, cpus[name]))
            shutil.rmtree(scratch, ignore_errors=True)
    return {
        name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in measures
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=8, help="alpenglow --jobs")
    opts = parser.parse_args()
    if shutil.which("skopeo") is None:
        raise SystemExit("skopeo is not installed (bash scripts/setup installs it)")
    work = Path(tempfile.mkdtemp(prefix="alpenglow-bench-transfer-"))
    try:
        layout = build_fixture_image(realistic_repository(), work / "image")
        bundle = read_oci(layout, "latest")
        size = bundle.size
        env = dict(os.environ)
        env["ALPENGLOW_AUTH_FILE"] = str(work / "auth.json")
        # byte code cached as an installed package has it (in a private directory)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        skopeo = ["skopeo", "--insecure-policy"]
        jobs = ["--jobs", str(opts.jobs)]
        source = f"oci:{layout}:latest"

        def ours_push(registry: RegistryServer, scratch: Path, cpu: list[float]) -> float:
            # the image alone, as skopeo copies it (it leaves the layout's SBOMs behind)
            target = f"{registry.host}/bench/img:1"
            return run([str(EXE), "push", "--no-referrers", *jobs, source, target], env, cpu)

        def ours_push_sboms(registry: RegistryServer, scratch: Path, cpu: list[float]) -> float:
            target = f"{registry.host}/bench/img:1"
            return run([str(EXE), "push", *jobs, source, target], env, cpu)

        def skopeo_push(registry: RegistryServer, scratch: Path, cpu: list[float]) -> float:
            target = f"docker://{registry.host}/bench/img:1"
            copy = [*skopeo, "copy", "--all", "--dest-tls-verify=false", source, target]
            return run(copy, env, cpu)

        def seeded(registry: RegistryServer) -> str:
            ref = f"{registry.host}/bench/img:1"
            copy = [*skopeo, "copy", "--all", "--dest-tls-verify=false", source, f"docker://{ref}"]
            run(copy, env)
            return ref

        def ours_pull(registry: RegistryServer, scratch: Path, cpu: list[float]) -> float:
            ref = seeded(registry)
            store_env = {**env, "ALPENGLOW_STORE": str(scratch / "store")}
            return run([str(EXE), "pull", *jobs, ref], store_env, cpu)

        def ours_copy(registry: RegistryServer, scratch: Path, cpu: list[float]) -> float:
            ref = seeded(registry)
            copy = [str(EXE), "copy", *jobs, f"docker://{ref}", f"oci:{scratch}/out"]
            return run(copy, env, cpu)

        def skopeo_pull(registry: RegistryServer, scratch: Path, cpu: list[float]) -> float:
            ref = seeded(registry)
            target = f"oci:{scratch}/out:latest"
            copy = [*skopeo, "copy", "--all", "--src-tls-verify=false", f"docker://{ref}", target]
            return run(copy, env, cpu)

        def startup(command: list[str]) -> Measure:
            def measure(registry: RegistryServer, scratch: Path, cpu: list[float]) -> float:
                return run(command, env, cpu)

            return measure

        run([str(EXE), "images"], {**env, "ALPENGLOW_STORE": str(work / "warm")})  # warm up
        run([str(EXE), "push", "--help"], env)
        figures = medians(
            opts.runs,
            work,
            {
                "alpenglow push --no-referrers": ours_push,
                "skopeo copy --all oci: docker://": skopeo_push,
                "alpenglow push (with the SBOMs)": ours_push_sboms,
                "alpenglow pull (into the store)": ours_pull,
                "alpenglow copy docker:// oci:": ours_copy,
                "skopeo copy --all docker:// oci:": skopeo_pull,
                "alpenglow --version": startup([str(EXE), "--version"]),
                "alpenglow pull --help": startup([str(EXE), "pull", "--help"]),
                "skopeo --version": startup(["skopeo", "--version"]),
            },
        )
        print(
            f"image: {len(bundle.images())} platforms, {len(bundle.digests())} blobs, "
            f"{size / 1e6:.2f} MB compressed; median of {opts.runs} runs, "
            f"alpenglow --jobs {opts.jobs}"
        )
        width = max(len(name) for name in figures)
        print(f"  {'':<{width}}  {'wall':>7}     {'cpu':>7}")
        for name, (wall, cpu) in figures.items():
            print(f"  {name:<{width}}  {wall * 1000:7.0f} ms  {cpu * 1000:7.0f} ms")
        print(
            f"  {'machine reference (Python loop)':<{width}}  {machine_reference() * 1000:7.0f} ms"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
