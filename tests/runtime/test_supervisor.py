"""The supervisor with real runc: containers over a root installed by ``alpenglow apk`` from
the realistic repository, each in a bundle made here (``tests/support/runc.py``), each
supervised by :func:`start_supervisor` (no engine: the hooks are checked through files they
write). Attach runs through a real pty (:class:`tests.support.terminal.Terminal`).

Every test leaves nothing behind: its runc root lists no container and no supervisor lives.
Needs root and runc; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from alpenglow.errors import ContainerError
from alpenglow.runtime import _daemon, supervisor
from alpenglow.runtime import attach as proto
from alpenglow.runtime.attach import attach, connect
from alpenglow.runtime.containers import parse_time
from alpenglow.runtime.logs import LOG_FILE, logs
from alpenglow.runtime.supervisor import (
    LOCK_FILE,
    read_exit,
    start_supervisor,
    supervisor_pid,
    supervisor_running,
)
from tests.support.alpine_repo import RealisticRepo
from tests.support.apk_root import install
from tests.support.mirror import Mirror
from tests.support.runc import is_native, oci_config, runc_path
from tests.support.terminal import Terminal

RUNC = runc_path()


ATTACH_SCRIPT = """\
import os, sys, termios
from pathlib import Path
from alpenglow.runtime.attach import attach
code = attach(Path(sys.argv[1]), 0, 1, sig_proxy=True, close_stdin=len(sys.argv) > 2)
echo = bool(termios.tcgetattr(0)[3] & termios.ECHO)
print(f"ATTACH-RESULT {code} echo={echo}", flush=True)
"""


@pytest.fixture(scope="module")
def can_run() -> None:
    """Skip unless containers run here (root, runc, x86_64)."""
    if RUNC is None:
        pytest.skip("runc is not installed (apt-get install runc)")
    if os.geteuid() != 0:
        pytest.skip("runc containers need root here")
    if not is_native("x86_64"):
        pytest.skip("needs a machine that runs x86_64")


@pytest.fixture(scope="module")
def alpine_root(
    can_run: None,
    realistic_repo: RealisticRepo,
    alpine_mirror: Mirror,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """``alpine-base`` installed for x86_64 by ``alpenglow apk --root``."""
    return install(realistic_repo, alpine_mirror, "x86_64", tmp_path_factory.mktemp("supervised"))


def runc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert RUNC is not None
    return subprocess.run(
        [RUNC, "--root", str(root), *args], capture_output=True, text=True, timeout=60, check=False
    )


def runc_state(root: Path, container_id: str) -> dict[str, object] | None:
    done = runc(root, "state", container_id)
    if done.returncode != 0:
        return None
    state: dict[str, object] = json.loads(done.stdout)
    return state


def wait_for(
    check: Callable[[], object], timeout: float = 20, what: str = "", *, negate: bool = False
) -> None:
    deadline = time.monotonic() + timeout
    while bool(check()) == negate:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@dataclass
class Box:
    """One container directory (also its bundle) under supervision."""

    dir: Path
    id: str
    runc_root: Path
    events: Path = field(init=False)

    def __post_init__(self) -> None:
        self.events = self.dir.parent / f"{self.id}.events"

    def hook_events(self) -> list[list[object]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines()]

    def log_text(self) -> str:
        return b"".join(e.data for e in logs(self.dir)).decode()

    def wait_log(self, text: str, timeout: float = 20) -> None:
        wait_for(lambda: text in self.log_text(), timeout, f"{text!r} in the log")

    def wait_end(self, timeout: float = 20) -> None:
        wait_for(lambda: not supervisor_running(self.dir), timeout, "the supervisor's end")

    def init_pid(self) -> int:
        return int((self.dir / "init.pid").read_text())


class Supervised:
    """``supervised(args, tty=False, stdin_open=False, **kw)`` starts a container under a
    supervisor and returns its :class:`Box` (kept in :attr:`boxes`, even when starting
    fails)."""

    def __init__(self, root: Path, where: Path) -> None:
        self.root = root
        self.where = where
        self.runc_root = where / "runc"
        self.boxes: list[Box] = []

    def __call__(
        self, args: Sequence[str], *, tty: bool = False, stdin_open: bool = False, **kw: object
    ) -> Box:
        container_id = f"sup-{os.getpid()}-{len(self.boxes)}"
        # deep enough that a socket path in it could not be bound directly (108 bytes)
        directory = self.where / ("d" * 60) / container_id
        directory.mkdir(parents=True)
        config = oci_config(args, root=self.root)
        process = config["process"]
        assert isinstance(process, dict)
        process["terminal"] = tty
        (directory / "config.json").write_text(json.dumps(config))
        box = Box(directory, container_id, self.runc_root)
        self.boxes.append(box)

        def started(pid: int) -> bool:
            with box.events.open("a") as fh:
                fh.write(json.dumps(["started", pid, os.getpid()]) + "\n")
            return True

        def ended(code: int | None, error: str) -> None:
            with box.events.open("a") as fh:
                fh.write(json.dumps(["exit", code, error]) + "\n")

        assert RUNC is not None
        start_supervisor(
            directory,
            runc=RUNC,
            runc_root=self.runc_root,
            container_id=container_id,
            tty=tty,
            stdin_open=stdin_open,
            on_started=started,
            on_exit=ended,
            **kw,  # type: ignore[arg-type]
        )
        return box

    def clean(self) -> None:
        """Kill what is left; then nothing may remain."""
        for box in self.boxes:
            pid = supervisor_pid(box.dir)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            runc(self.runc_root, "delete", "--force", box.id)
            wait_for(partial(supervisor_running, box.dir), 10, "supervisors to end", negate=True)
        if self.runc_root.exists():
            listed = runc(self.runc_root, "list", "--quiet")
            assert listed.stdout.split() == [], f"containers left behind: {listed.stdout}"
        for box in self.boxes:
            leftovers = [p.name for p in box.dir.iterdir() if p.name.startswith("console")]
            assert leftovers == []


@pytest.fixture
def supervised(alpine_root: Path, tmp_path: Path) -> Iterator[Supervised]:
    """Containers under supervisors, all gone afterwards (see :class:`Supervised`)."""
    boxes = Supervised(alpine_root, tmp_path)
    try:
        yield boxes
    finally:
        boxes.clean()


# --------------------------------------------------------------------------------------------
# Without a container


def test_exports() -> None:
    assert set(supervisor.__all__) == {
        "EXIT_FILE",
        "INIT_PID_FILE",
        "LOCK_FILE",
        "RUNTIME_LOG",
        "SUPERVISOR_LOG",
        "ExitRecord",
        "exit_status_of",
        "read_exit",
        "start_supervisor",
        "supervise",
        "supervisor_pid",
        "supervisor_running",
    }
    assert sorted(dir(supervisor)) == sorted(supervisor.__all__)
    assert sorted(dir(_daemon)) == sorted(_daemon.__all__)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"exit_code": 1}',
        '{"finished_at": "x"}',
        '{"exit_code": "a", "finished_at": 1}',
    ],
)
def test_a_damaged_exit_record_is_no_record(tmp_path: Path, text: str) -> None:
    (tmp_path / supervisor.EXIT_FILE).write_text(text)
    assert read_exit(tmp_path) is None


def test_the_lock_tells_whether_a_supervisor_lives(tmp_path: Path) -> None:
    assert not supervisor_running(tmp_path)
    assert supervisor_pid(tmp_path) is None
    assert not supervisor_running(tmp_path / "missing")
    lock = tmp_path / LOCK_FILE
    lock.write_text("12345\n")
    assert not supervisor_running(tmp_path)  # a file left by a dead one
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(lock)!r}, 'r+')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        assert supervisor_running(tmp_path)
        assert supervisor_pid(tmp_path) == 12345
        lock.write_text("garbage")
        assert supervisor_pid(tmp_path) is None
    finally:
        holder.kill()
        holder.wait()
    assert not supervisor_running(tmp_path)


# --------------------------------------------------------------------------------------------
# Running detached, logging, recording the exit


def test_detached_output_is_logged_and_outlives_nothing(supervised: Supervised) -> None:
    box = supervised(["/bin/sh", "-c", "echo hi; echo err >&2; sleep 30"])
    box.wait_log("err")
    entries = list(logs(box.dir))
    assert [(e.data, e.stream) for e in entries] == [(b"hi\n", "stdout"), (b"err\n", "stderr")]
    for entry in entries:
        assert entry.time.endswith("Z")
        assert abs(parse_time(entry.time[:26] + "Z") - time.time()) < 60
    raw = (box.dir / LOG_FILE).read_text().splitlines()[0]
    assert json.loads(raw).keys() == {"log", "stream", "time"}
    state = runc_state(box.runc_root, box.id)
    assert state is not None
    assert state["status"] == "running"
    # a daemon: a session of its own without a terminal (and not its leader, so it never
    # gets one), stdio on /dev/null, the container's init its child
    pid = supervisor_pid(box.dir)
    assert pid is not None
    assert os.getsid(pid) not in (pid, os.getsid(0))
    with open(f"/proc/{pid}/stat") as fh:
        assert fh.read().rsplit(")", 1)[1].split()[4] == "0"  # tty_nr
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
    with open(f"/proc/{state['pid']}/status") as fh:
        ppid = next(line.split()[1] for line in fh if line.startswith("PPid:"))
    assert int(ppid) == pid
    assert box.hook_events() == [["started", state["pid"], pid]]
    assert read_exit(box.dir) is None


def test_exit_status_time_and_clean_end(supervised: Supervised) -> None:
    before = time.time()
    box = supervised(["/bin/sh", "-c", "echo bye; exit 3"])
    box.wait_end()
    record = read_exit(box.dir)
    assert record is not None
    assert record.exit_code == 3
    assert record.error == ""
    assert before - 1 <= parse_time(record.finished_at) <= time.time() + 1
    assert box.log_text() == "bye\n"
    assert [e[0] for e in box.hook_events()] == ["started", "exit"]
    assert box.hook_events()[-1] == ["exit", 3, ""]
    # deleted from runc, socket gone, lock free
    assert runc_state(box.runc_root, box.id) is None
    assert not (box.dir / proto.ATTACH_SOCKET).exists()
    assert (box.dir / LOCK_FILE).exists()
    with pytest.raises(ContainerError, match="no supervisor"):
        attach(box.dir, None, 1)


def test_a_command_not_found_is_an_error_with_status_127(supervised: Supervised) -> None:
    with pytest.raises(ContainerError, match=r"nonexistent.*executable file not found") as info:
        supervised(["nonexistent"])
    assert info.value.exit_status == 127
    box = supervised.boxes[-1]
    assert not supervisor_running(box.dir)
    record = read_exit(box.dir)
    assert record is not None
    assert record.exit_code == 127
    assert "executable file not found" in record.error
    # the exit hook ran before the error was reported; never started
    assert [e[:2] for e in box.hook_events()] == [["exit", 127]]
    assert runc_state(box.runc_root, box.id) is None
    assert box.log_text() == ""  # runc's complaint is not the container's output


def test_logs_follow_until_the_container_ends(supervised: Supervised) -> None:
    box = supervised(["/bin/sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done; exit 4"])
    started = time.monotonic()
    seen = [e.data for e in logs(box.dir, follow=True)]
    assert seen == [b"1\n", b"2\n", b"3\n"]
    assert time.monotonic() - started < 15
    record = read_exit(box.dir)
    assert record is not None
    assert record.exit_code == 4
    assert [e.data for e in logs(box.dir, tail=2)] == [b"2\n", b"3\n"]
    assert list(logs(box.dir, tail=0)) == []


def test_killed_from_outside_records_137(supervised: Supervised) -> None:
    box = supervised(["/bin/sh", "-c", "echo up; sleep 30"])
    box.wait_log("up")
    os.kill(box.init_pid(), signal.SIGKILL)
    box.wait_end()
    record = read_exit(box.dir)
    assert record is not None
    assert record.exit_code == 137
    assert box.hook_events()[-1] == ["exit", 137, ""]
    assert runc_state(box.runc_root, box.id) is None


def test_a_killed_supervisor_leaves_the_truth_to_runc(supervised: Supervised) -> None:
    box = supervised(["/bin/sh", "-c", "echo up; sleep 30"])
    box.wait_log("up")
    pid = supervisor_pid(box.dir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not supervisor_running(box.dir), 10, "the lock to be free")
    # no stale guess: no exit recorded; runc says it still runs
    assert read_exit(box.dir) is None
    state = runc_state(box.runc_root, box.id)
    assert state is not None
    assert state["status"] == "running"
    assert pid_alive(box.init_pid())
    # nothing hangs on it: following the log ends, attaching is refused
    done: list[list[bytes]] = []
    reader = threading.Thread(
        target=lambda: done.append([e.data for e in logs(box.dir, follow=True)])
    )
    reader.start()
    reader.join(10)
    assert done == [[b"up\n"]]
    with pytest.raises(ContainerError, match="no supervisor"):
        attach(box.dir, None, 1)
    # once the container is gone too, runc says so
    os.kill(box.init_pid(), signal.SIGKILL)
    wait_for(
        lambda: (runc_state(box.runc_root, box.id) or {}).get("status") == "stopped",
        10,
        "runc to see it stopped",
    )


# --------------------------------------------------------------------------------------------
# Attaching


def attach_terminal(box: Box, *extra: str, rows: int = 24, cols: int = 80) -> Terminal:
    """:func:`attach` run by a small script in a new pty (as ``alpenglow attach`` runs it)."""
    return Terminal(
        [sys.executable, "-c", ATTACH_SCRIPT, str(box.dir), *extra], rows=rows, cols=cols
    )


def until_attached(
    term: Terminal, probe: bytes = b"\r", answer: bytes = b"/ # ", timeout: float = 30
) -> None:
    """Type ``probe`` until the container answers (by default: Enter, until its shell
    shows a prompt): attach then runs (and the terminal is raw), whenever the client got
    there."""
    deadline = time.monotonic() + timeout
    while True:
        term.send(probe)
        try:
            term.expect(answer, timeout=0.5)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def test_attach_through_a_pty_then_detach_and_come_back(supervised: Supervised) -> None:
    box = supervised(["/bin/sh"], tty=True, stdin_open=True)
    with attach_terminal(box) as term:
        until_attached(term)
        term.send(b"echo $((6*7))\r")
        term.expect(b"42\r\n")
        term.send(b"\x10\x11")  # Ctrl-P Ctrl-Q
        # detached (None), and the terminal left as it was found (echo on again)
        term.expect(b"ATTACH-RESULT None echo=True")
        assert term.wait() == 0
    state = runc_state(box.runc_root, box.id)
    assert state is not None
    assert state["status"] == "running"
    assert supervisor_running(box.dir)
    assert "42" in box.log_text()
    with attach_terminal(box) as term:
        until_attached(term)
        term.send(b"exit 3\r")
        term.expect(b"ATTACH-RESULT 3 echo=True")
        assert term.wait() == 0
    box.wait_end()
    record = read_exit(box.dir)
    assert record is not None
    assert record.exit_code == 3


def test_keys_that_only_begin_the_detach_sequence_are_typed(supervised: Supervised) -> None:
    # cat -v, not a shell: busybox's line editor would take Ctrl-P (history) itself
    box = supervised(["/bin/cat", "-v"], tty=True, stdin_open=True)
    with attach_terminal(box) as term:
        until_attached(term, b"probe\r", b"probe\r\n")
        term.send(b"a\x10b\x10\x10c\r")
        # the pty's echo, then cat's copy: every byte came through
        term.expect(re.compile(rb"a\^Pb\^P\^Pc\r\n(.|\n)*a\^Pb\^P\^Pc\r\n"))
        term.send(b"\x10\x11")
        term.expect(b"ATTACH-RESULT None")
        assert term.wait() == 0
    assert supervisor_running(box.dir)


def test_the_window_size_follows_the_attached_terminal(supervised: Supervised) -> None:
    box = supervised(["/bin/sh"], tty=True, stdin_open=True)
    with attach_terminal(box, rows=30, cols=100) as term:
        until_attached(term)
        term.send(b"stty size\r")
        term.expect(b"30 100\r\n")
        term.resize(40, 120)  # SIGWINCH for the attach client, which tells the supervisor
        for _ in range(10):
            term.send(b"stty size\r")
            if b"40 120\r\n" in term.expect(re.compile(rb"\d+ \d+\r\n")):
                break
        else:
            raise AssertionError(f"the size did not change: {term.output!r}")
        term.send(b"exit\r")
        term.expect(b"ATTACH-RESULT 0")
    box.wait_end()


def test_ctrl_c_is_passed_to_a_container_without_a_terminal(supervised: Supervised) -> None:
    script = "trap 'echo got INT; exit 7' INT; while :; do echo tick; sleep 0.2; done"
    box = supervised(["/bin/sh", "-c", script])
    box.wait_log("tick")
    with attach_terminal(box) as term:
        term.expect(b"tick")  # attached (and the client's signal handlers in place)
        term.send(b"\x03")  # the pty's line discipline makes it SIGINT for the client
        term.expect(b"got INT")
        term.expect(b"ATTACH-RESULT 7")
    box.wait_end()


def test_a_waiting_container_starts_with_its_first_client(supervised: Supervised) -> None:
    box = supervised(["/bin/sh", "-c", "echo first; echo second >&2; exit 5"], wait_for_attach=True)
    time.sleep(0.3)
    state = runc_state(box.runc_root, box.id)
    assert state is not None
    assert state["status"] == "created"
    assert box.hook_events() == []
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    code = attach(box.dir, None, out_w, stderr=err_w)
    os.close(out_w)
    os.close(err_w)
    with os.fdopen(out_r, "rb") as out, os.fdopen(err_r, "rb") as err:
        assert (code, out.read(), err.read()) == (5, b"first\n", b"second\n")
    box.wait_end()
    assert [e[0] for e in box.hook_events()] == ["started", "exit"]


def test_input_through_a_pipe_and_its_end(supervised: Supervised) -> None:
    box = supervised(["/bin/sh", "-c", "tr a-z A-Z; echo done"], stdin_open=True)
    in_r, in_w = os.pipe()
    os.write(in_w, b"hello\n")
    os.close(in_w)
    out_r, out_w = os.pipe()
    code = attach(box.dir, in_r, out_w, close_stdin=True)
    os.close(out_w)
    os.close(in_r)
    with os.fdopen(out_r, "rb") as out:
        assert (code, out.read()) == (0, b"HELLO\ndone\n")
    box.wait_end()


def frames_until(
    sock: socket.socket, reader: proto.FrameReader, kind: int
) -> list[tuple[int, bytes]]:
    """Frames read from ``sock`` up to and including the first of ``kind``."""
    got: list[tuple[int, bytes]] = []
    sock.settimeout(20)
    while not any(k == kind for k, _ in got):
        data = sock.recv(65536)
        assert data, f"connection closed before frame {chr(kind)}: {got}"
        got += reader.feed(data)
    return got


def test_every_client_gets_the_output_and_may_type(supervised: Supervised) -> None:
    box = supervised(["/bin/cat"], stdin_open=True)
    with connect(box.dir) as one, connect(box.dir) as two:
        readers = (proto.FrameReader(), proto.FrameReader())
        for sock, reader in zip((one, two), readers, strict=True):
            sock.sendall(proto.encode(proto.HELLO, b'{"stdin": true, "size": null}'))
            welcome = frames_until(sock, reader, proto.WELCOME)
            assert welcome == [(proto.WELCOME, b'{"tty": false, "stdin": true}')]
        two.sendall(proto.encode(proto.STDIN, b"to both\n"))
        for sock, reader in zip((one, two), readers, strict=True):
            assert frames_until(sock, reader, proto.STDOUT) == [(proto.STDOUT, b"to both\n")]
        # a client that speaks nonsense is dropped; the others go on
        with connect(box.dir) as rude:
            rude.sendall(b"\xff\xff\xff\xff\xff\xff")
            rude.settimeout(10)
            assert rude.recv(100) == b""
        one.sendall(proto.encode(proto.CLOSE))
        for sock, reader in zip((one, two), readers, strict=True):
            frames = frames_until(sock, reader, proto.EXIT)
            assert frames[-1] == (proto.EXIT, b'{"exit_code": 0, "error": ""}')
            sock.settimeout(10)
            assert sock.recv(100) == b""  # then the supervisor hangs up
    box.wait_end()


def test_a_signal_frame_reaches_the_container(supervised: Supervised) -> None:
    box = supervised(["/bin/sh", "-c", "echo up; sleep 30"])
    box.wait_log("up")
    with connect(box.dir) as sock:
        reader = proto.FrameReader()
        sock.sendall(proto.encode(proto.HELLO, b"{}"))
        frames_until(sock, reader, proto.WELCOME)
        sock.sendall(proto.encode(proto.SIGNAL, (9).to_bytes(4, "big")))
        assert frames_until(sock, reader, proto.EXIT)[-1][1].startswith(b'{"exit_code": 137')
    box.wait_end()


def test_a_second_supervisor_for_the_same_container_is_refused(supervised: Supervised) -> None:
    box = supervised(["/bin/sh", "-c", "sleep 30"])
    assert RUNC is not None
    with pytest.raises(ContainerError, match="already has a supervisor"):
        start_supervisor(
            box.dir,
            runc=RUNC,
            runc_root=box.runc_root,
            container_id=box.id,
            tty=False,
            stdin_open=False,
        )
    assert supervisor_running(box.dir)


def test_an_attached_client_hears_of_its_supervisors_death(supervised: Supervised) -> None:
    box = supervised(["/bin/sh", "-c", "while :; do echo tick; sleep 0.1; done"])
    out_r, out_w = os.pipe()
    errors: list[Exception] = []

    def attached() -> None:
        try:
            attach(box.dir, None, out_w)
        except ContainerError as exc:
            errors.append(exc)

    client = threading.Thread(target=attached)
    client.start()
    assert os.read(out_r, 5) == b"tick\n"  # attached
    pid = supervisor_pid(box.dir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    client.join(10)
    os.close(out_r)
    os.close(out_w)
    assert [str(e) for e in errors] == [
        "lost the connection to the container's supervisor (was it killed?)"
    ]


def test_attach_ends_when_its_output_is_not_read_any_more(supervised: Supervised) -> None:
    box = supervised(["/bin/sh", "-c", "while :; do echo tick; sleep 0.1; done"])
    out_r, out_w = os.pipe()
    os.close(out_r)  # `alpenglow attach c | head -1` once head is done
    try:
        assert attach(box.dir, None, out_w) is None
    finally:
        os.close(out_w)
    assert supervisor_running(box.dir)  # the container goes on
