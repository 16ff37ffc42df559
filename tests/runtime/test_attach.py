"""The attach protocol's pure parts: frames, detach keys, the detach matcher."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alpenglow.errors import UsageError
from alpenglow.runtime import attach
from alpenglow.runtime.attach import (
    EXIT,
    MAX_FRAME,
    STDERR,
    STDOUT,
    DetachMatcher,
    FrameReader,
    decode_signal,
    decode_size,
    encode,
    encode_size,
    parse_detach_keys,
)


def test_exports() -> None:
    assert set(attach.__all__) == {
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
    }
    assert sorted(dir(attach)) == sorted(attach.__all__)


def test_frame_layout() -> None:
    assert encode(STDERR, b"x") == b"e\x00\x00\x00\x01x"
    assert encode(EXIT) == b"x\x00\x00\x00\x00"
    assert encode_size(24, 80) == b"r\x00\x00\x00\x04\x00\x18\x00\x50"
    assert decode_size(b"\x00\x18\x00\x50") == (24, 80)
    assert encode_size(70000, 5)[5:] == b"\xff\xff\x00\x05"  # clamped, never wraps
    assert decode_signal((15).to_bytes(4, "big")) == 15


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x00\x00\x00", b"\x00" * 5])
def test_bad_resize_and_signal_payloads(payload: bytes) -> None:
    with pytest.raises(ValueError, match="bad resize"):
        decode_size(payload)
    with pytest.raises(ValueError, match="bad signal"):
        decode_signal(payload)


def test_an_oversized_frame_is_refused_before_it_is_buffered() -> None:
    reader = FrameReader()
    with pytest.raises(ValueError, match="frame of"):
        reader.feed(bytes([STDOUT]) + (MAX_FRAME + 1).to_bytes(4, "big"))
    reader = FrameReader()
    assert reader.feed(bytes([STDOUT]) + MAX_FRAME.to_bytes(4, "big") + b"a") == []
    assert reader.pending == 6


frames = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=300)), max_size=8)


@given(frames, st.lists(st.integers(0, 3000), max_size=10))
def test_frames_survive_any_cutting(items: list[tuple[int, bytes]], cuts: list[int]) -> None:
    stream = b"".join(encode(kind, payload) for kind, payload in items)
    reader = FrameReader()
    got: list[tuple[int, bytes]] = []
    start = 0
    for cut in sorted(c for c in cuts if c <= len(stream)):
        got += reader.feed(stream[start:cut])
        start = cut
    got += reader.feed(stream[start:])
    assert got == items
    assert reader.pending == 0


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("ctrl-p,ctrl-q", b"\x10\x11"),
        ("CTRL-P,Ctrl-Q", b"\x10\x11"),
        ("ctrl-a", b"\x01"),
        ("ctrl-z,ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", b"\x1a\x00\x1b\x1c\x1d\x1e\x1f"),
        ("a,b", b"ab"),
        (" x , y ", b"xy"),
        ("", b""),
    ],
)
def test_detach_keys(text: str, keys: bytes) -> None:
    assert parse_detach_keys(text) == keys


@pytest.mark.parametrize("text", ["ctrl-", "ctrl-1", "ab", "ctrl-pp", "alt-x", ",", "ctrl-p,,x"])
def test_bad_detach_keys(text: str) -> None:
    with pytest.raises(UsageError, match="invalid detach key"):
        parse_detach_keys(text)


@pytest.mark.parametrize(
    ("keys", "chunks", "sent", "detached"),
    [
        (b"\x10\x11", [b"ls\r"], b"ls\r", False),
        (b"\x10\x11", [b"ab\x10\x11cd"], b"ab", True),
        (b"\x10\x11", [b"ab\x10", b"\x11cd"], b"ab", True),
        (b"\x10\x11", [b"\x10x"], b"\x10x", False),
        (b"\x10\x11", [b"\x10", b"\x10", b"\x11"], b"\x10", True),
        (b"\x10\x11", [b"\x10\x10\x10"], b"\x10\x10", False),  # one still held back
        (b"\x11", [b"a\x11b"], b"a", True),
        (b"", [b"\x10\x11"], b"\x10\x11", False),
        (b"aab", [b"aaab"], b"aaab", False),  # Docker's matcher: no backtracking
    ],
)
def test_detach_matcher(keys: bytes, chunks: list[bytes], sent: bytes, detached: bool) -> None:
    matcher = DetachMatcher(keys)
    out = b""
    done = False
    for chunk in chunks:
        forward, done = matcher.feed(chunk)
        out += forward
        if done:
            break
    assert (out, done) == (sent, detached)


@given(
    st.lists(st.integers(0, 255), min_size=1, max_size=3, unique=True).map(bytes),
    st.binary(max_size=60),
    st.lists(st.integers(0, 60), max_size=6),
)
def test_detach_matcher_finds_the_first_occurrence(
    keys: bytes, data: bytes, cuts: list[int]
) -> None:
    """With keys of distinct bytes: everything before the first occurrence of the
    sequence is passed on, whatever the chunking, and detaching happens there; without
    an occurrence everything is passed on except a held-back prefix of the keys."""
    matcher = DetachMatcher(keys)
    out = b""
    detached = False
    start = 0
    for end in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
        forward, detached = matcher.feed(data[start:end])
        out += forward
        start = end
        if detached:
            break
    where = data.find(keys)
    if where >= 0:
        assert (out, detached) == (data[:where], True)
    else:
        assert not detached
        held = len(data) - len(out)
        assert out == data[: len(out)]
        assert data[len(out) :] == keys[:held]
