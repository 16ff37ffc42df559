"""The supervisor's own process, which :func:`.supervisor.start_supervisor` forks. [edge]

Private to :mod:`alpenglow.runtime.supervisor`, whose docstring tells the story; this module
holds the daemon's life (:func:`run_daemon`): the lock, the runtime's create and start, the
loop copying output to the log and the attach clients and input to the container, and the
end (exit recorded, runtime deleted, hooks, EXIT to the clients).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import json
import os
import select
import signal
import socket
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alpenglow.errors import ContainerError
from alpenglow.runtime import attach as proto
from alpenglow.runtime.console import (
    ConsoleSocket,
    become_subreaper,
    set_window_size,
    short_path,
)
from alpenglow.runtime.containers import now
from alpenglow.runtime.logs import LOG_FILE, LogWriter
from alpenglow.runtime.runc import OciRuntime, runtime_message

__all__ = [
    "EXIT_FILE",
    "INIT_PID_FILE",
    "LOCK_FILE",
    "RUNTIME_LOG",
    "SUPERVISOR_LOG",
    "ExitHook",
    "Spec",
    "StartedHook",
    "exit_status_of",
    "run_daemon",
]


def __dir__() -> list[str]:
    return __all__


LOCK_FILE = "supervisor.pid"
EXIT_FILE = "exit.json"
SUPERVISOR_LOG = "supervisor.log"
RUNTIME_LOG = "runtime.log"
INIT_PID_FILE = "init.pid"
_CONSOLE_SOCKET = "console.sock"
_ATTACH_WAIT = 30.0
"""Seconds a container waiting for its first attach client waits before it starts anyway."""
_DRAIN = 2.0
"""Seconds given to the output of an exited container to reach the end of its pipes."""
_CLIENT_BACKLOG = 16 << 20
"""Bytes of output queued for one client before it is dropped as too slow."""
_STDIN_BACKLOG = 1 << 20
"""Bytes of input queued for the container before clients are no longer read."""
_LOCK_WAIT = 5.0
"""Seconds a new supervisor waits for the previous one (of a restarted container) to end."""

StartedHook = Callable[[int], bool]
ExitHook = Callable[[int | None, str], None]


def exit_status_of(message: str) -> int:
    """Docker's status for a container that could not start, from the runtime's message:
    127 for a command not found, 126 for one that cannot be run, 125 otherwise.

    >>> exit_status_of('exec: "nope": executable file not found in $PATH')
    127
    >>> exit_status_of('exec: "/etc": permission denied'), exit_status_of("cgroup trouble")
    (126, 125)
    """
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered or "is a directory" in lowered:
        return 126
    return 125


@dataclass(frozen=True, slots=True)
class Spec:
    """What the daemon runs: the container ``container_id`` of ``bundle`` with ``oci``, its
    files in ``container_dir``, with a terminal or pipes, stdin open or not, started at
    once or when the first attach client comes."""

    container_dir: Path
    bundle: Path
    oci: OciRuntime
    container_id: str
    tty: bool
    stdin_open: bool
    wait_for_attach: bool


def run_daemon(
    spec: Spec, report_fd: int, on_started: StartedHook | None, on_exit: ExitHook | None
) -> None:  # pragma: no cover - runs in the daemon (covered by the supervisor's tests)
    """The supervisor's life; never returns."""
    status = 0
    try:
        gc.freeze()  # objects inherited from the caller are never finalised here
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(null, target)
        if null > 2:
            os.close(null)
        os.closerange(3, report_fd)
        os.closerange(report_fd + 1, 1 << 20)
        for number in (
            signal.SIGINT,
            signal.SIGTERM,
            signal.SIGHUP,
            signal.SIGQUIT,
            signal.SIGUSR1,
            signal.SIGUSR2,
            signal.SIGCHLD,
            signal.SIGWINCH,
        ):
            signal.signal(number, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        _Supervisor(spec, report_fd, on_started, on_exit).run()
    except BaseException:
        status = 1
        with contextlib.suppress(BaseException):
            _note(spec.container_dir, traceback.format_exc())
    finally:
        os._exit(status)


def _note(container_dir: Path, text: str) -> None:
    """Append ``text`` to the supervisor's own log."""
    with open(container_dir / SUPERVISOR_LOG, "a", encoding="utf-8") as fh:
        fh.write(f"{now()} {text.rstrip()}\n")


class _Client:
    __slots__ = ("out", "reader", "sock", "welcomed")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = proto.FrameReader()
        self.out = bytearray()
        self.welcomed = False


class _Supervisor:
    def __init__(
        self,
        spec: Spec,
        report_fd: int,
        on_started: StartedHook | None,
        on_exit: ExitHook | None,
    ) -> None:
        self.spec = spec
        self.dir = spec.container_dir
        self.report_fd = report_fd
        self.reported = False
        self.on_started = on_started
        self.on_exit = on_exit
        self.lock_fd = -1
        self.listener: socket.socket | None = None
        self.clients: dict[int, _Client] = {}
        self.outputs: dict[int, str] = {}
        self.stdin_fd = -1
        self.stdin_buffer = bytearray()
        self.stdin_closing = False
        self.master = -1
        self.pid = 0
        self.pidfd = -1
        self.started = False
        self.exit_code: int | None = None
        self.error = ""
        self.exited = False
        self.failed = False
        self.log: LogWriter | None = None

    # -- the report to start_supervisor ---------------------------------------------------

    def report(self, *, last: bool = False, **reply: object) -> None:
        """Tell :func:`start_supervisor` how the start went (once). With ``last`` the pipe
        stays open until this process ends, so that the caller waits for that."""
        if self.reported:
            return
        self.reported = True
        with contextlib.suppress(OSError):
            os.write(self.report_fd, json.dumps(reply).encode())
        if not last:
            os.close(self.report_fd)
            self.report_fd = -1

    # -- life ------------------------------------------------------------------------------

    def run(self) -> None:
        if not self.take_lock():
            self.report(error="the container already has a supervisor", exit_status=1, last=True)
            return
        try:
            self.prepare()
            if self.create():
                if self.spec.wait_for_attach:
                    self.report(pid=os.getpid())
                    self.loop()
                elif self.start():
                    self.loop()
            self.finish()
        finally:
            self.close_everything()

    def take_lock(self) -> bool:
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + _LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    return False
                time.sleep(0.01)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.lock_fd = fd
        return True

    def prepare(self) -> None:
        for stale in (EXIT_FILE, INIT_PID_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / stale).unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.dir / proto.ATTACH_SOCKET).unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener = listener
        with short_path(self.dir, proto.ATTACH_SOCKET) as path:
            listener.bind(path)
        os.chmod(self.dir / proto.ATTACH_SOCKET, 0o600)
        listener.listen(16)
        listener.setblocking(False)
        self.log = LogWriter(self.dir / LOG_FILE)
        become_subreaper()

    def fail(self, message: str, status: int) -> None:
        """The container could not be created or started: it ends here (:meth:`finish`
        records why and tells the caller)."""
        self.kill_and_reap()
        self.exit_code = status
        self.error = message
        self.failed = True
        self.exited = True

    def runtime_error(self, fallback: str) -> str:
        try:
            text = (self.dir / RUNTIME_LOG).read_text(errors="replace")
        except OSError:
            text = ""
        for line in reversed(text.splitlines()):
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict) and obj.get("level") in ("error", "fatal"):
                    return runtime_message(line)
        return runtime_message(fallback) if fallback.strip() else "the OCI runtime failed"

    def create(self) -> bool:
        spec = self.spec
        with contextlib.suppress(FileNotFoundError):
            (self.dir / RUNTIME_LOG).unlink()
        # the runtime may remember a container of this id from a run whose supervisor died
        if (spec.oci.root / spec.container_id).exists():
            with contextlib.suppress(ContainerError):
                spec.oci.delete(spec.container_id, force=True)
        args = ["create", "--bundle", str(spec.bundle), "--pid-file", str(self.dir / INIT_PID_FILE)]
        console: ConsoleSocket | None = None
        child_ends: list[int] = []
        try:
            if spec.tty:
                console = ConsoleSocket(self.dir, _CONSOLE_SOCKET)
                args += ["--console-socket", console.path]
                stdio: tuple[int, int, int] = (
                    subprocess.DEVNULL,
                    subprocess.DEVNULL,
                    subprocess.DEVNULL,
                )
            else:
                if spec.stdin_open:
                    stdin_r, self.stdin_fd = os.pipe2(os.O_CLOEXEC)
                    child_ends.append(stdin_r)
                else:
                    stdin_r = subprocess.DEVNULL
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                child_ends += [out_w, err_w]
                self.outputs = {out_r: "stdout", err_r: "stderr"}
                stdio = (stdin_r, out_w, err_w)
            argv = spec.oci.argv(*args, spec.container_id, log=self.dir / RUNTIME_LOG)
            try:
                done = subprocess.run(
                    argv,
                    stdin=stdio[0],
                    stdout=stdio[1],
                    stderr=stdio[2],
                    timeout=120,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                self.fail(f"{spec.oci.binary} create: {exc}", 125)
                return False
            for fd in child_ends:
                os.close(fd)
            child_ends = []
            if done.returncode != 0:
                message = self.runtime_error("")
                self.fail(message, exit_status_of(message))
                return False
            try:
                self.pid = int((self.dir / INIT_PID_FILE).read_text().strip())
            except (OSError, ValueError):
                self.fail(f"{spec.oci.name} create wrote no pid file", 125)
                return False
            if console is not None:
                try:
                    self.master = console.receive(timeout=10)
                except OSError as exc:
                    self.fail(f"no terminal came from the OCI runtime's console socket: {exc}", 125)
                    return False
                self.outputs = {self.master: "stdout"}
                self.stdin_fd = self.master if spec.stdin_open else -1
        finally:
            for fd in child_ends:
                os.close(fd)
            if console is not None:
                console.close()
        for fd in self.outputs:
            os.set_blocking(fd, False)
        if self.stdin_fd >= 0:
            os.set_blocking(self.stdin_fd, False)
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except OSError:
            self.pidfd = -1  # an old kernel: poll with waitpid instead
        return True

    def start(self) -> bool:
        try:
            self.spec.oci.start(self.spec.container_id)
        except ContainerError as exc:
            self.fail(str(exc), 125)
            return False
        self.started = True
        if self.on_started is not None:
            try:
                keep = self.on_started(self.pid)
            except Exception:
                _note(self.dir, "on_started failed:\n" + traceback.format_exc())
                keep = True
            if not keep:
                self.fail("the container was removed while it started", 125)
                return False
        self.report(pid=os.getpid())
        return True

    def kill_and_reap(self) -> None:
        if self.pid <= 0:
            return
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.pid = 0

    # -- the loop --------------------------------------------------------------------------

    def loop(self) -> None:
        attach_deadline = time.monotonic() + _ATTACH_WAIT
        drain_deadline = 0.0
        while True:
            if self.failed or (
                self.exited and (not self.outputs or time.monotonic() > drain_deadline)
            ):
                return
            if not self.started and time.monotonic() > attach_deadline and not self.start():
                return
            masks: dict[int, int] = {}

            def want(fd: int, mask: int, masks: dict[int, int] = masks) -> None:
                masks[fd] = masks.get(fd, 0) | mask

            if not self.exited and self.listener is not None:
                want(self.listener.fileno(), select.POLLIN)
            for fd in self.outputs:
                want(fd, select.POLLIN)
            busy = len(self.stdin_buffer) > _STDIN_BACKLOG
            for fd, client in self.clients.items():
                want(fd, (0 if busy else select.POLLIN) | (select.POLLOUT if client.out else 0))
            if self.stdin_fd >= 0 and self.stdin_buffer:
                want(self.stdin_fd, select.POLLOUT)
            if self.pidfd >= 0 and not self.exited:
                want(self.pidfd, select.POLLIN)
            poller = select.poll()
            for fd, mask in masks.items():
                poller.register(fd, mask)
            if self.exited:
                timeout = max(0.0, drain_deadline - time.monotonic())
            elif not self.started:
                timeout = max(0.0, attach_deadline - time.monotonic())
            else:
                timeout = 1.0 if self.pidfd < 0 else -1
            events = poller.poll(None if timeout < 0 else int(timeout * 1000) + 1)
            for fd, event in events:
                if self.listener is not None and fd == self.listener.fileno():
                    self.accept()
                    continue
                if fd in self.outputs and event & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    self.read_output(fd)
                if fd == self.stdin_fd and event & (select.POLLOUT | select.POLLERR):
                    self.write_input()
                if fd in self.clients:
                    self.serve(fd, event)
            if not self.exited and self.started and (self.pidfd < 0 or self.pidfd_ready(events)):
                self.reap()
                if self.exited:
                    drain_deadline = time.monotonic() + _DRAIN
                    self.close_stdin()

    def pidfd_ready(self, events: list[tuple[int, int]]) -> bool:
        return any(fd == self.pidfd for fd, _ in events)

    def reap(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            # not our child after all (no subreaper): we can tell that it ended, not how
            if self.pidfd >= 0 or not os.path.exists(f"/proc/{self.pid}"):
                self.exited = True
                self.error = "the container's exit status could not be read"
            return
        if pid == 0:
            return
        self.exited = True
        code = os.waitstatus_to_exitcode(status)
        self.exit_code = 128 - code if code < 0 else code

    def accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            self.clients[sock.fileno()] = _Client(sock)

    def drop(self, fd: int) -> None:
        client = self.clients.pop(fd, None)
        if client is not None:
            client.sock.close()

    def broadcast(self, frame: bytes) -> None:
        for fd, client in list(self.clients.items()):
            if not client.welcomed:
                continue
            client.out += frame
            if len(client.out) > _CLIENT_BACKLOG:
                self.drop(fd)
            else:
                self.flush_client(fd, client)

    def flush_client(self, fd: int, client: _Client) -> None:
        try:
            sent = client.sock.send(client.out)
        except BlockingIOError:
            return
        except OSError:
            self.drop(fd)
            return
        del client.out[:sent]

    def read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the terminal's last user is gone
        if not data:
            del self.outputs[fd]
            if fd == self.stdin_fd:
                self.stdin_fd = -1
                self.stdin_buffer.clear()
            if fd == self.master:
                self.master = -1
            os.close(fd)
            return
        stream = self.outputs[fd]
        assert self.log is not None
        self.log.write(stream, data)
        self.broadcast(proto.encode(proto.STDOUT if stream == "stdout" else proto.STDERR, data))

    def write_input(self) -> None:
        try:
            written = os.write(self.stdin_fd, self.stdin_buffer)
        except BlockingIOError:
            return
        except OSError:
            self.stdin_buffer.clear()
            self.close_stdin()
            return
        del self.stdin_buffer[:written]
        if not self.stdin_buffer and self.stdin_closing:
            self.close_stdin()

    def close_stdin(self) -> None:
        """Close the container's stdin pipe (a terminal stays: it is also the output)."""
        if self.stdin_fd >= 0 and self.stdin_fd != self.master:
            os.close(self.stdin_fd)
            self.stdin_fd = -1
            self.stdin_buffer.clear()

    def serve(self, fd: int, event: int) -> None:
        client = self.clients[fd]
        if event & select.POLLOUT and client.out:
            self.flush_client(fd, client)
            if fd not in self.clients:
                return
        if not event & (select.POLLIN | select.POLLHUP | select.POLLERR):
            return
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(fd)
            return
        try:
            frames = client.reader.feed(data)
        except ValueError:
            self.drop(fd)
            return
        for kind, payload in frames:
            try:
                self.handle(fd, client, kind, payload)
            except (ValueError, TypeError):
                self.drop(fd)
                return
            if fd not in self.clients:
                return

    def handle(self, fd: int, client: _Client, kind: int, payload: bytes) -> None:
        spec = self.spec
        if kind == proto.HELLO:
            hello = json.loads(payload)
            size = hello.get("size") if isinstance(hello, dict) else None
            if self.master >= 0 and isinstance(size, list) and len(size) == 2:
                set_window_size(self.master, int(size[0]), int(size[1]))
            welcome = {"tty": spec.tty, "stdin": spec.stdin_open}
            client.out += proto.encode(proto.WELCOME, json.dumps(welcome).encode())
            client.welcomed = True
            self.flush_client(fd, client)
            if not self.started and not self.exited:
                self.start()
        elif kind == proto.STDIN:
            if self.stdin_fd >= 0 and not self.stdin_closing and not self.exited:
                self.stdin_buffer += payload
                self.write_input()
        elif kind == proto.CLOSE:
            if not spec.tty and self.stdin_fd >= 0:
                self.stdin_closing = True
                if not self.stdin_buffer:
                    self.close_stdin()
        elif kind == proto.RESIZE:
            rows, cols = proto.decode_size(payload)
            if self.master >= 0:
                set_window_size(self.master, rows, cols)
        elif kind == proto.SIGNAL:
            number = proto.decode_signal(payload)
            if self.started and not self.exited and 0 < number < signal.NSIG:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, number)

    # -- the end ---------------------------------------------------------------------------

    def record_exit(self) -> None:
        record = {"exit_code": self.exit_code, "finished_at": now(), "error": self.error}
        path = self.dir / EXIT_FILE
        tmp = path.with_name(f".tmp-{EXIT_FILE}.{os.getpid()}")
        try:
            tmp.write_text(json.dumps(record) + "\n")
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if exc.errno != errno.ENOENT:  # the directory is gone: nothing to record in
                _note(self.dir, f"cannot write {EXIT_FILE}: {exc}")

    def call_exit_hook(self) -> None:
        if self.on_exit is None:
            return
        try:
            self.on_exit(self.exit_code, self.error)
        except Exception:
            with contextlib.suppress(OSError):
                _note(self.dir, "on_exit failed:\n" + traceback.format_exc())

    def finish(self) -> None:
        for fd in list(self.outputs):
            # output still arriving after the drain time: read what is there, then stop
            # (a container that never started has only the runtime's complaints there)
            with contextlib.suppress(OSError):
                while self.started and (data := os.read(fd, 65536)):
                    assert self.log is not None
                    self.log.write(self.outputs[fd], data)
            os.close(fd)
        self.outputs.clear()
        if self.log is not None:
            self.log.close()
        self.record_exit()
        with contextlib.suppress(ContainerError):
            self.spec.oci.delete(self.spec.container_id, force=True)
        self.close_listener()
        self.call_exit_hook()
        if self.failed:
            self.report(error=self.error, exit_status=self.exit_code, last=True)
        frame = proto.encode(
            proto.EXIT, json.dumps({"exit_code": self.exit_code, "error": self.error}).encode()
        )
        deadline = time.monotonic() + 5
        for client in list(self.clients.values()):
            if client.welcomed:
                client.out += frame
                client.sock.setblocking(True)
                client.sock.settimeout(max(0.1, deadline - time.monotonic()))
                with contextlib.suppress(OSError):
                    client.sock.sendall(client.out)
        for fd in list(self.clients):
            self.drop(fd)

    def close_listener(self) -> None:
        if self.listener is None:
            return
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            (self.dir / proto.ATTACH_SOCKET).unlink()
        self.listener.close()
        self.listener = None

    def close_everything(self) -> None:
        self.report(error="the supervisor failed (see supervisor.log)", exit_status=125, last=True)
        for fd in list(self.clients):
            self.drop(fd)
        self.close_listener()
        for fd in list(self.outputs):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.outputs.clear()
        if self.stdin_fd >= 0 and self.stdin_fd != self.master:
            with contextlib.suppress(OSError):
                os.close(self.stdin_fd)
        if self.pidfd >= 0:
            os.close(self.pidfd)
        if self.log is not None:
            self.log.close()
        # reap whatever else was left to us
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        # free the lock before the report pipe closes (at exit): a caller told of a failure
        # finds this supervisor gone
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1
