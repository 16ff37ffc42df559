"""A command driven through a real pseudo-terminal, as a user at a keyboard drives it.

:class:`Terminal` runs ``argv`` with :func:`pty.fork` (a new session whose controlling
terminal is the pty), so the command sees a TTY on stdin, stdout and stderr, can put it in
raw mode, gets SIGWINCH on :meth:`Terminal.resize`, and what it prints (with the terminal's
own echo) is read from the master side. :meth:`Terminal.expect` waits for a pattern in the
output; :meth:`Terminal.send` types bytes; :meth:`Terminal.wait` returns the exit status.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import time
from collections.abc import Mapping, Sequence

__all__ = ["Terminal"]


class Terminal:
    """``argv`` running in a new pty of ``rows`` x ``cols`` with ``env``."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        rows: int = 24,
        cols: int = 80,
    ) -> None:
        self.argv = list(argv)
        self.output = b""
        self._seen = 0
        self._status: int | None = None
        environment = dict(os.environ if env is None else env)
        environment.setdefault("TERM", "xterm")
        pid, master = pty.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.execvpe(self.argv[0], self.argv, environment)
            finally:
                os._exit(127)
        self.pid = pid
        self.master = master
        os.set_blocking(master, False)
        self.resize(rows, cols)

    def __repr__(self) -> str:
        return f"Terminal({self.argv!r})"

    # -- input and output ------------------------------------------------------------------

    def _read(self, timeout: float) -> bool:
        """Read what is there (waiting up to ``timeout``); False at the end of output."""
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return True
        except OSError:  # EIO: the command and everything it started closed the terminal
            return False
        if not data:
            return False
        self.output += data
        return True

    def expect(self, pattern: bytes | re.Pattern[bytes], timeout: float = 20) -> bytes:
        """Wait for ``pattern`` (bytes, or a compiled regular expression) in the output
        not yet matched; returns the output up to the end of the match. AssertionError,
        with everything read, when it does not come in time."""
        deadline = time.monotonic() + timeout
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        while True:
            found = regex.search(self.output, self._seen)
            if found:
                self._seen = found.end()
                return self.output[: found.end()]
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.5)):
                if (found := regex.search(self.output, self._seen)) is not None:
                    self._seen = found.end()
                    return self.output[: found.end()]
                raise AssertionError(
                    f"{pattern!r} did not appear in the output of {self.argv}:\n"
                    f"{self.output.decode(errors='replace')}"
                )

    def send(self, data: bytes) -> None:
        """Type ``data``."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.master, view)
            except BlockingIOError:
                select.select([], [self.master], [], 1)
                continue
            view = view[written:]

    def resize(self, rows: int, cols: int) -> None:
        """Change the window size (the command's foreground process group gets SIGWINCH)."""
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    # -- the end ---------------------------------------------------------------------------

    def poll(self) -> int | None:
        """The exit status if the command has ended (128 + N for signal N)."""
        if self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                self._status = 128 - code if code < 0 else code
        return self._status

    def wait(self, timeout: float = 20) -> int:
        """Wait for the command to end (reading its output meanwhile); its exit status.
        AssertionError, with the output, when it does not end in time."""
        deadline = time.monotonic() + timeout
        while (status := self.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.argv} did not end within {timeout} s; its output:\n"
                    f"{self.output.decode(errors='replace')}"
                )
            self._read(0.05)
        while self._read(0):
            if not select.select([self.master], [], [], 0)[0]:
                break
        return status

    def close(self) -> None:
        """Kill the command if it still runs, and close the terminal."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self._status = -1
        with contextlib.suppress(OSError):
            os.close(self.master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
