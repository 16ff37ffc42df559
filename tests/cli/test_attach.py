"""``alpenglow attach``, ``exec``, ``logs`` and detached containers, end to end with real runc
on an ``alpine-base`` image built by ``alpenglow build`` from the realistic repository.

Interactive sessions run through a real pty (:class:`tests.support.terminal.Terminal`).
Every test removes its containers with the CLI and checks that nothing is left: no
supervisor, no runc state, no mount, no container directory. Needs root and runc.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alpenglow.runtime.storage import mounts_below
from alpenglow.runtime.supervisor import supervisor_pid
from tests.support.alpine_repo import BRANCH, RealisticRepo
from tests.support.mirror import Mirror
from tests.support.runc import is_native, runc_path
from tests.support.terminal import Terminal

ALPENGLOW = Path(sys.executable).parent / "alpenglow"
RUNC = runc_path()

pytestmark = [
    pytest.mark.skipif(RUNC is None, reason="runc is not installed (apt-get install runc)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="running containers needs root here"),
    pytest.mark.skipif(not is_native("x86_64"), reason="needs a machine that runs x86_64"),
]


@pytest.fixture(scope="module")
def store(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An image store holding ``alpine-base`` for x86_64 (command ``/bin/sh``)."""
    if "x86_64" not in realistic_repo.arches:
        pytest.skip("the realistic repository has no x86_64")
    work = tmp_path_factory.mktemp("attach-images")
    keys = sorted(realistic_repo.keys_dir.iterdir())
    config = work / "alpine-base.yaml"
    config.write_text(
        "contents:\n"
        f"  repositories:\n    - {alpine_mirror.repository(BRANCH)}\n"
        f"  keyring:\n    - {keys[0]}\n"
        "  packages:\n    - alpine-base\n"
        "archs: [x86_64]\n"
        "cmd: /bin/sh\n"
    )
    env = dict(os.environ, ALPENGLOW_STORE=str(work / "store"), XDG_CACHE_HOME=str(work / "c"))
    done = subprocess.run(
        [str(ALPENGLOW), "build", str(config), "--tag", "alpine-base:latest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return work / "store"


class Session:
    """The environment of one test's commands, and what they must not leave behind."""

    def __init__(self, store: Path, where: Path) -> None:
        self.rt = where / "rt"
        self.env = dict(os.environ)
        self.env.update(ALPENGLOW_STORE=str(store), ALPENGLOW_RUNTIME_DIR=str(self.rt))
        self.env.pop("ALPENGLOW_OCI_RUNTIME", None)
        self.supervisors: set[int] = set()

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``alpenglow ARGS`` (stdin: ``input``, or nothing)."""
        return subprocess.run(
            [str(ALPENGLOW), *args],
            env=self.env,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def terminal(self, *args: str) -> Terminal:
        return Terminal([str(ALPENGLOW), *args], env=self.env)

    def inspect(self, name: str) -> dict[str, Any]:
        done = self("container", "inspect", name)
        assert done.returncode == 0, done.stderr
        [data] = json.loads(done.stdout)
        assert isinstance(data, dict)
        return data

    def container_dir(self, name: str) -> Path:
        return self.rt / "containers" / str(self.inspect(name)["Id"])

    def detached(self, *args: str) -> str:
        """``run -d ARGS``: the new container's id (its supervisor noted for the end)."""
        done = self("run", "-d", *args)
        assert done.returncode == 0, done.stderr
        container_id = done.stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{64}", container_id), done.stdout
        pid = supervisor_pid(self.rt / "containers" / container_id)
        if pid is not None:
            self.supervisors.add(pid)
        return container_id

    def status(self, name: str) -> str:
        """The STATUS column of ``ps -a`` for ``name``."""
        done = self("ps", "-a")
        assert done.returncode == 0, done.stderr
        for line in done.stdout.splitlines()[1:]:
            if line.rstrip().endswith(f" {name}"):
                return re.split(r"\s{3,}", line.strip())[4]
        raise AssertionError(f"{name} is not in `ps -a`:\n{done.stdout}")

    def wait_status(self, name: str, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(name)
            if re.search(pattern, status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: status {status!r}, not {pattern!r}")
            time.sleep(0.1)

    def clean(self) -> None:
        left = self("ps", "-aq", "--no-trunc").stdout.split()
        if left:
            self("rm", "-f", *left)
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in self.supervisors):
            assert time.monotonic() < deadline, "a supervisor outlived its container"
            time.sleep(0.05)
        assert mounts_below(self.rt) == []
        for sub in ("containers", "runc"):
            if (self.rt / sub).exists():
                assert os.listdir(self.rt / sub) == []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.fixture
def ag(store: Path, tmp_path: Path) -> Iterator[Session]:
    session = Session(store, tmp_path)
    try:
        yield session
    finally:
        session.clean()


def until_prompt(term: Terminal, timeout: float = 30) -> None:
    """Press Enter until the container's shell shows its prompt."""
    deadline = time.monotonic() + timeout
    while True:
        term.send(b"\r")
        try:
            term.expect(b"/ # ", timeout=0.5)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


# --------------------------------------------------------------------------------------------
# Logs


def test_a_detached_container_logs_what_it_writes(ag: Session) -> None:
    ag.detached("--name", "web", "alpine-base", "sh", "-c", "echo hi; echo oops >&2; sleep 30")
    # the supervisor outlived `run -d`, and the container runs
    assert ag.status("web").startswith("Up ")
    deadline = time.monotonic() + 20
    while "oops" not in (done := ag("logs", "web")).stderr:
        assert time.monotonic() < deadline, done
        time.sleep(0.1)
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\n", "oops\n")
    done = ag("logs", "--tail", "1", "web")
    assert (done.stdout, done.stderr) == ("", "oops\n")
    done = ag("logs", "-t", "--tail", "all", "web")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hi\n", done.stdout)
    assert ag("logs", "--tail", "x", "web").returncode == 2
    done = ag("logs", "nobody")
    assert (done.returncode, done.stderr.splitlines()[0]) == (
        1,
        "ERROR: no such container: nobody",
    )


def test_logs_follow_until_the_container_exits(ag: Session) -> None:
    ag.detached(
        "--name", "count", "alpine-base", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.4; done"
    )
    done = ag("logs", "-f", "count", timeout=30)
    assert (done.returncode, done.stdout) == (0, "1\n2\n3\n")
    assert ag.wait_status("count", r"^Exited \(0\)")


# --------------------------------------------------------------------------------------------
# Attach and -it


def test_attach_detach_with_ctrl_p_ctrl_q_and_attach_again(ag: Session) -> None:
    ag.detached("-it", "--name", "shell", "alpine-base", "sh")
    with ag.terminal("attach", "shell") as term:
        until_prompt(term)
        term.send(b"echo $((6*7))\r")
        term.expect(b"42\r\n")
        term.send(b"\x10\x11")
        term.expect(b"read escape sequence")
        assert term.wait() == 1  # Docker's status for a detach
    assert ag.status("shell").startswith("Up ")
    assert "42" in ag("logs", "shell").stdout
    with ag.terminal("attach", "shell") as term:
        until_prompt(term)
        term.send(b"exit 3\r")
        assert term.wait() == 3
    assert ag.wait_status("shell", r"^Exited \(3\)")
    done = ag("attach", "shell")
    assert (done.returncode, done.stderr) == (
        1,
        "ERROR: you cannot attach to a stopped container, start it first\n",
    )


def test_run_it_is_an_interactive_shell(ag: Session) -> None:
    with ag.terminal("run", "-it", "--rm", "alpine-base", "sh") as term:
        term.expect(b"/ # ")
        term.send(b"echo $((6*7))\r")
        term.expect(b"42\r\n")
        term.send(b"exit 3\r")
        assert term.wait() == 3


# --------------------------------------------------------------------------------------------
# Exec


def test_exec_with_and_without_a_terminal(ag: Session) -> None:
    ag.detached("--name", "box", "alpine-base", "sleep", "300")
    with ag.terminal("exec", "-it", "box", "sh") as term:
        term.expect(b"/ # ")
        term.send(b"echo $((6*7)); tty\r")
        term.expect(re.compile(rb"42\r\n/dev/pts/\d+\r\n"))
        term.send(b"exit 3\r")
        assert term.wait() == 3
    done = ag("exec", "box", "sh", "-c", "echo out; echo err >&2; exit 4")
    assert (done.returncode, done.stdout, done.stderr) == (4, "out\n", "err\n")
    done = ag("exec", "-i", "box", "tr", "a-z", "A-Z", input="piped\n")
    assert (done.returncode, done.stdout) == (0, "PIPED\n")
    done = ag(
        "exec", "-u", "nobody", "-w", "/tmp", "-e", "A=1", "box", "sh", "-c", "id -u; pwd; echo $A"
    )
    assert (done.returncode, done.stdout) == (0, "65534\n/tmp\n1\n")
    done = ag("exec", "box", "nonexistent")
    assert (done.returncode, done.stdout, done.stderr) == (
        127,
        "",
        'ERROR: exec: "nonexistent": executable file not found in $PATH\n',
    )
    done = ag("exec", "-it", "box", "sh")  # stdin is not a terminal here
    assert (done.returncode, done.stderr) == (2, "ERROR: the input device is not a TTY\n")
    ag("stop", "-t", "0", "box")
    done = ag("exec", "box", "true")
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: container ")
    assert done.stderr.endswith(" is not running\n")


# --------------------------------------------------------------------------------------------
# Faults


def test_a_killed_supervisor_leaves_ps_the_truth_and_nothing_hangs(ag: Session) -> None:
    ag.detached("--name", "orphan", "alpine-base", "sh", "-c", "echo up; sleep 60")
    directory = ag.container_dir("orphan")
    pid = supervisor_pid(directory)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while supervisor_pid(directory) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert ag.status("orphan").startswith("Up ")  # runc still runs it
    done = ag("logs", "-f", "orphan", timeout=20)  # returns: nobody writes any more
    assert (done.returncode, done.stdout) == (0, "up\n")
    done = ag("attach", "orphan", timeout=20)
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: the container has no supervisor to attach to")
    assert len(done.stderr.splitlines()) == 1
    init = ag.inspect("orphan")["State"]["Pid"]
    os.kill(init, signal.SIGKILL)
    assert ag.wait_status("orphan", r"^Exited \(unknown\)")


def test_a_detached_container_killed_from_outside_exits_137(ag: Session) -> None:
    ag.detached("--name", "victim", "alpine-base", "sleep", "60")
    init = ag.inspect("victim")["State"]["Pid"]
    assert init > 0
    os.kill(init, signal.SIGKILL)
    assert ag.wait_status("victim", r"^Exited \(137\)")
    assert ag.inspect("victim")["State"]["ExitCode"] == 137


def test_run_d_rm_removes_the_container_when_it_ends(ag: Session) -> None:
    container_id = ag.detached("--rm", "alpine-base", "sh", "-c", "sleep 0.5")
    deadline = time.monotonic() + 30
    while (ag.rt / "containers" / container_id).exists():
        assert time.monotonic() < deadline, "not removed"
        time.sleep(0.1)
    assert container_id[:12] not in ag("ps", "-aq").stdout
    assert mounts_below(ag.rt) == []
