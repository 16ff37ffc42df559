"""Terminals and unix sockets for containers: the console socket, window sizes, raw mode. [edge]

* The OCI runtime hands the master side of a container's pseudo-terminal to whoever listens
  on ``--console-socket``: it connects to that unix socket and sends the file descriptor in
  one ``SCM_RIGHTS`` message (with the pty's name as the data). :class:`ConsoleSocket`
  listens and :meth:`ConsoleSocket.receive` returns the fd.
* A unix socket's path is limited to 108 bytes, and a container's directory may be deeper
  than that. :func:`short_path` names a file in a directory through an ``O_PATH``
  descriptor of that directory (``/proc/PID/fd/N/NAME``), which the kernel resolves however
  long the real path is; other processes (the runtime) can use that name while the
  descriptor stays open.
* :func:`raw_terminal` puts a terminal in raw mode for the duration of a ``with`` block and
  always restores it; :func:`window_size` and :func:`set_window_size` read and set a
  terminal's rows and columns.
* :func:`become_subreaper` makes this process the parent of orphaned descendants (the
  container's init once ``runc create`` exits), so that it can wait for them.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "ConsoleSocket",
    "Signals",
    "become_subreaper",
    "raw_terminal",
    "set_window_size",
    "short_path",
    "window_size",
    "write_all",
]


def __dir__() -> list[str]:
    return __all__


_PR_SET_CHILD_SUBREAPER = 36


@contextlib.contextmanager
def short_path(directory: Path, name: str) -> Iterator[str]:
    """A path to ``directory/name`` short enough for a unix socket address, valid for this
    process and (as root, or as the same user) for others while the block runs."""
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/{os.getpid()}/fd/{fd}/{name}"
    finally:
        os.close(fd)


class ConsoleSocket:
    """A listening unix socket at ``directory/name`` for ``--console-socket``.

    :attr:`path` is what to give the runtime; :meth:`receive` accepts its connection and
    returns the pty master it sent (close-on-exec). :meth:`close` removes the socket."""

    def __init__(self, directory: Path, name: str) -> None:
        self._file = directory / name
        with contextlib.suppress(FileNotFoundError):
            self._file.unlink()
        self._dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.path = f"/proc/{os.getpid()}/fd/{self._dir_fd}/{name}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.bind(self.path)
            self._sock.listen(1)
        except BaseException:
            self.close()
            raise

    def receive(self, timeout: float) -> int:
        """The pty master sent by the runtime, waiting at most ``timeout`` seconds for it;
        :class:`TimeoutError` when nothing came, :class:`OSError` when the message held
        no descriptor."""
        self._sock.settimeout(timeout)
        conn, _ = self._sock.accept()
        with conn:
            conn.settimeout(timeout)
            # (socket.recv_fds would drop the flags: the descriptor must not leak to children)
            _, ancillary, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC)
        fds = array.array("i")
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        if not fds:
            raise OSError("the console socket received no file descriptor")
        for extra in fds[1:]:
            os.close(extra)
        return fds[0]

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self._file.unlink()
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1

    def __enter__(self) -> ConsoleSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def window_size(fd: int) -> tuple[int, int] | None:
    """``(rows, columns)`` of the terminal ``fd``; None when it is not a terminal."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols, _, _ = struct.unpack("HHHH", packed)
    return rows, cols


def set_window_size(fd: int, rows: int, cols: int) -> None:
    """Set the window size of the terminal ``fd`` (a pty master: the process group in the
    foreground of its slave gets SIGWINCH). Errors are ignored: the terminal may be gone."""
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@contextlib.contextmanager
def raw_terminal(fd: int | None) -> Iterator[bool]:
    """Raw mode on ``fd`` while the block runs, when it is a terminal (yields whether it
    is); its previous mode is restored however the block ends."""
    if fd is None or not os.isatty(fd):
        yield False
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield True
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def write_all(fd: int, data: bytes | memoryview, timeout: float | None = None) -> bool:
    """Write all of ``data`` to ``fd``, waiting for a non-blocking fd to take it; False when
    the reader went away (EPIPE, EIO) or ``timeout`` seconds passed."""
    view = memoryview(data)
    deadline = None if timeout is None else time.monotonic() + timeout
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if wait == 0.0:
                return False
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll(None if wait is None else int(wait * 1000) + 1)
            continue
        except (BrokenPipeError, ConnectionResetError):
            return False
        except OSError as exc:
            if exc.errno == errno.EIO:  # a terminal whose other side is closed
                return False
            raise
        view = view[written:]
    return True


def become_subreaper() -> None:
    """Adopt orphaned descendants (``prctl(PR_SET_CHILD_SUBREAPER)``), so that a
    container's init, left by ``runc create`` when it exits, becomes this process's child
    and its exit status can be waited for. :class:`OSError` if the kernel refuses."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


class Signals:
    """The signals ``numbers`` noted while a ``with`` block runs (not acted upon): each
    makes :attr:`read_fd` readable, to wake a poll, and :meth:`take` returns those that
    came. Outside the main thread (where Python cannot handle signals) nothing is noted."""

    def __init__(self, numbers: tuple[int, ...]) -> None:
        self.numbers = numbers if threading.current_thread() is threading.main_thread() else ()
        self.pending: list[int] = []
        self.read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous: dict[int, Any] = {}
        self._wakeup = -1

    def _note(self, signum: int, _frame: object) -> None:
        self.pending.append(signum)

    def __enter__(self) -> Signals:
        if self.numbers:
            self._wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
            for number in self.numbers:
                self._previous[number] = signal.signal(number, self._note)
        return self

    def take(self) -> list[int]:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.read_fd, 512):
                pass
        out, self.pending = self.pending, []
        return out

    def __exit__(self, *exc: object) -> None:
        for number, action in self._previous.items():
            signal.signal(number, action)
        if self.numbers:
            signal.set_wakeup_fd(self._wakeup)
        os.close(self.read_fd)
        os.close(self._write_fd)
