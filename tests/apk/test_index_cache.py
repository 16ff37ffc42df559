"""The parsed-index cache: hits, and every reason to miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpenglow.apk import index_cache
from alpenglow.apk.index import load_index_archive, parse_index, write_index_archive
from alpenglow.apk.index_cache import (
    default_directory,
    load_closures,
    load_index_cached,
    save_closures,
    universe_key,
)
from alpenglow.apk.pool import bucket_of
from alpenglow.apk.signing import Keyring, Signer, generate_keypair
from alpenglow.apk.solver import Closure
from alpenglow.errors import SignatureError

KEY = "test-65000000.rsa.pub"
TEXT = (
    "C:Q1hdUpqRv5mYgJEqW52UmVsvmy3DI=\nP:hello\nV:1.0-r0\nA:x86_64\nS:10\nI:20\nT:hi\nU:\nL:MIT\n"
    "k:5\nD:so:libc.musl-x86_64.so.1 /bin/sh !old cmd:x>=2\np:cmd:hello=1.0-r0 hi\n\n"
    "C:Q1zzUpqRv5mYgJEqW52UmVsvmy3DI=\nP:hello-doc\nV:1.0-r0\nS:1\nI:2\nT:\nU:\nL:\n"
    "i:docs hello=1.0-r0\nZ:future\n\n"
)


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    return generate_keypair(2048)


def signed(private: bytes, text: str = TEXT, name: str = KEY) -> bytes:
    return write_index_archive(parse_index(text), "test repo", Signer(name, private))


def keyring(public: bytes, name: str = KEY) -> Keyring:
    return Keyring({name: public})


def test_hit_gives_the_same_archive(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    private, public = keypair
    blob = signed(private)
    keys = keyring(public)
    expected = load_index_archive(blob, keys, source="r")
    first = load_index_cached(blob, keys, source="r", directory=tmp_path)
    assert not first.hit
    assert len(list(tmp_path.iterdir())) == 1
    second = load_index_cached(blob, keys, source="r", directory=tmp_path)
    assert second.hit
    for loaded in (first, second):
        assert loaded.archive == expected
        assert loaded.names == first.names
        assert loaded.buckets == tuple(bucket_of(n) for n in loaded.names)
    assert "so:libc.musl-x86_64.so.1" in second.names
    assert second.names[:2] == ("hello", "so:libc.musl-x86_64.so.1")
    pkg = second.archive.packages[0]
    assert type(pkg.depends[0]).__name__ == "Dependency"
    assert [str(d) for d in pkg.depends] == [
        "so:libc.musl-x86_64.so.1",
        "/bin/sh",
        "!old",
        "cmd:x>=2",
    ]
    assert pkg.provider_priority == 5
    assert second.archive.packages[1].extra == (("Z", "future"),)


def test_real_index_round_trip(tmp_path: Path, shared_dir: Path) -> None:
    data_dir = shared_dir / "data" / "alpine-v3.16-main-x86_64"
    blob = (data_dir / "APKINDEX.tar.gz").read_bytes()
    keys = Keyring.from_directory(data_dir)
    first = load_index_cached(blob, keys, source="main", directory=tmp_path)
    second = load_index_cached(blob, keys, source="main", directory=tmp_path)
    assert second.hit
    assert second.archive == first.archive
    assert len(second.archive.packages) == 4929


def test_damaged_columns_part_still_gives_the_packages(tmp_path: Path, shared_dir: Path) -> None:
    """The packages are stored twice: one record each (what a solve decodes) and all of
    them in columns (read when a run needs most of them). Damage to the second part only
    costs speed."""
    data_dir = shared_dir / "data" / "alpine-v3.16-main-x86_64"
    blob = (data_dir / "APKINDEX.tar.gz").read_bytes()
    keys = Keyring.from_directory(data_dir)
    expected = load_index_cached(blob, keys, source="main", directory=tmp_path).archive
    (entry,) = tmp_path.iterdir()
    raw = bytearray(entry.read_bytes())
    size = int.from_bytes(raw[-8:], "little")
    raw[len(raw) - 8 - size + 100] ^= 0xFF
    entry.write_bytes(bytes(raw))
    loaded = load_index_cached(blob, keys, source="main", directory=tmp_path)
    assert loaded.hit
    assert loaded.archive == expected


def test_changed_index_is_a_miss(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    private, public = keypair
    keys = keyring(public)
    load_index_cached(signed(private), keys, source="r", directory=tmp_path)
    other = signed(private, TEXT.replace("V:1.0-r0\nA:", "V:1.1-r0\nA:"))
    loaded = load_index_cached(other, keys, source="r", directory=tmp_path)
    assert not loaded.hit
    assert loaded.archive.packages[0].version == "1.1-r0"


def test_changed_or_missing_key_is_a_miss(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    private, public = keypair
    blob = signed(private)
    load_index_cached(blob, keyring(public), source="r", directory=tmp_path)
    # the key is gone: the index is untrusted again, exactly as without a cache
    with pytest.raises(SignatureError, match="not in"):
        load_index_cached(blob, Keyring(), source="r", directory=tmp_path)
    # a different key under the same name: verified again, and it does not verify
    _, stranger = generate_keypair(2048)
    with pytest.raises(SignatureError, match="BAD signature"):
        load_index_cached(blob, keyring(stranger), source="r", directory=tmp_path)
    # untrusted but allowed is remembered as such, and needs --allow-untrusted again
    accepted = load_index_cached(
        blob, Keyring(), source="r", allow_untrusted=True, directory=tmp_path
    )
    assert not accepted.hit
    assert accepted.archive.key_name is None
    again = load_index_cached(blob, Keyring(), source="r", allow_untrusted=True, directory=tmp_path)
    assert again.hit
    with pytest.raises(SignatureError):
        load_index_cached(blob, Keyring(), source="r", directory=tmp_path)
    # and once the key is back, the (still cached) bytes are checked with it
    assert not load_index_cached(blob, keyring(public), source="r", directory=tmp_path).hit


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[: len(blob) // 2],
        lambda blob: b"",
        lambda blob: b"\x00" * 64,
        lambda blob: blob[:100] + b"\xff" * 50 + blob[150:],
        # one letter of a version changed: still a well-formed entry, but not the one written
        lambda blob: blob.replace(b"1.0-r0", b"1.1-r0", 1),
    ],
)
def test_damaged_entry_is_ignored_and_rewritten(
    tmp_path: Path, keypair: tuple[bytes, bytes], damage: object
) -> None:
    private, public = keypair
    blob = signed(private)
    keys = keyring(public)
    load_index_cached(blob, keys, source="r", directory=tmp_path)
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(damage(entry.read_bytes()))  # type: ignore[operator]
    loaded = load_index_cached(blob, keys, source="r", directory=tmp_path)
    assert not loaded.hit
    assert loaded.archive == load_index_archive(blob, keys, source="r")
    assert load_index_cached(blob, keys, source="r", directory=tmp_path).hit


def test_entry_others_could_change_is_ignored(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    private, public = keypair
    blob = signed(private)
    keys = keyring(public)
    load_index_cached(blob, keys, source="r", directory=tmp_path)
    (entry,) = tmp_path.iterdir()
    entry.chmod(0o666)
    assert not load_index_cached(blob, keys, source="r", directory=tmp_path).hit
    # rewritten privately, and used again
    assert load_index_cached(blob, keys, source="r", directory=tmp_path).hit


def test_unwritable_directory_is_no_cache(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    private, public = keypair
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    loaded = load_index_cached(signed(private), keyring(public), source="r", directory=blocker)
    assert not loaded.hit
    assert len(loaded.archive.packages) == 2


def test_old_entries_are_pruned(
    tmp_path: Path, keypair: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_cache, "MAX_ENTRIES", 2)
    private, public = keypair
    for i in range(4):
        text = TEXT.replace("S:10", f"S:{10 + i}")
        load_index_cached(signed(private, text), keyring(public), source="r", directory=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_entries_of_another_layout_version_are_removed(
    tmp_path: Path, keypair: tuple[bytes, bytes]
) -> None:
    private, public = keypair
    stale = tmp_path / ("0" * 64 + f".v{index_cache.FORMAT - 1}.idx")
    stale.write_bytes(b"an entry of an older layout")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("kept")
    load_index_cached(signed(private), keyring(public), source="r", directory=tmp_path)
    assert not stale.exists()
    assert unrelated.exists()
    assert len(list(tmp_path.glob(f"*.v{index_cache.FORMAT}.idx"))) == 1


def test_default_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_directory() == str(tmp_path / "alpenglow" / "indexes")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_directory() == str(tmp_path / ".cache" / "alpenglow" / "indexes")


# -- discovery closures --------------------------------------------------------------------

CLOSURES = {
    "a": Closure(("b", "so:libb.so.1", "a"), b"\x01\x00\x01"),
    "x": Closure(("x",), b"\x00"),
}


def test_closures_round_trip(tmp_path: Path) -> None:
    key = universe_key(["repo", "https://example/main", "ab" * 32])
    assert load_closures(tmp_path, key) == {}
    save_closures(tmp_path, key, CLOSURES)
    assert load_closures(tmp_path, key) == CLOSURES
    # another universe knows nothing
    other = universe_key(["repo", "https://example/main", "cd" * 32])
    assert other != key
    assert load_closures(tmp_path, other) == {}
    assert load_closures(None, key) == {}
    # an input given whole (an installed database) counts by its content
    assert universe_key(["installed", b"P:a\n"]) == universe_key(["installed", b"P:a\n"])
    assert universe_key(["installed", b"P:a\n"]) != universe_key(["installed", b"P:b\n"])


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[:-1],
        lambda blob: b"",
        lambda blob: blob.replace(b"libb", b"libc"),  # well-formed, but not what was written
    ],
)
def test_damaged_closures_are_no_cache(tmp_path: Path, damage: object) -> None:
    key = universe_key(["x"])
    save_closures(tmp_path, key, CLOSURES)
    (path,) = tmp_path.glob("*.closures")
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    assert load_closures(tmp_path, key) == {}


def test_closures_others_could_change_are_no_cache(tmp_path: Path) -> None:
    key = universe_key(["x"])
    save_closures(tmp_path, key, CLOSURES)
    (path,) = tmp_path.glob("*.closures")
    path.chmod(0o666)
    assert load_closures(tmp_path, key) == {}


def test_closure_files_are_pruned_apart_from_entries(
    tmp_path: Path, keypair: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_cache, "MAX_ENTRIES", 2)
    private, public = keypair
    load_index_cached(signed(private), keyring(public), source="r", directory=tmp_path)
    for i in range(4):
        save_closures(tmp_path, universe_key([i]), CLOSURES)
    assert len(list(tmp_path.glob("*.closures"))) == 2
    assert len(list(tmp_path.glob("*.idx"))) == 1
