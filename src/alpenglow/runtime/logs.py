"""A container's output log: JSON lines as Docker's ``json-file`` driver writes them. [edge]

Each line is one piece of output::

    {"log":"hi\\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}

``stream`` is ``stdout`` or ``stderr`` (a container with a terminal has only ``stdout``);
``time`` is when the supervisor read it (RFC 3339, UTC, nanoseconds). Output is cut at
newlines; a piece without one (a prompt) is written as soon as it is read, so the log is
never behind the screen. Bytes that are not UTF-8 are kept exactly: they are stored as
``\\udcXX`` escapes (Python's ``surrogateescape``) and come back as the same bytes.

:class:`LogWriter` appends (one ``write`` per batch, so readers see whole lines);
:func:`logs` reads, the last ``tail`` entries only if asked, and with ``follow`` keeps
reading what is appended until the container's supervisor is gone. A line that does not
parse (a supervisor killed in the middle of a write) is skipped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LOG_FILE",
    "LogEntry",
    "LogWriter",
    "encode_entries",
    "format_log_time",
    "logs",
    "parse_entry",
    "tail_lines",
]


def __dir__() -> list[str]:
    return __all__


LOG_FILE = "container.log"
_FOLLOW_INTERVAL = 0.05
_BLOCK = 64 * 1024


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One piece of output: its bytes, ``stdout`` or ``stderr``, and when it was read."""

    data: bytes
    stream: str
    time: str


def format_log_time(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds.

    >>> format_log_time(1_700_000_000_123_456_789)
    '2023-11-14T22:13:20.123456789Z'
    """
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def encode_entries(stream: str, data: bytes, ns: int) -> bytes:
    """The log lines for ``data`` read from ``stream`` at ``ns`` (one per line of output).

    >>> encode_entries("stdout", b"a\\nb", 0)
    b'{"log":"a\\\\n","stream":"stdout","time":"1970-01-01T00:00:00.000000000Z"}\\n{"log":"b","stream":"stdout","time":"1970-01-01T00:00:00.000000000Z"}\\n'
    """
    tail = f',"stream":{json.dumps(stream)},"time":"{format_log_time(ns)}"}}\n'
    out = []
    for piece in data.splitlines(keepends=True):
        text = piece.decode("utf-8", "surrogateescape")
        out.append('{"log":' + json.dumps(text) + tail)
    return "".join(out).encode("ascii")


def parse_entry(line: bytes) -> LogEntry | None:
    """The entry of one log line; None when it is not one."""
    try:
        obj = json.loads(line)
        text, stream, when = obj["log"], obj.get("stream", "stdout"), obj.get("time", "")
        if not isinstance(text, str) or not isinstance(stream, str):
            return None
        return LogEntry(text.encode("utf-8", "surrogateescape"), stream, str(when))
    except (ValueError, KeyError, TypeError, UnicodeError):
        return None


class LogWriter:
    """Appends output to the log at ``path`` (created with mode 0640). A write that fails
    (a full disk) loses that output but not the container: :attr:`dropped` counts it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.dropped = 0

    def write(self, stream: str, data: bytes) -> None:
        if not data or self._fd < 0:
            return
        blob = encode_entries(stream, data, time.time_ns())
        try:
            os.write(self._fd, blob)
        except OSError:
            self.dropped += len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def tail_lines(fd: int, count: int) -> tuple[list[bytes], int]:
    """The last ``count`` complete lines of the open file ``fd`` (read backwards in blocks,
    so a long log is not read whole) and the offset where its complete lines end."""
    position = os.fstat(fd).st_size
    data = b""
    while position > 0:
        step = min(_BLOCK, position)
        position -= step
        data = os.pread(fd, step, position) + data
        if data.count(b"\n") > count:
            break
    complete = data.rfind(b"\n") + 1
    lines = data[:complete].splitlines(keepends=True)
    if position > 0:
        lines = lines[1:]  # the first one may be cut
    return (lines[-count:] if count else []), position + complete


def logs(
    container_dir: Path,
    *,
    follow: bool = False,
    tail: int | None = None,
    alive: Callable[[], bool] | None = None,
) -> Iterator[LogEntry]:
    """The entries of the container's log (the last ``tail`` ones when given; all when
    None). With ``follow``, entries appended later too, until ``alive()`` (default: the
    container's supervisor is running) is false and the rest has been read."""
    if alive is None:
        from alpenglow.runtime.supervisor import supervisor_running

        def alive() -> bool:
            return supervisor_running(container_dir)

    path = Path(container_dir) / LOG_FILE
    fd = -1
    offset = 0
    pending = b""
    try:
        while True:
            running = follow and alive()
            if fd < 0:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    if not running:
                        return
                    time.sleep(_FOLLOW_INTERVAL)
                    continue
                if tail is not None:
                    lines, offset = tail_lines(fd, tail)
                    for line in lines:
                        entry = parse_entry(line)
                        if entry is not None:
                            yield entry
            while True:
                data = os.pread(fd, _BLOCK, offset)
                if not data:
                    break
                offset += len(data)
                pending += data
                cut = pending.rfind(b"\n") + 1
                if cut:
                    for line in pending[:cut].splitlines():
                        entry = parse_entry(line)
                        if entry is not None:
                            yield entry
                    pending = pending[cut:]
            if not running:
                return
            time.sleep(_FOLLOW_INTERVAL)
    finally:
        if fd >= 0:
            os.close(fd)
