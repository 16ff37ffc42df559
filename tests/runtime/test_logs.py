"""The json-file log: entries, the writer, tails and following (no container needed)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alpenglow.runtime import logs as logs_module
from alpenglow.runtime.logs import (
    LOG_FILE,
    LogEntry,
    LogWriter,
    encode_entries,
    format_log_time,
    logs,
    parse_entry,
    tail_lines,
)


def test_exports() -> None:
    assert set(logs_module.__all__) == {
        "LOG_FILE",
        "LogEntry",
        "LogWriter",
        "encode_entries",
        "format_log_time",
        "logs",
        "parse_entry",
        "tail_lines",
    }
    assert sorted(dir(logs_module)) == sorted(logs_module.__all__)


def test_entries_are_dockers_json_lines() -> None:
    blob = encode_entries("stderr", b"one\ntwo\n\nthree", 1_700_000_000_000_000_001)
    lines = blob.decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"log": text, "stream": "stderr", "time": "2023-11-14T22:13:20.000000001Z"}
        for text in ("one\n", "two\n", "\n", "three")
    ]
    assert list(json.loads(lines[0])) == ["log", "stream", "time"]  # Docker's key order
    assert format_log_time(0) == "1970-01-01T00:00:00.000000000Z"
    assert encode_entries("stdout", b"", 0) == b""


@given(st.binary(max_size=200), st.sampled_from(["stdout", "stderr"]))
def test_any_bytes_come_back_exactly(data: bytes, stream: str) -> None:
    blob = encode_entries(stream, data, 123)
    assert blob.isascii()  # invalid UTF-8 is escaped, never written raw
    entries = [parse_entry(line) for line in blob.splitlines()]
    assert all(e is not None and e.stream == stream for e in entries)
    assert b"".join(e.data for e in entries if e is not None) == data


@pytest.mark.parametrize(
    "line",
    [b"", b"{", b"[]", b'{"stream":"stdout"}', b'{"log":1}', b'{"log":"x","stream":3}', b"\xff"],
)
def test_lines_that_are_not_entries(line: bytes) -> None:
    assert parse_entry(line) is None


def write_lines(path: Path, count: int) -> None:
    writer = LogWriter(path)
    for i in range(count):
        writer.write("stdout" if i % 3 else "stderr", f"line {i}\n".encode())
    writer.close()


@pytest.mark.parametrize("count", [0, 1, 5, 3000])
@pytest.mark.parametrize("tail", [0, 1, 2, 100, 2999, 5000])
def test_tail_reads_only_the_end(tmp_path: Path, count: int, tail: int) -> None:
    write_lines(tmp_path / LOG_FILE, count)
    got = [e.data.decode() for e in logs(tmp_path, tail=tail)]
    want = [f"line {i}\n" for i in range(count)]
    assert got == (want[-tail:] if tail else [])


def test_tail_ignores_an_unfinished_line_and_reports_where_lines_end(tmp_path: Path) -> None:
    path = tmp_path / LOG_FILE
    write_lines(path, 3)
    size = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b'{"log":"half')  # a supervisor killed in the middle of a write
    fd = os.open(path, os.O_RDONLY)
    try:
        lines, end = tail_lines(fd, 2)
    finally:
        os.close(fd)
    assert end == size
    assert [parse_entry(line) for line in lines] == [
        LogEntry(b"line 1\n", "stdout", json.loads(lines[0])["time"]),
        LogEntry(b"line 2\n", "stdout", json.loads(lines[1])["time"]),
    ]
    # reading everything skips it as well; a garbled line in the middle is skipped too
    with open(path, "ab") as fh:
        fh.write(b"\n" + encode_entries("stdout", b"after\n", 0))
    assert [e.data for e in logs(tmp_path)] == [b"line 0\n", b"line 1\n", b"line 2\n", b"after\n"]


def test_no_log_is_no_output(tmp_path: Path) -> None:
    assert list(logs(tmp_path)) == []
    assert list(logs(tmp_path, tail=3)) == []
    assert list(logs(tmp_path, follow=True, alive=lambda: False)) == []


def test_follow_reads_what_is_appended_until_the_writer_is_gone(tmp_path: Path) -> None:
    running = threading.Event()
    running.set()

    def write() -> None:
        time.sleep(0.1)  # the log does not exist yet when following starts
        writer = LogWriter(tmp_path / LOG_FILE)
        for i in range(20):
            writer.write("stdout", f"{i}\n".encode())
            if i % 5 == 0:
                writer.write("stderr", b"partial ")  # no newline: written at once
            time.sleep(0.01)
        writer.close()
        running.clear()

    thread = threading.Thread(target=write)
    thread.start()
    got = list(logs(tmp_path, follow=True, alive=running.is_set))
    thread.join()
    assert b"".join(e.data for e in got if e.stream == "stdout") == b"".join(
        f"{i}\n".encode() for i in range(20)
    )
    assert [e.data for e in got if e.stream == "stderr"] == [b"partial "] * 4


def test_follow_with_a_tail_starts_at_the_end(tmp_path: Path) -> None:
    write_lines(tmp_path / LOG_FILE, 10)
    calls = iter([True, True, False])

    def alive() -> bool:
        return next(calls, False)

    got = logs(tmp_path, follow=True, tail=1, alive=alive)
    assert next(got).data == b"line 9\n"
    writer = LogWriter(tmp_path / LOG_FILE)
    writer.write("stdout", b"late\n")
    writer.close()
    assert [e.data for e in got] == [b"late\n"]


def test_a_full_disk_loses_output_not_the_writer(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    writer = LogWriter(Path("/dev/full"))
    writer.write("stdout", b"lost\n")
    writer.write("stdout", b"")
    assert writer.dropped == 5
    writer.close()
    writer.write("stdout", b"after close\n")  # ignored
    assert writer.dropped == 5
