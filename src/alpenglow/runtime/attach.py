"""Attaching to a supervised container: the wire protocol and the client. [edge]

A detached container's supervisor (:mod:`alpenglow.runtime.supervisor`) listens on the unix
socket ``attach.sock`` in the container's directory. Both sides send frames: a 5-byte header
(the kind, one byte; the payload's length, 4 bytes big-endian) and the payload.

=========  ===========  ======================================================================
kind       direction    payload
=========  ===========  ======================================================================
``h``      to the       HELLO, first: JSON ``{"stdin": bool, "size": [rows, cols] | null}``;
           supervisor   the client now gets the output (and, for a container created but
                        waiting for its first client, the container starts)
``i``      to           STDIN: bytes for the container's stdin (or its terminal)
``c``      to           CLOSE: end of input (the container's stdin pipe is closed)
``r``      to           RESIZE: rows and columns, two unsigned 16-bit big-endian numbers
``k``      to           SIGNAL: a signal number (unsigned 32-bit) for the container's init
``w``      to the       WELCOME, the answer to HELLO: JSON ``{"tty": bool, "stdin": bool}``
           client       (whether the container has a terminal, and an open stdin)
``o``      to           STDOUT: output (everything, for a container with a terminal)
``e``      to           STDERR: error output
``x``      to           EXIT, last: JSON ``{"exit_code": int | null, "error": str}``
=========  ===========  ======================================================================

Detaching is the client's business: :func:`attach` watches its input for the detach keys
(Ctrl-P Ctrl-Q by default, as Docker), and on seeing them closes its connection; the
container goes on running. Bytes that begin the sequence but do not complete it are passed
on once they are known not to be it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from alpenglow.errors import ContainerError, UsageError
from alpenglow.runtime.console import Signals, raw_terminal, short_path, window_size, write_all

__all__ = [
    "ATTACH_SOCKET",
    "CLOSE",
    "DEFAULT_DETACH_KEYS",
    "EXIT",
    "HELLO",
    "MAX_FRAME",
    "RESIZE",
    "SIGNAL",
    "STDERR",
    "STDIN",
    "STDOUT",
    "WELCOME",
    "DetachMatcher",
    "FrameReader",
    "Welcome",
    "attach",
    "connect",
    "decode_signal",
    "decode_size",
    "encode",
    "encode_size",
    "parse_detach_keys",
]


def __dir__() -> list[str]:
    return __all__


ATTACH_SOCKET = "attach.sock"
HELLO = ord("h")
STDIN = ord("i")
CLOSE = ord("c")
RESIZE = ord("r")
SIGNAL = ord("k")
WELCOME = ord("w")
STDOUT = ord("o")
STDERR = ord("e")
EXIT = ord("x")
MAX_FRAME = 1 << 20
"""The largest payload either side accepts (a bigger one is a protocol error)."""
DEFAULT_DETACH_KEYS = b"\x10\x11"
"""Ctrl-P Ctrl-Q."""

_HEADER = struct.Struct(">BI")
_SIZE = struct.Struct(">HH")
_SIGNUM = struct.Struct(">I")
_PROXIED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One frame.

    >>> encode(STDOUT, b"hi")
    b'o\\x00\\x00\\x00\\x02hi'
    """
    return _HEADER.pack(kind, len(payload)) + payload


def encode_size(rows: int, cols: int) -> bytes:
    """A RESIZE frame (sizes beyond 65535 are clamped)."""
    return encode(RESIZE, _SIZE.pack(min(rows, 0xFFFF), min(cols, 0xFFFF)))


def decode_size(payload: bytes) -> tuple[int, int]:
    """``(rows, columns)`` of a RESIZE payload; :class:`ValueError` if it is not one."""
    if len(payload) != _SIZE.size:
        raise ValueError("bad resize frame")
    rows, cols = _SIZE.unpack(payload)
    return rows, cols


def decode_signal(payload: bytes) -> int:
    """The signal number of a SIGNAL payload; :class:`ValueError` if it is not one."""
    if len(payload) != _SIGNUM.size:
        raise ValueError("bad signal frame")
    (number,) = _SIGNUM.unpack(payload)
    return int(number)


class FrameReader:
    """Frames out of a byte stream fed in pieces.

    >>> reader = FrameReader()
    >>> reader.feed(encode(STDOUT, b"a") + encode(EXIT, b"{}")[:3])
    [(111, b'a')]
    >>> reader.feed(encode(EXIT, b"{}")[3:])
    [(120, b'{}')]
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The frames completed by ``data``; :class:`ValueError` for an oversized one."""
        self._buffer += data
        out = []
        while len(self._buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise ValueError(f"frame of {length} bytes (more than {MAX_FRAME})")
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            out.append((kind, bytes(self._buffer[_HEADER.size : end])))
            del self._buffer[:end]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)


_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text: str) -> bytes:
    """Docker's ``--detach-keys``: comma-separated keys, each one character or
    ``ctrl-X`` (X a letter or one of ``@[\\]^_``); "" disables detaching.

    >>> parse_detach_keys("ctrl-p,ctrl-q")
    b'\\x10\\x11'
    >>> parse_detach_keys("a,ctrl-@,ctrl-]")
    b'a\\x00\\x1d'
    """
    out = bytearray()
    for item in text.split(",") if text else []:
        key = item.strip()
        if len(key) == 1:
            out.append(ord(key))
        elif key.lower().startswith("ctrl-") and len(key) == 6:
            char = key[5].lower()
            if "a" <= char <= "z":
                out.append(ord(char) - ord("a") + 1)
            elif char in _CTRL:
                out.append(_CTRL[char])
            else:
                raise UsageError(f"invalid detach key {key!r}: ctrl- takes a-z, @, [, \\, ], ^, _")
        else:
            raise UsageError(
                f"invalid detach key {key!r}: expected one character or ctrl-X "
                "(e.g. --detach-keys ctrl-p,ctrl-q)"
            )
    return bytes(out)


class DetachMatcher:
    """Watches input for the detach sequence.

    >>> m = DetachMatcher(b"\\x10\\x11")
    >>> m.feed(b"ls\\x10"), m.feed(b"x"), m.feed(b"\\x10\\x11rest")
    ((b'ls', False), (b'\\x10x', False), (b'', True))
    """

    __slots__ = ("_held", "_keys")

    def __init__(self, keys: bytes) -> None:
        self._keys = keys
        self._held = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """The bytes to pass on, and whether the sequence is now complete (the bytes
        after it are dropped)."""
        keys = self._keys
        if not keys:
            return data, False
        out = bytearray()
        for byte in data:
            if byte == keys[self._held]:
                self._held += 1
                if self._held == len(keys):
                    self._held = 0
                    return bytes(out), True
                continue
            if self._held:
                out += keys[: self._held]
                self._held = 0
            if byte == keys[0]:
                self._held = 1
                if len(keys) == 1:
                    self._held = 0
                    return bytes(out), True
            else:
                out.append(byte)
        return bytes(out), False


@dataclass(frozen=True, slots=True)
class Welcome:
    """The supervisor's answer to HELLO."""

    tty: bool
    stdin: bool


def _fileno(stream: int | _HasFileno | None) -> int | None:
    if stream is None or isinstance(stream, int):
        return stream
    return stream.fileno()


@contextlib.contextmanager
def connect(container_dir: Path, timeout: float = 10) -> Iterator[socket.socket]:
    """A connection to the supervisor of the container in ``container_dir``;
    :class:`ContainerError` when no supervisor listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            with short_path(Path(container_dir), ATTACH_SOCKET) as path:
                sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            raise ContainerError(
                "the container has no supervisor to attach to (it is not running, it runs "
                "in the foreground of another command, or its supervisor was killed)",
                exit_status=1,
            ) from None
        except OSError as exc:
            raise ContainerError(
                f"cannot reach the container's supervisor: {exc.strerror or exc}", exit_status=1
            ) from None
        yield sock
    finally:
        sock.close()


def attach(
    container_dir: Path,
    stdin: int | _HasFileno | None,
    stdout: int | _HasFileno,
    *,
    stderr: int | _HasFileno | None = None,
    detach_keys: bytes = DEFAULT_DETACH_KEYS,
    close_stdin: bool = False,
    sig_proxy: bool = False,
) -> int | None:
    """Attach ``stdin``/``stdout`` (files or descriptors) to the supervised container in
    ``container_dir`` until it exits (its exit status is returned) or the user types
    ``detach_keys`` (None is returned; the container goes on; also when ``stdout`` is
    closed by its reader).

    ``stdin`` None sends no input. When the container has a terminal and ``stdin`` is one,
    ``stdin`` is in raw mode while attached (restored however this ends) and its window
    size follows the terminal's. ``stderr`` (default: ``stdout``) gets the container's
    error output. ``close_stdin`` closes the container's stdin at the end of ``stdin``;
    ``sig_proxy`` passes SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 received by
    this process to the container (one without a terminal; a terminal's own keys go to it
    as input). :class:`ContainerError` when the supervisor cannot be
    reached or goes away before the container's end."""
    in_fd = _fileno(stdin)
    out_fd = _fileno(stdout)
    assert out_fd is not None
    err_fd = _fileno(stderr)
    err_fd = out_fd if err_fd is None else err_fd
    size = window_size(in_fd) if in_fd is not None else None
    if size is None:
        size = window_size(out_fd)
    with connect(container_dir) as sock:
        hello = {"stdin": in_fd is not None, "size": list(size) if size else None}
        reader = FrameReader()
        try:
            sock.sendall(encode(HELLO, json.dumps(hello).encode()))
            welcome, early = _welcome(sock, reader)
        except (OSError, ValueError) as exc:
            raise ContainerError(f"the container's supervisor did not answer: {exc}") from None
        watched: tuple[int, ...] = ()
        if welcome.tty and in_fd is not None and os.isatty(in_fd):
            watched = (signal.SIGWINCH,)
        elif sig_proxy and not welcome.tty:
            watched = _PROXIED
        with raw_terminal(in_fd if welcome.tty else None), Signals(watched) as signals:
            return _pump(
                sock, reader, early, in_fd, out_fd, err_fd, detach_keys, close_stdin, signals
            )


def _welcome(sock: socket.socket, reader: FrameReader) -> tuple[Welcome, list[tuple[int, bytes]]]:
    """The WELCOME frame, and the frames that came with it."""
    while True:
        data = sock.recv(65536)
        if not data:
            raise ValueError("connection closed")
        frames = reader.feed(data)
        if frames:
            kind, payload = frames[0]
            if kind != WELCOME:
                raise ValueError(f"unexpected frame {kind!r}")
            obj = json.loads(payload)
            return Welcome(tty=bool(obj.get("tty")), stdin=bool(obj.get("stdin"))), frames[1:]


def _pump(
    sock: socket.socket,
    reader: FrameReader,
    early: list[tuple[int, bytes]],
    in_fd: int | None,
    out_fd: int,
    err_fd: int,
    detach_keys: bytes,
    close_stdin: bool,
    signals: Signals,
) -> int | None:
    sock.setblocking(True)
    sock.settimeout(None)
    matcher = DetachMatcher(detach_keys)
    reading_input = in_fd is not None
    ended, code = _show(early, out_fd, err_fd)
    if ended:
        return code
    while True:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(signals.read_fd, select.POLLIN)
        if reading_input and in_fd is not None:
            poller.register(in_fd, select.POLLIN)
        events = dict(poller.poll())
        if signals.read_fd in events:
            for number in signals.take():
                frame = (
                    _resize_frame(in_fd)
                    if number == signal.SIGWINCH
                    else encode(SIGNAL, _SIGNUM.pack(number))
                )
                if frame:
                    _send(sock, frame)
        if in_fd is not None and in_fd in events:
            try:
                data = os.read(in_fd, 65536)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data is not None:
                if not data:
                    reading_input = False
                    if close_stdin:
                        _send(sock, encode(CLOSE))
                else:
                    forward, detached = matcher.feed(data)
                    if forward:
                        _send(sock, encode(STDIN, forward))
                    if detached:
                        return None
        if sock.fileno() in events:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                raise ContainerError(
                    "lost the connection to the container's supervisor (was it killed?)"
                )
            try:
                frames = reader.feed(data)
            except ValueError as exc:
                raise ContainerError(f"the container's supervisor sent garbage: {exc}") from None
            ended, code = _show(frames, out_fd, err_fd)
            if ended:
                return code


def _show(frames: list[tuple[int, bytes]], out_fd: int, err_fd: int) -> tuple[bool, int | None]:
    """Write output frames out; at EXIT, True and the exit status; True and None when
    nobody reads the output any more (as if detached)."""
    for kind, payload in frames:
        if kind in (STDOUT, STDERR):
            if not write_all(out_fd if kind == STDOUT else err_fd, payload):
                return True, None
        elif kind == EXIT:
            code = json.loads(payload).get("exit_code")
            # the supervisor always knows it (it waited for the process)
            return True, 255 if code is None else int(code)
    return False, 0


def _resize_frame(in_fd: int | None) -> bytes:
    size = window_size(in_fd) if in_fd is not None else None
    return encode_size(*size) if size else b""


def _send(sock: socket.socket, frame: bytes) -> None:
    try:
        sock.sendall(frame)
    except OSError:
        raise ContainerError(
            "lost the connection to the container's supervisor (was it killed?)"
        ) from None
