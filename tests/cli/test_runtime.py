"""Containers end to end: ``alpenglow run/ps/stop/start/rm/prune/rmi/system binfmt`` with the
real runc, on images built by ``alpenglow build`` from the realistic repository.

Every test gets its own runtime directory; afterwards everything is removed with the CLI and
the test checks that nothing is left: no mount below the runtime directory (as
``/proc/self/mountinfo`` lists them), no container directory, no unpacked layer, no runc
state. Needs root and runc; skipped with the reason otherwise.
"""

from __future__ import annotations

import io
import json
import os
import pty
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from alpenglow.oci.image import OCI_LAYER_GZIP, canonical_json, image_bundle
from alpenglow.oci.layer import compress
from alpenglow.oci.store import ImageStore
from alpenglow.runtime.storage import mounts_below
from tests.support.alpine_repo import BRANCH, RealisticRepo
from tests.support.mirror import Mirror
from tests.support.runc import emulator_problem, qemu_emulator, runc_path

ALPENGLOW = Path(sys.executable).parent / "alpenglow"

pytestmark = [
    pytest.mark.skipif(runc_path() is None, reason="runc is not installed (apt-get install runc)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="running containers needs root here"),
]


def build_config(repo: RealisticRepo, mirror: Mirror, archs: Sequence[str], extra: str = "") -> str:
    keys = sorted(repo.keys_dir.iterdir())
    return (
        "contents:\n"
        f"  repositories:\n    - {mirror.repository(BRANCH)}\n"
        f"  keyring:\n    - {keys[0]}\n"
        "  packages:\n    - alpine-base\n"
        f"archs: [{', '.join(archs)}]\n"
        "cmd: /bin/sh\n" + extra
    )


@pytest.fixture(scope="module")
def store(
    realistic_repo: RealisticRepo,
    alpine_mirror: Mirror,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """An image store holding ``alpine-base`` (x86_64, and aarch64 when the repository has
    it), ``app`` (on top of it: a user, a working directory, an environment), ``trap``
    (stop signal SIGUSR1) and ``whiteouts`` (a hand-made layer removing files)."""
    if "x86_64" not in realistic_repo.arches:
        pytest.skip("the realistic repository has no x86_64")
    work = tmp_path_factory.mktemp("runtime-images")
    env = dict(os.environ)
    env.update(
        ALPENGLOW_STORE=str(work / "store"),
        XDG_CACHE_HOME=str(work / "cache"),
        SOURCE_DATE_EPOCH="1700000000",
    )
    archs = [a for a in ("x86_64", "aarch64") if a in realistic_repo.arches]
    configs = {
        "alpine-base": build_config(realistic_repo, alpine_mirror, archs),
        "app": "base: alpine-base\n"
        "accounts:\n"
        "  groups: [{groupname: app, gid: 10000}, {groupname: extra, gid: 10001, members: [app]}]\n"
        "  users: [{username: app, uid: 10000, gid: 10000}]\n"
        "  run-as: app\n"
        "paths:\n"
        "  - {path: /srv, type: directory, uid: 10000, gid: 10000, permissions: 0o755}\n"
        "work-dir: /srv\n"
        "environment: {GREETING: hello}\n"
        "archs: [x86_64]\n",
        "trap": "base: alpine-base\nstop-signal: SIGUSR1\narchs: [x86_64]\n",
    }
    for name, text in configs.items():
        path = work / f"{name}.yaml"
        path.write_text(text)
        done = subprocess.run(
            [str(ALPENGLOW), "build", str(path), "--tag", f"{name}:latest"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    add_whiteout_image(work / "store")
    return work / "store"


def add_whiteout_image(path: Path) -> None:
    """``whiteouts``: alpine-base's layer plus one removing ``/etc/alpine-release`` and
    making ``/etc/apk`` opaque with a single new file in it."""
    images = ImageStore(path)
    base = images.get("alpine-base").images()
    amd64 = next(i for i in base if i.platform.architecture == "amd64")
    bundle = images.get("alpine-base")
    lower = bundle.blob(amd64.manifest.layers[0].digest)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            ("etc/.wh.alpine-release", b""),
            ("etc/apk/.wh..wh..opq", b""),
            ("etc/apk/only-this", b"new\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    upper_raw = raw.getvalue()
    config = json.loads(bundle.blob(amd64.manifest.config.digest))
    import hashlib

    config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(upper_raw).hexdigest())
    config["history"] = []
    image = image_bundle(
        canonical_json(config),
        [(OCI_LAYER_GZIP, lower), (OCI_LAYER_GZIP, compress(upper_raw))],
    )
    images.add(image, ["whiteouts:latest"])


@pytest.fixture
def runtime(store: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of one test's runs; afterwards everything is removed and nothing
    may be left behind."""
    rt = tmp_path / "rt"
    env = dict(os.environ)
    env.update(ALPENGLOW_STORE=str(store), ALPENGLOW_RUNTIME_DIR=str(rt))
    env.pop("ALPENGLOW_OCI_RUNTIME", None)
    yield env
    left = ag(env, "ps", "-aq", "--no-trunc").stdout.split()
    if left:
        ag(env, "rm", "-f", *left)
    ag(env, "prune", "-f")
    assert mounts_below(rt) == []
    if (rt / "containers").exists():
        assert os.listdir(rt / "containers") == []
    if (rt / "layers" / "sha256").exists():
        assert os.listdir(rt / "layers" / "sha256") == []
    if (rt / "runc").exists():
        assert os.listdir(rt / "runc") == []


def ag(
    env: dict[str, str], *args: str, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ALPENGLOW), *args],
        env=env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def background(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(ALPENGLOW), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def inspect(env: dict[str, str], name: str) -> dict[str, Any]:
    done = ag(env, "container", "inspect", name)
    assert done.returncode == 0, done.stderr
    [data] = json.loads(done.stdout)
    assert isinstance(data, dict)
    return data


def wait_running(env: dict[str, str], name: str, timeout: float = 60) -> dict[str, Any]:
    """The container's inspect data once the runtime runs it."""
    deadline = time.monotonic() + timeout
    rt = Path(env["ALPENGLOW_RUNTIME_DIR"])
    while time.monotonic() < deadline:
        done = ag(env, "container", "inspect", name)
        if done.returncode == 0:
            [data] = json.loads(done.stdout)
            state = runc_state(rt, data["Id"])
            if data["State"]["Running"] and state is not None and state["status"] == "running":
                assert isinstance(data, dict)
                return data
        time.sleep(0.1)
    raise AssertionError(f"{name} did not start within {timeout} s")


def runc_state(rt: Path, container_id: str) -> dict[str, Any] | None:
    runc = runc_path()
    assert runc is not None
    done = subprocess.run(
        [runc, "--root", str(rt / "runc"), "state", container_id],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    state = json.loads(done.stdout)
    assert isinstance(state, dict)
    return state


def ps_rows(env: dict[str, str], *flags: str) -> list[str]:
    done = ag(env, "ps", *flags)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"]
    return lines[1:]


# --------------------------------------------------------------------------------------------


def test_echo_hello_leaves_nothing(runtime: dict[str, str]) -> None:
    done = ag(runtime, "run", "--rm", "alpine-base", "echo", "hello")
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello\n", "")
    rt = Path(runtime["ALPENGLOW_RUNTIME_DIR"])
    assert os.listdir(rt / "containers") == []
    assert mounts_below(rt) == []
    assert ps_rows(runtime, "-a") == []
    # the layers stay unpacked for the next run; the image facts are cached
    assert len(os.listdir(rt / "layers" / "sha256")) == 1
    assert (rt / "images.json").is_file()
    done = ag(runtime, "run", "--rm", "alpine-base", "sh", "-c", "cat /etc/alpine-release")
    assert (done.returncode, done.stdout) == (0, "3.21.0\n")


def test_foreground_output_is_logged_too(runtime: dict[str, str]) -> None:
    # two pipes: what comes first in the log is only certain when the writes are apart
    script = "echo out; sleep 0.2; echo err >&2"
    done = ag(runtime, "run", "--name", "fg", "alpine-base", "sh", "-c", script)
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")
    logs = ag(runtime, "logs", "fg")
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, "out\n", "err\n")
    assert ag(runtime, "logs", "--tail", "1", "fg").stderr == "err\n"
    assert ag(runtime, "rm", "fg").returncode == 0


def test_exit_codes_ps_and_restart_attached(runtime: dict[str, str]) -> None:
    done = ag(runtime, "run", "--name", "three", "alpine-base", "sh", "-c", "echo out; exit 3")
    assert (done.returncode, done.stdout) == (3, "out\n")
    assert ps_rows(runtime) == []  # not running
    [row] = ps_rows(runtime, "-a")
    assert '"sh -c echo out; exi…"' in row
    assert "Exited (3) " in row
    assert row.endswith(" ago   three") or row.split()[-1] == "three"
    [short] = ag(runtime, "ps", "-aq").stdout.split()
    data = inspect(runtime, short)
    assert data["Name"] == "three"
    assert data["Id"].startswith(short)
    assert len(data["Id"]) == 64
    assert data["State"]["ExitCode"] == 3
    assert data["State"]["Status"] == "exited"
    assert data["Config"]["Cmd"] == ["sh", "-c", "echo out; exit 3"]
    assert inspect(runtime, data["Id"][:5])["Name"] == "three"
    done = ag(runtime, "inspect", "three")  # the image command finds containers too
    assert json.loads(done.stdout)[0]["Id"] == data["Id"]
    done = ag(runtime, "start", "-a", "three")
    assert (done.returncode, done.stdout) == (3, "out\n")
    assert inspect(runtime, "three")["State"]["RestartCount"] == 1
    done = ag(runtime, "run", "--name", "three", "alpine-base", "true")
    assert done.returncode == 2
    assert 'the container name "/three" is already in use' in done.stderr
    done = ag(runtime, "run", "alpine-base", "sh", "-c", "sh -c 'kill -9 $$'; exit $?")
    assert done.returncode == 137  # as the shell reports its killed child


def test_environment_workdir_and_user(runtime: dict[str, str], tmp_path: Path) -> None:
    script = "echo $GREETING; pwd; id -u; id -g; id -G; echo $HOME; echo $EXTRA"
    done = ag(runtime, "run", "--rm", "app", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == [
        "hello",
        "/srv",
        "10000",
        "10000",
        "10000 10001",
        "/home/app",
        "",
        "",
    ]
    env_file = tmp_path / "env.list"
    env_file.write_text("# settings\nEXTRA=from-file\nGREETING=from-file\n")
    done = ag(
        runtime,
        "run",
        "--rm",
        "--env-file",
        str(env_file),
        "-e",
        "GREETING=bye",
        "-w",
        "/tmp/new",
        "-u",
        "0:0",
        "app",
        "sh",
        "-c",
        script,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:7] == ["bye", "/tmp/new", "0", "0", "0", "/root", "from-file"]
    done = ag(runtime, "run", "--rm", "-u", "nobody-here", "app", "true")
    assert done.returncode == 125
    assert "unable to find user nobody-here" in done.stderr
    done = ag(runtime, "run", "--rm", "--entrypoint", "/bin/echo", "app", "via", "entrypoint")
    assert (done.returncode, done.stdout) == (0, "via entrypoint\n")


def test_bind_mounts(runtime: dict[str, str], tmp_path: Path) -> None:
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "given").write_text("from the host\n")
    done = ag(
        runtime,
        "run",
        "--rm",
        "-v",
        f"{rw}:/data",
        "-v",
        f"{ro}:/config:ro",
        "alpine-base",
        "sh",
        "-c",
        "echo written > /data/out; cat /config/given; touch /config/x",
    )
    assert done.returncode == 1
    assert done.stdout == "from the host\n"
    assert "Read-only file system" in done.stderr
    assert (rw / "out").read_text() == "written\n"
    assert not (ro / "x").exists()
    done = ag(runtime, "run", "--rm", "-v", "named:/data", "alpine-base", "true")
    assert done.returncode == 2
    assert "named volumes are not supported" in done.stderr


def test_networks_and_names(runtime: dict[str, str]) -> None:
    done = ag(
        runtime,
        "run",
        "--rm",
        "--network",
        "none",
        "--hostname",
        "box",
        "alpine-base",
        "sh",
        "-c",
        "cat /proc/net/dev; hostname; cat /etc/hostname; grep box /etc/hosts",
    )
    assert done.returncode == 0, done.stderr
    interfaces = [line.split(":")[0].strip() for line in done.stdout.splitlines()[2:-3]]
    assert interfaces == ["lo"]
    assert done.stdout.splitlines()[-3:] == ["box", "box", "127.0.1.1\tbox"]
    done = ag(runtime, "run", "--rm", "alpine-base", "cat", "/proc/net/dev")
    inside = {line.split(":")[0].strip() for line in done.stdout.splitlines()[2:]}
    host = {
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    }
    assert inside == host
    done = ag(runtime, "run", "--rm", "alpine-base", "hostname")
    assert done.stdout.strip() == os.uname().nodename
    done = ag(runtime, "run", "--rm", "--network", "bridge", "alpine-base", "true")
    assert done.returncode == 2
    assert "invalid value 'bridge' for --network" in done.stderr


def test_commands_that_cannot_run(runtime: dict[str, str]) -> None:
    done = ag(runtime, "run", "--name", "nf", "alpine-base", "nope")
    assert done.returncode == 127
    assert done.stderr == 'ERROR: exec: "nope": executable file not found in $PATH\n'
    [row] = ps_rows(runtime, "-a")
    assert "Exited (127)" in row
    done = ag(runtime, "run", "--rm", "alpine-base", "/bin/nope")
    assert done.returncode == 127
    assert "no such file or directory" in done.stderr
    done = ag(runtime, "run", "--rm", "alpine-base", "/etc/passwd")
    assert done.returncode == 126
    assert "permission denied" in done.stderr
    done = ag(runtime, "run", "--rm", "--pull", "never", "no-such-image", "true")
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: no such image in the store: no-such-image:latest\n")
    done = ag(runtime, "run", "--rm", "--bogus", "alpine-base")
    assert (done.returncode, done.stderr.startswith("ERROR: unknown option --bogus")) == (2, True)
    done = ag(runtime, "run", "-it", "--rm", "alpine-base", "true")
    assert (done.returncode, done.stderr) == (2, "ERROR: the input device is not a TTY\n")
    rt = Path(runtime["ALPENGLOW_RUNTIME_DIR"])
    assert mounts_below(rt) == []


def test_rm_force_kills_a_running_container(runtime: dict[str, str]) -> None:
    proc = background(runtime, "run", "--name", "busy", "alpine-base", "sleep", "60")
    try:
        data = wait_running(runtime, "busy")
        [row] = ps_rows(runtime)
        assert " Up " in row
        assert row.split()[-1] == "busy"
        done = ag(runtime, "rm", "busy")
        assert done.returncode == 1
        assert "it is running" in done.stderr
        done = ag(runtime, "rm", "-f", "busy")
        assert (done.returncode, done.stdout) == (0, "busy\n"), done.stderr
        assert proc.wait(timeout=30) == 137
    finally:
        proc.kill()
        proc.wait()
    rt = Path(runtime["ALPENGLOW_RUNTIME_DIR"])
    assert mounts_below(rt) == []
    assert not (rt / "containers" / data["Id"]).exists()
    assert runc_state(rt, data["Id"]) is None


def test_sigkill_from_outside(runtime: dict[str, str]) -> None:
    proc = background(runtime, "run", "--name", "victim", "alpine-base", "sleep", "60")
    try:
        data = wait_running(runtime, "victim")
        state = runc_state(Path(runtime["ALPENGLOW_RUNTIME_DIR"]), data["Id"])
        assert state is not None
        os.kill(state["pid"], signal.SIGKILL)
        assert proc.wait(timeout=30) == 137
    finally:
        proc.kill()
        proc.wait()
    [row] = ps_rows(runtime, "-a")
    assert "Exited (137)" in row
    assert mounts_below(Path(runtime["ALPENGLOW_RUNTIME_DIR"])) == []


def test_ps_tells_the_truth_when_the_monitor_dies(runtime: dict[str, str]) -> None:
    proc = background(runtime, "run", "--name", "orphan", "alpine-base", "sleep", "60")
    rt = Path(runtime["ALPENGLOW_RUNTIME_DIR"])
    try:
        data = wait_running(runtime, "orphan")
        proc.send_signal(signal.SIGKILL)  # the foreground alpenglow, not the container
        proc.wait(timeout=30)
        [row] = ps_rows(runtime)
        assert " Up " in row  # runc still runs it
        state = runc_state(rt, data["Id"])
        assert state is not None
        assert state["status"] == "running"
        os.kill(state["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while runc_state(rt, data["Id"]) not in (None, {}) and time.monotonic() < deadline:
            state = runc_state(rt, data["Id"])
            if state is None or state["status"] == "stopped":
                break
            time.sleep(0.1)
        [row] = ps_rows(runtime, "-a")
        assert "Exited (unknown)" in row
        assert "exit status is unknown" in inspect(runtime, "orphan")["State"]["Error"]
        assert mounts_below(rt) == []  # the observer cleaned up what the monitor could not
    finally:
        proc.kill()
        proc.wait()


def test_stop_uses_the_stop_signal_then_sigkill(runtime: dict[str, str]) -> None:
    trap = "trap 'exit 7' TERM; trap 'exit 5' USR1; echo ready; while :; do sleep 0.1; done"
    cases = [
        ("alpine-base", "term", ["sh", "-c", trap], ["-t", "10"], 7),
        ("trap", "usr1", ["sh", "-c", trap], ["-t", "10"], 5),  # the image's StopSignal
        ("alpine-base", "stubborn", ["sleep", "60"], ["-t", "1"], 137),  # pid 1 ignores TERM
    ]
    for image, name, command, flags, code in cases:
        proc = background(runtime, "run", "--name", name, image, *command)
        try:
            wait_running(runtime, name)
            if command[0] == "sh":
                assert proc.stdout is not None
                assert proc.stdout.readline() == "ready\n"
            started = time.monotonic()
            done = ag(runtime, "stop", *flags, name)
            assert (done.returncode, done.stdout) == (0, f"{name}\n"), done.stderr
            assert proc.wait(timeout=30) == code
            if code == 137:
                assert time.monotonic() - started >= 1
        finally:
            proc.kill()
            proc.wait()
        assert inspect(runtime, name)["State"]["ExitCode"] == code
    done = ag(runtime, "stop", "term")  # not running: nothing to do
    assert (done.returncode, done.stdout) == (0, "term\n")
    done = ag(runtime, "stop", "nobody")
    assert done.returncode == 1
    assert "no such container: nobody" in done.stderr


def test_layers_with_whiteouts(runtime: dict[str, str]) -> None:
    done = ag(
        runtime,
        "run",
        "--rm",
        "whiteouts",
        "sh",
        "-c",
        "ls /etc/apk; test -e /etc/alpine-release && echo present; test -e /etc/os-release "
        "&& echo kept; touch /etc/new; ls /etc/new",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "only-this\nkept\n/etc/new\n"


def test_interactive_input(runtime: dict[str, str]) -> None:
    done = ag(runtime, "run", "-i", "--rm", "alpine-base", "cat", input="piped\n")
    assert (done.returncode, done.stdout) == (0, "piped\n")
    done = ag(runtime, "run", "--rm", "alpine-base", "cat", input="ignored\n")
    assert (done.returncode, done.stdout) == (0, "")  # without -i stdin is empty


def test_tty_through_a_real_pty(runtime: dict[str, str]) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: alpenglow on the pty's slave side
        os.execve(
            str(ALPENGLOW),
            [
                str(ALPENGLOW),
                "run",
                "-it",
                "--rm",
                "alpine-base",
                "sh",
                "-c",
                "tty; echo $TERM; read line; echo got:$line; exit 4",
            ],
            runtime,
        )
    output = b""
    deadline = time.monotonic() + 60
    sent = False
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if not sent and b"xterm" in output:
            os.write(fd, b"typed\r")
            sent = True
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace").replace("\r\n", "\n")
    assert "/dev/pts/0\n" in text
    assert "xterm\n" in text
    assert "got:typed" in text
    assert os.waitstatus_to_exitcode(status) == 4


def test_tty_without_a_terminal_here(runtime: dict[str, str]) -> None:
    """``-t`` with no terminal on this side (CI, pipes): the container still gets a pty
    (its supervisor holds it) and the output and exit status come back."""
    done = ag(runtime, "run", "-t", "--rm", "alpine-base", "sh", "-c", "tty; echo hi; exit 3")
    assert (done.returncode, done.stdout) == (3, "/dev/pts/0\nhi\n"), (
        done.stderr
    )  # CRLF read as text
    assert ps_rows(runtime, "-a") == []
    assert mounts_below(Path(runtime["ALPENGLOW_RUNTIME_DIR"])) == []


def test_foreign_architecture_through_qemu(runtime: dict[str, str]) -> None:
    images = ImageStore(runtime["ALPENGLOW_STORE"])
    if not any(i.platform.architecture == "arm64" for i in images.get("alpine-base").images()):
        pytest.skip("the realistic repository has no aarch64")
    emulator = qemu_emulator("aarch64")
    if emulator is None:
        pytest.skip("qemu-aarch64-static is missing (apt-get install qemu-user-static)")
    from alpenglow.runtime import binfmt

    aarch64 = bytes.fromhex("7f454c460201010000000000000000000200b700") + bytes(44)
    if binfmt.handler_for(aarch64, binfmt.entries()) is None:
        done = ag(runtime, "run", "--rm", "--platform", "linux/arm64", "alpine-base", "true")
        if binfmt.handler_for(aarch64, binfmt.entries()) is None:  # nobody registered one
            assert done.returncode == 126
            assert "cannot run a linux/arm64/v8 binary on this" in done.stderr
            assert "hint: install qemu-user-static (qemu-aarch64-static) and run " in done.stderr
            assert "`alpenglow system binfmt` as root" in done.stderr
    done = ag(runtime, "system", "binfmt", "aarch64")
    if done.returncode != 0:
        pytest.skip(f"binfmt_misc cannot be used here: {done.stderr.strip()}")
    assert done.stdout.startswith("linux/arm64/v8: ")
    added = "linux/arm64/v8: registered" in done.stdout
    try:
        again = ag(runtime, "system", "binfmt", "aarch64")
        assert "already registered" in again.stdout  # idempotent
        done = ag(runtime, "run", "--rm", "--platform", "linux/arm64", "alpine-base", "uname", "-m")
        problem = None
        if done.returncode != 0:
            layer_dir = Path(runtime["ALPENGLOW_RUNTIME_DIR"]) / "layers" / "sha256"
            for layer in layer_dir.iterdir():
                if (layer / "bin" / "busybox").is_file():
                    problem = emulator_problem(emulator, layer / "bin" / "busybox")
            if problem:
                pytest.skip(problem)
        assert (done.returncode, done.stdout) == (0, "aarch64\n"), done.stderr
    finally:
        if added:
            for entry in binfmt.entries():
                if entry.interpreter == str(emulator) and entry.name.endswith("qemu-aarch64"):
                    (binfmt.BINFMT / entry.name).write_text("-1\n")


def test_prune_keeps_running_containers_and_their_layers(runtime: dict[str, str]) -> None:
    for name in ("old1", "old2"):
        assert ag(runtime, "run", "--name", name, "alpine-base", "true").returncode == 0
    proc = background(runtime, "run", "--name", "alive", "alpine-base", "sleep", "60")
    rt = Path(runtime["ALPENGLOW_RUNTIME_DIR"])
    try:
        wait_running(runtime, "alive")
        done = ag(runtime, "prune")  # asks first; no answer means no
        assert done.returncode == 0
        assert len(ps_rows(runtime, "-a")) == 3
        done = ag(runtime, "prune", "-f")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("Deleted Containers:\n")
        assert "Total reclaimed space: " in done.stdout
        assert "Deleted unpacked layers" not in done.stdout  # alive uses them
        [row] = ps_rows(runtime, "-a")
        assert row.split()[-1] == "alive"
        assert len(os.listdir(rt / "layers" / "sha256")) == 1
        assert ag(runtime, "rm", "-f", "alive").returncode == 0
        assert proc.wait(timeout=30) == 137
        done = ag(runtime, "prune", "-f")
        assert "Deleted unpacked layers:\nsha256:" in done.stdout
        assert os.listdir(rt / "layers" / "sha256") == []
    finally:
        proc.kill()
        proc.wait()


def test_rmi_refuses_images_in_use(runtime: dict[str, str]) -> None:
    assert ag(runtime, "tag", "alpine-base", "doomed:1").returncode == 0
    assert ag(runtime, "run", "--name", "user", "doomed:1", "true").returncode == 0
    done = ag(runtime, "rmi", "doomed:1")
    assert done.returncode == 1
    assert "container" in done.stderr
    assert "uses it" in done.stderr
    assert ag(runtime, "rm", "user").returncode == 0
    done = ag(runtime, "rmi", "doomed:1")
    assert (done.returncode, done.stdout) == (0, "Untagged: doomed:1\n"), done.stderr
    assert ag(runtime, "run", "--rm", "--pull", "never", "doomed:1", "true").returncode == 1


def test_a_full_disk_gives_clear_errors_and_leaks_nothing(
    runtime: dict[str, str], tmp_path: Path
) -> None:
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(small)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {mounted.stderr.strip()}")
    env = dict(runtime, ALPENGLOW_RUNTIME_DIR=str(small / "rt"))
    try:
        done = ag(
            env,
            "run",
            "--name",
            "filler",
            "alpine-base",
            "sh",
            "-c",
            "dd if=/dev/zero of=/big bs=1M count=64",
        )
        assert done.returncode == 1
        assert "No space left on device" in done.stderr
        [row] = ps_rows(env, "-a")
        assert "Exited (1)" in row
        assert ag(env, "rm", "filler").returncode == 0
        assert ag(env, "prune", "-f").returncode == 0
        assert mounts_below(small / "rt") == []
        assert os.listdir(small / "rt" / "containers") == []
        # no room for the layers at all: one clear line, nothing half-unpacked
        subprocess.run(["mount", "-o", "remount,size=1m", str(small)], check=True)
        done = ag(env, "run", "--rm", "alpine-base", "true")
        assert done.returncode == 1
        [line] = done.stderr.splitlines()
        assert line.startswith("ERROR: layer sha256:")
        assert line.endswith("No space left on device")
        layers = small / "rt" / "layers" / "sha256"
        assert not layers.exists() or os.listdir(layers) == []
        assert os.listdir(small / "rt" / "containers") == []
    finally:
        left = ag(env, "ps", "-aq").stdout.split()
        if left:
            ag(env, "rm", "-f", *left)
        subprocess.run(["umount", "-l", str(small)], capture_output=True, check=False)


def test_copied_root_where_overlayfs_is_not_used(runtime: dict[str, str], tmp_path: Path) -> None:
    """The fallback for machines without overlayfs: the verdict remembered in the runtime
    directory says ``copy``, so each container gets a merged copy of the layers."""
    rt = tmp_path / "copy-rt"
    rt.mkdir()
    (rt / "storage.json").write_text('{"kind": "copy"}\n')
    env = dict(runtime, ALPENGLOW_RUNTIME_DIR=str(rt))
    try:
        done = ag(
            env, "run", "--name", "copied", "whiteouts", "sh", "-c", "ls /etc/apk; echo x > /f"
        )
        assert (done.returncode, done.stdout) == (0, "only-this\n"), done.stderr
        data = inspect(env, "copied")
        assert data["GraphDriver"]["Name"] == "copy"
        assert mounts_below(rt) == []  # nothing mounted: a plain directory
        assert (Path(data["GraphDriver"]["Data"]["MergedDir"]) / "f").read_text() == "x\n"
        done = ag(env, "start", "-a", "copied")  # the copy is kept, not made again
        assert done.returncode == 0
        assert ag(env, "rm", "copied").returncode == 0
        assert ag(env, "prune", "-f").returncode == 0
        assert os.listdir(rt / "containers") == []
        assert os.listdir(rt / "layers" / "sha256") == []
    finally:
        left = ag(env, "ps", "-aq").stdout.split()
        if left:
            ag(env, "rm", "-f", *left)
