"""Keys, signatures and trust: abuild naming, RSA/SHA variants, apk's entry selection."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from alpenglow.apk.archive import read_tar, split_gzip
from alpenglow.apk.signing import (
    Keyring,
    Signer,
    generate_keypair,
    parse_signature_name,
    public_key_pem,
    sign,
    signature_name,
    verify,
    verify_signatures,
    write_keypair,
)
from alpenglow.errors import SignatureError

ALPINE_KEY = "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    return generate_keypair(2048)


@pytest.fixture(scope="module")
def other_keypair() -> tuple[bytes, bytes]:
    return generate_keypair(2048)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (".SIGN.RSA.key.rsa.pub", ("RSA", "key.rsa.pub")),
        (".SIGN.RSA256.a@b.org-6165ee59.rsa.pub", ("RSA256", "a@b.org-6165ee59.rsa.pub")),
        (".SIGN.FOO.key", ("FOO", "key")),
        (".SIGN.RSA", None),
        (".SIGN..key", None),
        (".PKGINFO", None),
    ],
)
def test_parse_signature_name(name: str, expected: tuple[str, str] | None) -> None:
    assert parse_signature_name(name) == expected


def test_signature_name() -> None:
    assert signature_name("RSA512", "k.rsa.pub") == ".SIGN.RSA512.k.rsa.pub"


@pytest.mark.parametrize(("algorithm", "length"), [("RSA", 256), ("RSA256", 256), ("RSA512", 256)])
def test_sign_and_verify(keypair: tuple[bytes, bytes], algorithm: str, length: int) -> None:
    private, public = keypair
    signature = sign(private, b"the data", algorithm)
    assert len(signature) == length
    assert verify(public, signature, b"the data", algorithm)
    assert not verify(public, signature, b"the dat4", algorithm)
    other = "RSA256" if algorithm == "RSA" else "RSA"
    assert not verify(public, signature, b"the data", other)


def test_verify_with_wrong_key(
    keypair: tuple[bytes, bytes], other_keypair: tuple[bytes, bytes]
) -> None:
    signature = sign(keypair[0], b"data")
    assert not verify(other_keypair[1], signature, b"data")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize(("algorithm", "digest"), [("RSA", "-sha1"), ("RSA256", "-sha256")])
def test_signature_interoperates_with_openssl(
    tmp_path: Path, keypair: tuple[bytes, bytes], algorithm: str, digest: str
) -> None:
    private, public = keypair
    (tmp_path / "data").write_bytes(b"signed by alpenglow")
    (tmp_path / "sig").write_bytes(sign(private, b"signed by alpenglow", algorithm))
    (tmp_path / "key.pub").write_bytes(public)
    result = subprocess.run(
        ["openssl", "dgst", digest, "-verify", "key.pub", "-signature", "sig", "data"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Verified OK" in result.stdout


def test_verify_real_alpine_index_signature(shared_dir: Path) -> None:
    data_dir = shared_dir / "data" / "alpine-v3.16-main-x86_64"
    members = split_gzip((data_dir / "APKINDEX.tar.gz").read_bytes())
    (entry,) = read_tar(members[0].payload)
    assert entry.path == ".SIGN.RSA." + ALPINE_KEY
    public = (data_dir / ALPINE_KEY).read_bytes()
    assert verify(public, entry.data, members[1].compressed, "RSA")
    assert not verify(public, entry.data, members[1].compressed[:-1], "RSA")


def test_unknown_algorithm(keypair: tuple[bytes, bytes]) -> None:
    with pytest.raises(SignatureError, match="unknown signature algorithm 'FOO'"):
        verify(keypair[1], b"sig", b"data", "FOO")
    with pytest.raises(SignatureError, match="unknown signature algorithm"):
        sign(keypair[0], b"data", "RSA1024")


def test_dsa_signing_is_refused(keypair: tuple[bytes, bytes]) -> None:
    with pytest.raises(SignatureError, match="DSA is not supported"):
        sign(keypair[0], b"data", "DSA")


def test_bad_key_material(keypair: tuple[bytes, bytes]) -> None:
    with pytest.raises(SignatureError, match="not a PEM public key"):
        verify(b"garbage", b"sig", b"data")
    with pytest.raises(SignatureError, match="not an unencrypted PEM private key"):
        sign(b"garbage", b"data")
    with pytest.raises(SignatureError, match="needs a DSA key"):
        verify(keypair[1], b"sig", b"data", "DSA")


def test_public_key_pem(keypair: tuple[bytes, bytes]) -> None:
    private, public = keypair
    assert public_key_pem(private) == public
    assert public.startswith(b"-----BEGIN PUBLIC KEY-----")


# --------------------------------------------------------------------------------------------
# Keyring and verify_signatures


def test_keyring_from_directories(tmp_path: Path) -> None:
    first = tmp_path / "etc-apk-keys"
    second = tmp_path / "lib-apk-keys"
    first.mkdir()
    second.mkdir()
    (first / "a.rsa.pub").write_bytes(b"A1")
    (second / "a.rsa.pub").write_bytes(b"A2")
    (second / "b.rsa.pub").write_bytes(b"B")
    (first / "subdir").mkdir()
    keys = Keyring.from_directory(first, second, tmp_path / "missing")
    assert dict(keys.keys) == {"a.rsa.pub": b"A1", "b.rsa.pub": b"B"}
    assert "a.rsa.pub" in keys
    assert "subdir" not in keys
    assert len(keys) == 2
    assert str(first) in keys.location


def test_keyring_missing_directory_is_empty(tmp_path: Path) -> None:
    assert len(Keyring.from_directory(tmp_path / "nope")) == 0


def _entries(private: bytes, data: bytes, *names: str) -> list[tuple[str, bytes]]:
    out = []
    for name in names:
        parsed = parse_signature_name(name)
        algorithm = parsed[0] if parsed and parsed[0] in ("RSA", "RSA256", "RSA512") else "RSA"
        out.append((name, sign(private, data, algorithm)))
    return out


def test_verify_signatures_uses_first_trusted_entry(
    keypair: tuple[bytes, bytes], other_keypair: tuple[bytes, bytes]
) -> None:
    keys = Keyring({"mine.rsa.pub": keypair[1]}, "/etc/apk/keys")
    entries = [
        *_entries(other_keypair[0], b"data", ".SIGN.RSA.stranger.rsa.pub"),
        (".SIGN.FOO.mine.rsa.pub", b"whatever"),
        *_entries(keypair[0], b"data", ".SIGN.RSA256.mine.rsa.pub"),
    ]
    assert verify_signatures(entries, b"data", keys, source="x") == "mine.rsa.pub"


def test_verify_signatures_unknown_key(keypair: tuple[bytes, bytes]) -> None:
    keys = Keyring({}, "/etc/apk/keys")
    entries = _entries(keypair[0], b"data", ".SIGN.RSA.someone.rsa.pub")
    with pytest.raises(SignatureError) as info:
        verify_signatures(entries, b"data", keys, source="repo/APKINDEX.tar.gz")
    assert info.value.message == (
        "repo/APKINDEX.tar.gz: signed by someone.rsa.pub, which is not in /etc/apk/keys"
    )
    assert info.value.hint is not None


def test_verify_signatures_unknown_algorithm(keypair: tuple[bytes, bytes]) -> None:
    keys = Keyring({"k.rsa.pub": keypair[1]})
    with pytest.raises(SignatureError, match=r"x: unknown signature algorithm 'FOO'"):
        verify_signatures([(".SIGN.FOO.k.rsa.pub", b"sig")], b"data", keys, source="x")


def test_verify_signatures_bad_signature(keypair: tuple[bytes, bytes]) -> None:
    keys = Keyring({"k.rsa.pub": keypair[1]})
    entries = _entries(keypair[0], b"data", ".SIGN.RSA.k.rsa.pub")
    with pytest.raises(SignatureError, match=r"^x: BAD signature \(key k.rsa.pub\)$"):
        verify_signatures(entries, b"dat4", keys, source="x")


def test_verify_signatures_missing(keypair: tuple[bytes, bytes]) -> None:
    with pytest.raises(SignatureError, match="no signature"):
        verify_signatures([], b"data", Keyring({"k": keypair[1]}), source="x")


def test_verify_signatures_ignores_oversized_entries(keypair: tuple[bytes, bytes]) -> None:
    keys = Keyring({"k.rsa.pub": keypair[1]})
    with pytest.raises(SignatureError, match="no signature"):
        verify_signatures([(".SIGN.RSA.k.rsa.pub", bytes(70_000))], b"d", keys, source="x")


def test_verify_signatures_key_that_does_not_load() -> None:
    keys = Keyring({"k.rsa.pub": b"not a key"})
    with pytest.raises(SignatureError, match=r"x: key k\.rsa\.pub: the public key is not"):
        verify_signatures([(".SIGN.RSA.k.rsa.pub", b"sig")], b"d", keys, source="x")


# --------------------------------------------------------------------------------------------
# key files


def test_write_keypair_names_modes_and_formats(tmp_path: Path) -> None:
    private_path, public_path = write_keypair(tmp_path / "keys" / "me", bits=2048, now=0x6165EE59)
    assert private_path.name == "me-6165ee59.rsa"
    assert public_path.name == "me-6165ee59.rsa.pub"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert b"PRIVATE KEY-----" in private_path.read_bytes()
    assert not list(private_path.parent.glob(".*tmp*"))
    signer = Signer.from_file(private_path, algorithm="RSA256")
    assert signer.key_name == "me-6165ee59.rsa.pub"
    assert signer.entry_name == ".SIGN.RSA256.me-6165ee59.rsa.pub"
    keys = Keyring.from_directory(public_path.parent)
    assert verify_signatures(
        [(signer.entry_name, signer.sign(b"payload"))], b"payload", keys, source="x"
    ) == ("me-6165ee59.rsa.pub")


def test_write_keypair_refuses_to_overwrite(tmp_path: Path) -> None:
    write_keypair(tmp_path / "me", bits=2048, now=1)
    with pytest.raises(SignatureError, match="already exists"):
        write_keypair(tmp_path / "me", bits=2048, now=1)


def test_write_keypair_uses_the_current_time(tmp_path: Path) -> None:
    import time

    before = int(time.time())
    private_path, _ = write_keypair(tmp_path / "me", bits=2048)
    stamp = int(private_path.name.removeprefix("me-").removesuffix(".rsa"), 16)
    assert before <= stamp <= int(time.time())


def test_signer_from_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="cannot read private key"):
        Signer.from_file(tmp_path / "missing.rsa")
    (tmp_path / "pub.rsa.pub").write_text("-----BEGIN PUBLIC KEY-----\n")
    with pytest.raises(SignatureError, match="not a PEM private key"):
        Signer.from_file(tmp_path / "pub.rsa.pub")
