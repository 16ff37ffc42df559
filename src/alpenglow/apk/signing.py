"""Trust: abuild-style RSA keys, signatures over bytes, and the keys a root trusts.

apk v2 signatures are tar entries named ``.SIGN.<ALG>.<keyname>`` whose content is an RSA
PKCS#1 v1.5 signature (``RSA`` = SHA-1, ``RSA256`` = SHA-256, ``RSA512`` = SHA-512; legacy
``DSA`` = DSA over SHA-1). ``<keyname>`` is the file name of the public key in the verifier's
keys directory. The checks here are pure functions on bytes; only
:meth:`Keyring.from_directory`, :meth:`Signer.from_file` and :func:`write_keypair` touch the
disk. ``cryptography`` is imported inside the functions that need it (it costs tens of
milliseconds to import).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache

from alpenglow._record import field, record
from alpenglow._typing import TYPE_CHECKING
from alpenglow.errors import SignatureError

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

__all__ = [
    "ALGORITHMS",
    "MAX_SIGNATURE_SIZE",
    "Keyring",
    "Signer",
    "generate_keypair",
    "parse_signature_name",
    "public_key_pem",
    "sign",
    "signature_name",
    "verify",
    "verify_signatures",
    "write_keypair",
]


def __dir__() -> list[str]:
    return __all__


ALGORITHMS: Mapping[str, str] = {
    "RSA": "sha1",
    "RSA256": "sha256",
    "RSA512": "sha512",
    "DSA": "sha1",
}
"""Signature entry algorithm -> hash."""

MAX_SIGNATURE_SIZE = 64 * 1024
"""Signature entries larger than this are ignored, as apk does."""

_PREFIX = ".SIGN."


def parse_signature_name(name: str) -> tuple[str, str] | None:
    """Split ``.SIGN.<ALG>.<keyname>`` into ``(ALG, keyname)``; None if not a signature name.

    >>> parse_signature_name(".SIGN.RSA256.me-6165ee59.rsa.pub")
    ('RSA256', 'me-6165ee59.rsa.pub')
    """
    if not name.startswith(_PREFIX):
        return None
    algorithm, dot, key_name = name[len(_PREFIX) :].partition(".")
    if not dot or not algorithm or not key_name:
        return None
    return algorithm, key_name


def signature_name(algorithm: str, key_name: str) -> str:
    """The tar entry name of a signature: ``.SIGN.<ALG>.<keyname>``."""
    return f"{_PREFIX}{algorithm}.{key_name}"


def _hash(algorithm: str) -> Any:
    from cryptography.hazmat.primitives import hashes

    name = ALGORITHMS[algorithm]
    if name == "sha256":
        return hashes.SHA256()
    if name == "sha512":
        return hashes.SHA512()
    return hashes.SHA1()


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        known = ", ".join(ALGORITHMS)
        raise SignatureError(f"unknown signature algorithm {algorithm!r} (known: {known})")


def verify(public_key: bytes, signature: bytes, data: bytes, algorithm: str = "RSA") -> bool:
    """Whether ``signature`` is ``algorithm``'s signature of ``data`` by the PEM
    ``public_key``. Raises :class:`SignatureError` for an unknown algorithm or a key that
    cannot be loaded or does not fit the algorithm."""
    _check_algorithm(algorithm)
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(public_key)
    except ValueError:
        raise SignatureError("the public key is not a PEM public key") from None
    try:
        if algorithm == "DSA":
            if not isinstance(key, dsa.DSAPublicKey):
                raise SignatureError("a DSA signature needs a DSA key")
            key.verify(signature, data, _hash(algorithm))
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                raise SignatureError(f"an {algorithm} signature needs an RSA key")
            key.verify(signature, data, padding.PKCS1v15(), _hash(algorithm))
    except InvalidSignature:
        return False
    return True


def sign(private_key: bytes, data: bytes, algorithm: str = "RSA") -> bytes:
    """Sign ``data`` with the PEM RSA ``private_key`` (PKCS#1 v1.5, ``algorithm``'s hash)."""
    _check_algorithm(algorithm)
    if algorithm == "DSA":
        raise SignatureError("signing with DSA is not supported; use RSA, RSA256 or RSA512")
    from cryptography.hazmat.primitives.asymmetric import padding

    signature: bytes = _private_key(private_key).sign(data, padding.PKCS1v15(), _hash(algorithm))
    return signature


@lru_cache(maxsize=8)
def _private_key(pem: bytes) -> Any:
    """The loaded RSA key of ``pem``. Loading checks the key, which takes tens of
    milliseconds; a build signs many packages and indexes with the same key."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise SignatureError("the private key is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SignatureError("the private key is not an RSA key")
    return key


@record
class Keyring:
    """Trusted public keys by file name (the name signatures refer to).

    ``location`` says where the keys came from, for messages (e.g. ``/etc/apk/keys``).
    """

    keys: Mapping[str, bytes] = field(default_factory=dict, hash=False)
    location: str = "the trusted keys"

    def __contains__(self, name: object) -> bool:
        return name in self.keys

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, name: str) -> bytes | None:
        return self.keys.get(name)

    @classmethod
    def from_directory(cls, *directories: str | os.PathLike[str]) -> Keyring:
        """Read every regular file in ``directories`` (earlier ones win); a missing
        directory contributes nothing."""
        keys: dict[str, bytes] = {}
        for directory in directories:
            path = os.fspath(directory)
            try:
                entries = sorted(os.scandir(path), key=lambda e: e.name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise SignatureError(f"{path}: cannot read keys directory ({exc})") from None
            for entry in entries:
                if entry.name in keys or not entry.is_file():
                    continue
                try:
                    with open(entry.path, "rb") as fh:
                        keys[entry.name] = fh.read()
                except OSError as exc:
                    raise SignatureError(f"{entry.path}: cannot read key ({exc})") from None
        return cls(keys, " ".join(str(d) for d in directories) or "the trusted keys")


def verify_signatures(
    entries: Sequence[tuple[str, bytes]],
    data: bytes,
    keys: Keyring,
    *,
    source: str,
) -> str:
    """Check the signature entries ``(entry name, signature bytes)`` over ``data``.

    As apk does, the first entry whose key is in ``keys`` decides; entries with an unknown
    algorithm or over 64 KiB are skipped. Returns the key name. Raises
    :class:`SignatureError` naming ``source`` when there is no signature, no entry names a
    trusted key, only unknown algorithms are used, or the signature is wrong.
    """
    unknown_algorithms: list[str] = []
    untrusted: list[str] = []
    for name, signature in entries:
        parsed = parse_signature_name(name)
        if parsed is None or len(signature) > MAX_SIGNATURE_SIZE:
            continue
        algorithm, key_name = parsed
        if algorithm not in ALGORITHMS:
            unknown_algorithms.append(algorithm)
            continue
        public = keys.get(key_name)
        if public is None:
            untrusted.append(key_name)
            continue
        try:
            good = verify(public, signature, data, algorithm)
        except SignatureError as exc:
            raise SignatureError(f"{source}: key {key_name}: {exc}") from None
        if not good:
            raise SignatureError(f"{source}: BAD signature (key {key_name})")
        return key_name
    if untrusted:
        raise SignatureError(
            f"{source}: signed by {untrusted[0]}, which is not in {keys.location}",
            hint="add the public key to the keys directory, or use --allow-untrusted",
        )
    if unknown_algorithms:
        raise SignatureError(
            f"{source}: unknown signature algorithm {unknown_algorithms[0]!r}",
            hint="known algorithms: " + ", ".join(ALGORITHMS),
        )
    raise SignatureError(
        f"{source}: UNTRUSTED: no signature", hint="use --allow-untrusted to accept it anyway"
    )


@record
class Signer:
    """A private key and the public key name that signatures made with it will carry."""

    key_name: str
    private_key: bytes = field(repr=False)
    algorithm: str = "RSA"

    @property
    def entry_name(self) -> str:
        """The signature tar entry name, ``.SIGN.<ALG>.<key_name>``."""
        return signature_name(self.algorithm, self.key_name)

    def sign(self, data: bytes) -> bytes:
        return sign(self.private_key, data, self.algorithm)

    @classmethod
    def from_file(
        cls, path: Path | str, *, key_name: str | None = None, algorithm: str = "RSA"
    ) -> Signer:
        """Load a PEM private key. The key name defaults to the file name plus ``.pub``
        (abuild's ``NAME.rsa`` / ``NAME.rsa.pub`` pair)."""
        _check_algorithm(algorithm)
        from pathlib import Path

        path = Path(path)
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise SignatureError(f"{path}: cannot read private key ({exc.strerror})") from None
        if b"PRIVATE KEY" not in pem:
            raise SignatureError(f"{path}: not a PEM private key")
        return cls(key_name or path.name + ".pub", pem, algorithm)


def generate_keypair(bits: int = 4096) -> tuple[bytes, bytes]:
    """A new RSA key pair: (PEM PKCS#8 private key, PEM SubjectPublicKeyInfo public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private, public_key_pem(private)


def public_key_pem(private_key: bytes) -> bytes:
    """The PEM SubjectPublicKeyInfo public key of a PEM private key."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError):
        raise SignatureError("the private key is not an unencrypted PEM private key") from None
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_keypair(
    prefix: Path | str, *, bits: int = 4096, now: float | None = None
) -> tuple[Path, Path]:
    """Create ``PREFIX-XXXXXXXX.rsa`` (mode 0600) and ``PREFIX-XXXXXXXX.rsa.pub``, where
    XXXXXXXX is the current Unix time in hex, as abuild-keygen names them.

    Refuses to overwrite existing files. Returns (private key path, public key path).
    """
    stamp = format(int(time.time() if now is None else now), "08x")
    from pathlib import Path

    base = Path(f"{prefix}-{stamp}")
    private_path = base.with_name(base.name + ".rsa")
    public_path = base.with_name(base.name + ".rsa.pub")
    for path in (private_path, public_path):
        if path.exists():
            raise SignatureError(f"{path}: already exists, not overwriting")
    private, public = generate_keypair(bits)
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True)
        _write_new(private_path, private, 0o600)
        _write_new(public_path, public, 0o644)
    except OSError as exc:
        raise SignatureError(f"{exc.filename}: cannot write key ({exc.strerror})") from None
    return private_path, public_path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
