"""The supervisor of a detached container: a small process that outlives the command. [edge]

:func:`start_supervisor` forks a daemon (double fork, its own session, stdio on
``/dev/null``) that runs the container with the OCI runtime and stays its parent:

1. it takes the lock ``supervisor.pid`` (an ``flock`` held while it lives, so that
   :func:`supervisor_running` is true exactly while it runs, whatever happened to it) and
   writes its pid there; it listens on ``attach.sock``;
2. it becomes a child subreaper and runs ``runc create`` (``--pid-file init.pid``), giving
   the container pipes for stdin/stdout/stderr, or, for a terminal, ``--console-socket``:
   the runtime sends it the pty master over that socket; when ``runc create`` exits the
   container's init is re-parented to the supervisor;
3. it runs ``runc start`` (at once, or when the first attach client says HELLO if
   ``wait_for_attach``), calls ``on_started(pid)`` and tells the waiting
   :func:`start_supervisor` that all went well (or what failed) through a pipe;
4. it copies the container's output to the log (:mod:`alpenglow.runtime.logs`) and to every
   attached client, and input from the clients to the container (protocol:
   :mod:`alpenglow.runtime.attach`); a resize from a client sets the pty's window size;
5. when the init exits it reads the rest of the output, writes ``exit.json`` (exit status:
   the process's, or 128 + the signal that killed it; the time), runs ``runc delete``,
   removes ``attach.sock``, calls ``on_exit(code, error)``, sends EXIT to the clients and
   exits.

Its own failures go to ``supervisor.log`` in the container's directory. If the supervisor is
killed the container goes on running unwatched; its lock is free, so readers know (``ps``
then asks the runtime, :meth:`alpenglow.runtime.engine.Engine.observe`).

:func:`supervise` does all that for a container of the :class:`~alpenglow.runtime.engine.Engine`:
``prepare_start`` first, ``mark_started`` and ``finish`` (and the removal of a ``--rm``
container) as the hooks.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpenglow.errors import ContainerError
from alpenglow.runtime._daemon import (
    EXIT_FILE,
    INIT_PID_FILE,
    LOCK_FILE,
    RUNTIME_LOG,
    SUPERVISOR_LOG,
    ExitHook,
    Spec,
    StartedHook,
    exit_status_of,
    run_daemon,
)
from alpenglow.runtime.runc import OciRuntime

if TYPE_CHECKING:
    from alpenglow.runtime.containers import Container
    from alpenglow.runtime.engine import Engine

__all__ = [
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
]


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True, slots=True)
class ExitRecord:
    """``exit.json``: how the container ended, as its supervisor saw it."""

    exit_code: int | None
    finished_at: str
    error: str = ""


def read_exit(container_dir: Path) -> ExitRecord | None:
    """The container's ``exit.json``; None when it has none (running, or never supervised,
    or its supervisor died before the end)."""
    try:
        obj = json.loads((Path(container_dir) / EXIT_FILE).read_bytes())
        code = obj["exit_code"]
        return ExitRecord(
            None if code is None else int(code), str(obj["finished_at"]), str(obj.get("error", ""))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def supervisor_running(container_dir: Path) -> bool:
    """Whether a supervisor holds the container's lock (that is: it is alive)."""
    try:
        fd = os.open(Path(container_dir) / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def supervisor_pid(container_dir: Path) -> int | None:
    """The pid of the container's supervisor while it runs; None otherwise."""
    if not supervisor_running(container_dir):
        return None
    try:
        return int((Path(container_dir) / LOCK_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Starting: the caller's side


def start_supervisor(
    container_dir: Path,
    *,
    runc: str,
    runc_root: Path,
    container_id: str,
    tty: bool,
    stdin_open: bool,
    bundle: Path | None = None,
    on_started: StartedHook | None = None,
    on_exit: ExitHook | None = None,
    wait_for_attach: bool = False,
    timeout: float = 120.0,
) -> int:
    """Start the supervisor of the container ``container_id`` (bundle: ``bundle``, by
    default ``container_dir`` itself) and return its pid once the container runs (or, with
    ``wait_for_attach``, once it is created and waits for its first attach client).

    ``on_started(pid)`` and ``on_exit(exit_code, error)`` run in the supervisor (a fork of
    this process) when the container has started (returning False there means "it was
    removed meanwhile": the container is killed) and after it ended and was deleted from the
    runtime. A container that cannot be created or started raises
    :class:`~alpenglow.errors.ContainerError` with the runtime's message and Docker's exit
    status (127 command not found, 126 not runnable, 125 other); ``on_exit`` has run
    then, and the supervisor has ended."""
    container_dir = Path(container_dir).absolute()
    spec = Spec(
        container_dir=container_dir,
        bundle=Path(bundle).absolute() if bundle is not None else container_dir,
        oci=OciRuntime(runc, Path(runc_root).absolute()),
        container_id=container_id,
        tty=tty,
        stdin_open=stdin_open,
        wait_for_attach=wait_for_attach,
    )
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        child = os.fork()
    except BaseException:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if child == 0:  # pragma: no cover - the intermediate process
        status = 1
        try:
            os.close(read_fd)
            os.setsid()
            if os.fork() == 0:
                run_daemon(spec, write_fd, on_started, on_exit)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        os.waitpid(child, 0)
        reply = _read_reply(read_fd, timeout)
    finally:
        os.close(read_fd)
    if reply is None:
        raise ContainerError(
            "the container's supervisor ended before it could start the container",
            hint=f"see {container_dir / SUPERVISOR_LOG}",
        )
    if "error" in reply:
        exit_status: int = reply.get("exit_status", 125)
        raise ContainerError(str(reply["error"]), exit_status=exit_status)
    pid: int = reply["pid"]
    return pid


def _read_reply(fd: int, timeout: float) -> dict[str, Any] | None:
    data = b""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ContainerError(
                f"the container's supervisor did not report within {timeout:.0f} s"
            )
        if not poller.poll(int(left * 1000) + 1):
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    if not data.strip():
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def supervise(engine: Engine, record: Container, *, wait_for_attach: bool = False) -> int:
    """Start ``record``'s container under a supervisor (:func:`start_supervisor`): its root
    mounted and its command checked first (``Engine.prepare_start``), its start and its end
    recorded in its state (``Engine.mark_started``, ``Engine.finish``), and a ``--rm``
    container removed when it ends. Returns the supervisor's pid."""
    paths = engine.prepare_start(record)
    oci = engine.oci_for(record)

    def started(pid: int) -> bool:
        return engine.mark_started(record, os.getpid(), pid)

    def ended(code: int | None, error: str) -> None:
        engine.finish(record, code, error)
        if record.auto_remove:
            engine.remove(record, force=True)

    return start_supervisor(
        paths.dir,
        runc=oci.binary,
        runc_root=oci.root,
        container_id=record.id,
        tty=record.tty,
        stdin_open=record.interactive,
        bundle=paths.bundle,
        on_started=started,
        on_exit=ended,
        wait_for_attach=wait_for_attach,
    )
