"""Terminals and unix sockets: the console socket's SCM_RIGHTS, short socket paths, window
sizes, raw mode, signals noted for a poll, the subreaper flag (no container needed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from alpenglow.runtime import console
from alpenglow.runtime.console import (
    ConsoleSocket,
    Signals,
    raw_terminal,
    set_window_size,
    short_path,
    window_size,
    write_all,
)


def test_exports() -> None:
    assert set(console.__all__) == {
        "ConsoleSocket",
        "Signals",
        "become_subreaper",
        "raw_terminal",
        "set_window_size",
        "short_path",
        "window_size",
        "write_all",
    }
    assert sorted(dir(console)) == sorted(console.__all__)


@pytest.fixture
def deep(tmp_path: Path) -> Path:
    """A directory whose path is too long for a unix socket address."""
    path = tmp_path / ("x" * 100) / ("y" * 100)
    path.mkdir(parents=True)
    return path


def test_the_console_socket_receives_a_descriptor(deep: Path, tmp_path: Path) -> None:
    sent = tmp_path / "sent"
    sent.write_text("the pty, say\n")
    with ConsoleSocket(deep, "console.sock") as listener:
        assert len(listener.path) < 100
        assert (deep / "console.sock").exists()

        def runtime_side() -> None:  # what runc does: connect, send the fd, hang up
            with socket.socket(socket.AF_UNIX) as sock, open(sent, "rb") as fh:
                sock.connect(listener.path)
                socket.send_fds(sock, [b"/dev/ptmx"], [fh.fileno()])

        thread = threading.Thread(target=runtime_side)
        thread.start()
        fd = listener.receive(timeout=10)
        thread.join()
        try:
            assert os.fstat(fd).st_ino == sent.stat().st_ino
            assert os.get_inheritable(fd) is False
            assert os.pread(fd, 100, 0) == b"the pty, say\n"
        finally:
            os.close(fd)
    assert not (deep / "console.sock").exists()


def test_a_console_socket_without_a_descriptor_or_a_caller(deep: Path) -> None:
    with ConsoleSocket(deep, "c.sock") as listener:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(listener.path)
            sock.sendall(b"no fd here")
        with pytest.raises(OSError, match="no file descriptor"):
            listener.receive(timeout=5)
        with pytest.raises(TimeoutError):
            listener.receive(timeout=0.1)


def test_short_paths_bind_and_connect_in_deep_directories(deep: Path) -> None:
    assert len(str(deep / "a.sock")) > 108
    with socket.socket(socket.AF_UNIX) as server, short_path(deep, "a.sock") as path:
        server.bind(path)
        server.listen(1)
        with socket.socket(socket.AF_UNIX) as client, short_path(deep, "a.sock") as again:
            client.connect(again)
            conn, _ = server.accept()
            with conn:
                client.sendall(b"ok")
                assert conn.recv(2) == b"ok"
    assert (deep / "a.sock").exists()


def test_window_sizes_and_raw_mode_on_a_pty() -> None:
    master, slave = os.openpty()
    try:
        set_window_size(master, 33, 111)
        assert window_size(slave) == (33, 111)
        assert window_size(master) == (33, 111)
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ICANON
        with raw_terminal(slave) as raw:
            assert raw is True
            assert not termios.tcgetattr(slave)[3] & (termios.ICANON | termios.ECHO)
        assert termios.tcgetattr(slave) == before
        with pytest.raises(RuntimeError), raw_terminal(slave):
            raise RuntimeError("whatever happens inside")
        assert termios.tcgetattr(slave) == before  # restored however the block ends
    finally:
        os.close(master)
        os.close(slave)
    read_end, write_end = os.pipe()
    try:
        assert window_size(read_end) is None
        set_window_size(read_end, 1, 1)  # not a terminal: ignored
        with raw_terminal(read_end) as raw:
            assert raw is False
        with raw_terminal(None) as raw:
            assert raw is False
    finally:
        os.close(read_end)
        os.close(write_end)


def test_write_all_waits_for_a_slow_reader_and_tells_of_a_gone_one() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    data = os.urandom(1 << 20)  # far more than a pipe holds
    got = bytearray()

    def reader() -> None:
        while chunk := os.read(read_end, 65536):
            got.extend(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    assert write_all(write_end, data) is True
    os.close(write_end)
    thread.join()
    os.close(read_end)
    assert bytes(got) == data
    read_end, write_end = os.pipe()
    os.close(read_end)
    assert write_all(write_end, b"nobody listens") is False
    os.set_blocking(write_end, False)
    os.close(write_end)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        assert write_all(write_end, data, timeout=0.2) is False  # nobody reads: gave up
    finally:
        os.close(read_end)
        os.close(write_end)


def test_signals_are_noted_and_handlers_restored() -> None:
    previous = signal.getsignal(signal.SIGUSR1)
    with Signals((signal.SIGUSR1, signal.SIGUSR2)) as noted:
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
        assert sorted(noted.take()) == [signal.SIGUSR1, signal.SIGUSR2]
        assert noted.take() == []
    assert signal.getsignal(signal.SIGUSR1) == previous
    seen: list[list[int]] = []

    def elsewhere() -> None:  # outside the main thread nothing is installed
        with Signals((signal.SIGUSR1,)) as other:
            seen.append(list(other.numbers))

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert seen == [[]]


def test_become_subreaper_adopts_orphans() -> None:
    script = (
        "import ctypes, os, time\n"
        "from alpenglow.runtime.console import become_subreaper\n"
        "become_subreaper()\n"
        "flag = ctypes.c_int()\n"
        "ctypes.CDLL(None).prctl(37, ctypes.byref(flag), 0, 0, 0)\n"  # PR_GET_CHILD_SUBREAPER
        "if os.fork() == 0:\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(0.3)\n"
        "        os._exit(7)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "pid, status = os.wait()\n"  # the grandchild, orphaned, is now ours
        "print(flag.value, os.waitstatus_to_exitcode(status))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert (done.returncode, done.stdout) == (0, "1 7\n"), done.stderr
