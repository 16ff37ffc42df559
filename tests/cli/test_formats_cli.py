"""keygen, pkg create, apk verify and apk index through the real console script."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from alpenglow.apk.archive import split_gzip
from alpenglow.apk.index import load_index_archive
from alpenglow.apk.package import read_package
from alpenglow.apk.signing import Keyring, generate_keypair
from tests.cli.conftest import Run

KEY = "builder-65000000.rsa"


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    return generate_keypair(2048)


@pytest.fixture
def setup(tmp_path: Path, keypair: tuple[bytes, bytes]) -> Path:
    """tmp_path with keys/KEY(.pub), root/etc/apk/keys/KEY.pub and a tree to package."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / KEY).write_bytes(keypair[0])
    (tmp_path / "keys" / (KEY + ".pub")).write_bytes(keypair[1])
    keys_dir = tmp_path / "root" / "etc" / "apk" / "keys"
    keys_dir.mkdir(parents=True)
    (keys_dir / (KEY + ".pub")).write_bytes(keypair[1])
    tree = tmp_path / "tree" / "usr" / "bin"
    tree.mkdir(parents=True)
    (tree / "hello").write_text("#!/bin/sh\necho hello\n")
    (tree / "hello").chmod(0o755)
    return tmp_path


def _create(run_cli: Run, base: Path, name: str, version: str, *extra: str) -> Path:
    out = base / f"{name}-{version}.apk"
    result = run_cli(
        "pkg",
        "create",
        str(base / "tree"),
        "--name",
        name,
        "--version",
        version,
        "--arch",
        "x86_64",
        "--sign-key",
        str(base / "keys" / KEY),
        "-o",
        str(out),
        *extra,
        env={"SOURCE_DATE_EPOCH": "1700000000"},
    )
    assert result.returncode == 0, result.stderr
    return out


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr


def test_keygen_with_prefix(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("keygen", str(tmp_path / "me"), "--bits", "2048")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    private = Path(lines[0].split(": ", 1)[1].strip())
    public = Path(lines[1].split(": ", 1)[1].strip())
    assert private.name.startswith("me-")
    assert private.name.endswith(".rsa")
    assert public.name == private.name + ".pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_keygen_default_prefix(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("keygen", "--bits", "2048", env={"HOME": str(tmp_path), "USER": "tester"})
    assert result.returncode == 0, result.stderr
    written = sorted((tmp_path / ".config" / "alpenglow" / "keys").iterdir())
    assert [p.suffix for p in written] == [".rsa", ".pub"]
    assert str(written[0]) in result.stdout


def test_pkg_create_then_verify(run_cli: Run, setup: Path) -> None:
    apk = _create(run_cli, setup, "hello", "1.0-r0", "-D", "busybox", "--description", "hi")
    read = read_package(apk.read_bytes(), Keyring.from_directory(setup / "keys"), source=str(apk))
    assert read.package.name == "hello"
    assert read.package.build_time == 1_700_000_000
    assert [str(d) for d in read.package.depends] == ["busybox"]
    assert read.key_name == KEY + ".pub"
    result = run_cli("apk", "--root", str(setup / "root"), "verify", str(apk))
    assert (result.returncode, result.stdout) == (0, f"{apk}: OK\n")


def test_pkg_create_is_reproducible(run_cli: Run, setup: Path) -> None:
    first = _create(run_cli, setup, "hello", "1.0-r0").read_bytes()
    second = _create(run_cli, setup, "hello", "1.0-r0").read_bytes()
    assert first == second


def test_pkg_create_bad_version(run_cli: Run, setup: Path) -> None:
    result = run_cli(
        "pkg", "create", str(setup / "tree"), "--name", "x", "--version", "1.0-bad",
        "--arch", "x86_64", "-o", str(setup / "x.apk"),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("ERROR: --version: '1.0-bad' is not a valid apk version")
    _no_traceback(result.stderr)
    assert not (setup / "x.apk").exists()


def test_pkg_create_bad_dependency(run_cli: Run, setup: Path) -> None:
    result = run_cli(
        "pkg", "create", str(setup / "tree"), "--name", "x", "--version", "1.0",
        "--arch", "x86_64", "-D", "foo>=1.0_bad", "-o", str(setup / "x.apk"),
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("ERROR: invalid version '1.0_bad' in dependency")
    _no_traceback(result.stderr)


def test_verify_untrusted_tampered_and_missing(run_cli: Run, setup: Path) -> None:
    good = _create(run_cli, setup, "hello", "1.0-r0")
    tampered = setup / "tampered.apk"
    blob = bytearray(good.read_bytes())
    blob[split_gzip(bytes(blob))[2].start + 9] ^= 1
    tampered.write_bytes(bytes(blob))
    missing = setup / "missing.apk"
    root = str(setup / "root")
    result = run_cli("apk", "--root", root, "verify", str(good), str(tampered), str(missing))
    assert result.returncode == 2  # two files failed
    assert result.stdout.splitlines() == [
        f"{good}: OK",
        f"{tampered}: BAD datahash: the data member does not match",
        f"{missing}: No such file or directory",
    ]
    _no_traceback(result.stderr)
    quiet = run_cli("apk", "-q", "--root", root, "verify", str(good), str(tampered))
    assert (quiet.returncode, quiet.stdout) == (1, f"{tampered}\n")
    untrusted = run_cli("apk", "--root", str(setup / "nowhere"), "verify", str(good))
    assert untrusted.returncode == 1
    assert untrusted.stdout.startswith(f"{good}: signed by {KEY}.pub, which is not in ")
    allowed = run_cli(
        "apk", "--root", str(setup / "nowhere"), "--allow-untrusted", "verify", str(good)
    )
    assert (allowed.returncode, allowed.stdout) == (0, f"{good}: OK\n")


def test_verify_garbage(run_cli: Run, setup: Path) -> None:
    junk = setup / "junk.apk"
    junk.write_text("<html>not found</html>")
    result = run_cli("apk", "verify", str(junk))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{junk}: not gzip data at byte 0")


def test_index_from_packages(run_cli: Run, setup: Path) -> None:
    b = _create(run_cli, setup, "bbb", "2.0-r0", "-D", "aaa", "-D", "so:libmissing.so.1")
    a1 = _create(run_cli, setup, "aaa", "1.0-r0")
    out = setup / "APKINDEX.tar.gz"
    result = run_cli(
        "apk", "--root", str(setup / "root"), "index", "-o", str(out),
        "-d", "test repo", str(b), str(a1),
        env={"SOURCE_DATE_EPOCH": "1700000000"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Index has 2 packages (of which 2 are new)\n"
    assert result.stderr == (
        "WARNING: No provider for the dependencies:\n"
        "  so:libmissing.so.1\n"
        "WARNING: Total of 1 unsatisfiable package names. Your repository may be broken.\n"
    )
    index = load_index_archive(out.read_bytes(), None, source="x", allow_untrusted=True)
    assert index.description == "test repo"
    assert index.key_name is None
    assert [str(p) for p in index.packages] == ["aaa-1.0-r0", "bbb-2.0-r0"]
    assert index.packages[0].size == a1.stat().st_size
    assert (
        index.packages[0].checksum
        == read_package(a1.read_bytes(), None, source="a", allow_untrusted=True).identity
    )


def test_index_signed_reused_and_rewritten_arch(run_cli: Run, setup: Path) -> None:
    a1 = _create(run_cli, setup, "aaa", "1.0-r0")
    old = setup / "old.tar.gz"
    first = run_cli("apk", "--root", str(setup / "root"), "index", "-o", str(old), str(a1))
    assert first.returncode == 0, first.stderr
    out = setup / "APKINDEX.tar.gz"
    result = run_cli(
        "apk", "--root", str(setup / "root"), "index", "-x", str(old), "-o", str(out),
        "--rewrite-arch", "noarch", "--sign-key", str(setup / "keys" / KEY), str(a1),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Index has 1 packages (of which 0 are new)\n"
    index = load_index_archive(out.read_bytes(), Keyring.from_directory(setup / "keys"), source="x")
    assert index.key_name == KEY + ".pub"
    assert index.packages[0].arch == "noarch"


def test_index_with_a_bad_package_writes_nothing(run_cli: Run, setup: Path) -> None:
    good = _create(run_cli, setup, "aaa", "1.0-r0")
    bad = setup / "bad.apk"
    bad.write_bytes(good.read_bytes()[:-20])
    out = setup / "APKINDEX.tar.gz"
    result = run_cli(
        "apk", "--root", str(setup / "root"), "index", "-o", str(out), str(good), str(bad)
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"ERROR: {bad}: truncated gzip data")
    assert len(result.stderr.splitlines()) == 1
    _no_traceback(result.stderr)
    assert not out.exists()


def test_index_untrusted_package(run_cli: Run, setup: Path) -> None:
    good = _create(run_cli, setup, "aaa", "1.0-r0")
    out = setup / "APKINDEX.tar.gz"
    nowhere = str(setup / "nowhere")
    result = run_cli("apk", "--root", nowhere, "index", "-o", str(out), str(good))
    assert result.returncode == 1
    assert "which is not in" in result.stderr
    allowed = run_cli(
        "apk", "--root", nowhere, "--allow-untrusted", "index", "-o", str(out), str(good)
    )
    assert allowed.returncode == 0, allowed.stderr
    assert out.exists()


def test_verify_accepts_signed_index_and_refuses_tampered_one(run_cli: Run, setup: Path) -> None:
    a1 = _create(run_cli, setup, "aaa", "1.0-r0")
    out = setup / "APKINDEX.tar.gz"
    made = run_cli(
        "apk", "--root", str(setup / "root"), "index", "-o", str(out),
        "--sign-key", str(setup / "keys" / KEY), str(a1),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    ok = run_cli("apk", "--root", str(setup / "root"), "verify", str(out), str(a1))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == f"{out}: OK\n{a1}: OK\n"
    data = bytearray(out.read_bytes())
    data[-30] ^= 0xFF
    bad = setup / "bad-APKINDEX.tar.gz"
    bad.write_bytes(bytes(data))
    result = run_cli("apk", "--root", str(setup / "root"), "verify", str(bad))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{bad}: ")
    assert result.stdout.count("\n") == 1
    _no_traceback(result.stderr)


def test_info_file_shows_metadata(run_cli: Run, setup: Path) -> None:
    apk = _create(
        run_cli, setup, "hello", "1.0-r0", "-D", "so:libc.musl-x86_64.so.1",
        "--description", "says hello", "--license", "MIT",
    )  # fmt: skip
    root = str(setup / "root")
    result = run_cli("apk", "--root", root, "info", "--file", str(apk), "-d", "-R", "-L")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "hello-1.0-r0 description:\nsays hello\n\n"
        "hello-1.0-r0 depends on:\nso:libc.musl-x86_64.so.1\n\n"
        "hello-1.0-r0 contains:\nusr/bin/hello\n\n"
    )
    default = run_cli("apk", "--root", root, "info", "--file", str(apk))
    assert default.stdout.startswith("hello-1.0-r0 description:\nsays hello\n\n")
    assert "hello-1.0-r0 installed size:\n" in default.stdout


def test_info_file_refuses_untrusted_and_garbage(run_cli: Run, setup: Path) -> None:
    apk = _create(run_cli, setup, "hello", "1.0-r0")
    untrusted = run_cli("apk", "--root", str(setup), "info", "--file", str(apk))
    assert untrusted.returncode == 1
    assert untrusted.stderr.startswith(f"ERROR: {apk}: ")
    assert untrusted.stderr.count("\n") == 1
    garbage = setup / "garbage.apk"
    garbage.write_bytes(b"not a package")
    result = run_cli("apk", "--allow-untrusted", "info", "--file", str(garbage))
    assert result.returncode == 1
    assert result.stderr.startswith(f"ERROR: {garbage}: ")
    _no_traceback(result.stderr)
