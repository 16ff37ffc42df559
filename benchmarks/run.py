"""Container start-up benchmark: ``alpenglow run --rm IMAGE true`` next to ``runc run`` on a
ready bundle of the same image, and ``podman run --rm`` when podman works here.

Run ``python benchmarks/run.py [--runs N] [--callgrind]`` from the repository root, as
root. The image is the test repository's ``alpine-base`` for x86_64 (built with ``alpenglow
build`` from the repository served on 127.0.0.1). Figures are median wall times of fresh
processes, after warm-up runs (the layers are unpacked and the image's facts cached by the
first run):

- ``alpenglow run --rm alpine-base true``: create (record, overlay mount, bundle), run with
  runc in the foreground, record the exit, remove (unmount, delete);
- ``runc run`` of the bundle alpenglow wrote for the same image (the same ``config.json``:
  the same namespaces and mounts; the overlay root already mounted), i.e. the runtime alone;
- ``podman run --rm --network host`` of the same image loaded from a docker-archive written
  by ``alpenglow build`` (podman needs cgroupfs, lower rlimits and a short runroot here);
- the overhead: alpenglow minus runc (target: at most 150 ms; and below podman).

Python's bytecode is cached (``PYTHONPYCACHEPREFIX`` in the work directory) as an installed
package has it, even when the environment sets ``PYTHONDONTWRITEBYTECODE``; the figure without
bytecode is printed too. A fixed Python loop is timed as a reference for how busy the
machine is; ``--callgrind`` also counts the instructions of one run (alpenglow's own process,
fixed hash seed), which the machine's load does not move.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.alpine_repo import BRANCH, realistic_repository  # noqa: E402
from tests.support.mirror import serve  # noqa: E402
from tests.support.runc import runc_path  # noqa: E402

from alpenglow.oci.store import ImageStore  # noqa: E402
from alpenglow.runtime.containers import ContainerStore  # noqa: E402
from alpenglow.runtime.engine import Engine  # noqa: E402

EXE = Path(sys.executable).parent / "alpenglow"


def machine_reference() -> float:
    start = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i & 7
    return time.perf_counter() - start


CPU: list[float] = []
"""The CPU time (user + system, the process and every child it waited for) of each timed
command, in order: less disturbed than wall time when other work shares the machine."""


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    return elapsed


def median_ms(command: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    return statistics.median(timed(command, env) for _ in range(runs)) * 1000


def cpu_ms(runs: int) -> float:
    """The median CPU time of the last ``runs`` timed commands."""
    return statistics.median(CPU[-runs:]) * 1000


def build_image(work: Path, env: dict[str, str]) -> Path:
    """``alpine-base`` for x86_64 into the store, and as a docker-archive for podman."""
    repo = realistic_repository()
    if "x86_64" not in repo.arches:
        raise SystemExit("the test repository has no x86_64")
    key = sorted(repo.keys_dir.iterdir())[0]
    archive = work / "alpine-base.tar"
    with serve(repo.mirror) as mirror:
        config = work / "alpine-base.yaml"
        config.write_text(
            f"contents:\n  repositories: [{mirror.repository(BRANCH)}]\n  keyring: [{key}]\n"
            "  packages: [alpine-base]\narchs: [x86_64]\ncmd: /bin/sh\n"
        )
        timed([str(EXE), "build", str(config)], env)
        timed([str(EXE), "build", str(config), "--output", f"docker-archive:{archive}"], env)
    return archive


def runc_bundle_ms(env: dict[str, str], runs: int) -> float:
    """``runc run`` of the bundle alpenglow writes for the image, its root mounted."""
    runc = runc_path()
    assert runc is not None
    done = subprocess.run(
        [str(EXE), "run", "--name", "bundle-source", "alpine-base", "true"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"alpenglow run failed: {done.stderr}")
    runtime_dir = Path(env["ALPENGLOW_RUNTIME_DIR"])
    engine = Engine(runtime_dir, Path(env["ALPENGLOW_STORE"]))
    record = engine.containers.find("bundle-source")
    engine.mount(record)
    bundle = ContainerStore(runtime_dir).paths(record.id).bundle
    state = runtime_dir / "bench-runc"
    times = []
    try:
        for i in range(runs):
            times.append(
                timed([runc, "--root", str(state), "run", "--bundle", str(bundle), f"bench-{i}"])
            )
    finally:
        engine.remove(record, force=True)
        shutil.rmtree(state, ignore_errors=True)
    return statistics.median(times) * 1000


def callgrind_instructions(command: list[str], env: dict[str, str]) -> int | None:
    """Instructions executed by ``command``'s own process (not its children: runc is not
    counted) under valgrind's callgrind, with a fixed hash seed: a figure the machine's load
    does not move, unlike wall and CPU times. None when valgrind is not installed."""
    if shutil.which("valgrind") is None:
        return None
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        env=dict(env, PYTHONHASHSEED="0"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"failed under callgrind ({done.returncode}): {done.stderr[-2000:]}")
    for line in done.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].strip())
    return None


def podman_ms(archive: Path, runs: int) -> tuple[float | None, str]:
    if shutil.which("podman") is None:
        return None, "podman is not installed"
    short = Path(tempfile.mkdtemp(prefix="ag-pm-"))  # podman wants a runroot < 50 chars
    try:
        for driver in ("overlay", "vfs"):
            storage = ["--root", str(short / "root"), "--runroot", str(short / "run")]
            storage += ["--storage-driver", driver, "--cgroup-manager", "cgroupfs"]
            try:
                loaded = subprocess.run(
                    ["podman", *storage, "load", "-i", str(archive)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if loaded.returncode != 0:
                    continue
                command = ["podman", *storage, "--runtime", runc_path() or "runc"]
                command += ["run", "--rm", "--pull", "never", "--network", "host"]
                command += ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
                command += ["localhost/alpine-base:latest", "true"]
                try:
                    timed(command)  # warm-up
                except SystemExit as exc:
                    last = str(exc).strip().splitlines()[-1:]
                    return None, f"podman does not run here ({driver}): {last}"
                return median_ms(command, runs), f"storage driver {driver}"
            finally:
                subprocess.run(
                    ["podman", *storage, "system", "reset", "-f"], capture_output=True, check=False
                )
        return None, "podman cannot load the image here"
    finally:
        shutil.rmtree(short, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="also count the instructions of one alpenglow run (valgrind; python's only)",
    )
    opts = parser.parse_args()
    if os.geteuid() != 0 or runc_path() is None:
        raise SystemExit("needs root and runc")
    work = Path(tempfile.mkdtemp(prefix="alpenglow-bench-run-"))
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        ALPENGLOW_STORE=str(work / "store"),
        ALPENGLOW_RUNTIME_DIR=str(work / "rt"),
        XDG_CACHE_HOME=str(work / "cache"),
        SOURCE_DATE_EPOCH="1700000000",
        PYTHONPYCACHEPREFIX=str(work / "pyc"),
    )
    env.pop("ALPENGLOW_OCI_RUNTIME", None)
    try:
        archive = build_image(work, env)
        command = [str(EXE), "run", "--rm", "alpine-base", "true"]
        for _ in range(3):
            timed(command, env)  # unpack, cache the image facts, compile the bytecode
        reference = machine_reference()
        ours = median_ms(command, opts.runs, env)
        ours_cpu = cpu_ms(opts.runs)
        no_bytecode = dict(env, PYTHONDONTWRITEBYTECODE="1")
        no_bytecode.pop("PYTHONPYCACHEPREFIX")
        ours_cold = median_ms(command, max(3, opts.runs // 3), no_bytecode)
        instructions = (
            callgrind_instructions([sys.executable, str(EXE), *command[1:]], env)
            if opts.callgrind
            else None
        )
        runc = runc_bundle_ms(env, opts.runs)
        runc_cpu = cpu_ms(opts.runs)
        podman, podman_note = podman_ms(archive, opts.runs)
        podman_cpu = cpu_ms(opts.runs) if podman is not None else 0.0
        runtime = (
            json.loads((work / "rt" / "oci-runtime.json").read_text() or "{}")
            if (work / "rt" / "oci-runtime.json").exists()
            else {}
        )
        store = ImageStore(work / "store")
        rows = [
            ("alpenglow run --rm alpine-base true", ours, ours_cpu),
            ("  the same without cached bytecode", ours_cold, None),
            ("runc run, ready bundle of the same image", runc, runc_cpu),
        ]
        if podman is not None:
            rows.append((f"podman run --rm --network host ({podman_note})", podman, podman_cpu))
        print(f"image: alpine-base (x86_64), {store.list()[0].size / 1e6:.2f} MB compressed")
        print(f"runs per figure: {opts.runs}; medians of fresh processes")
        print(f"machine reference (2M-iteration Python loop): {reference * 1000:.0f} ms")
        if runtime:
            print(f"crun trial: {next(iter(runtime.values())) or 'works'}")
        print(f"{'':46} {'wall':>9} {'cpu':>9}")
        for label, wall, cpu in rows:
            cpu_text = f"{cpu:6.1f} ms" if cpu is not None else ""
            print(f"{label:46} {wall:6.1f} ms {cpu_text:>9}")
        print(
            f"overhead of alpenglow over runc: {ours - runc:.1f} ms wall, "
            f"{ours_cpu - runc_cpu:.1f} ms cpu (target: at most 150 ms)"
        )
        if instructions is not None:
            print(
                f"instructions of one alpenglow run (callgrind, its own process): {instructions:,}"
            )
        if podman is not None:
            print(f"alpenglow is {podman / ours:.1f}x faster than podman (wall)")
        else:
            print(f"podman: not measured ({podman_note})")
    finally:
        left = subprocess.run(
            [str(EXE), "ps", "-aq"], env=env, capture_output=True, text=True, check=False
        ).stdout.split()
        if left:
            subprocess.run([str(EXE), "rm", "-f", *left], env=env, capture_output=True, check=False)
        subprocess.run([str(EXE), "prune", "-f"], env=env, capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
