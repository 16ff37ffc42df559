"""``apk verify FILE...``: check packages' signatures and checksums, like apk-tools 3.

Signed indexes (``APKINDEX.tar.gz``) are recognised by their content and verified too: the
signature over the index member must be by a trusted key and the index must parse.

Each file is read completely: the signature must be by a trusted key (``--keys-dir``, or
ROOT/etc/apk/keys and ROOT/lib/apk/keys; ``--allow-untrusted`` waives this), and the
datahash and every file's checksum must match. Prints ``FILE: OK`` or ``FILE: <problem>``
(with ``-q`` only the names of the files that fail); the exit status is the number of
files that failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alpenglow.apk.signing import Keyring
from alpenglow.cli.apk import ApkContext, Applet
from alpenglow.errors import AlpenglowError

if TYPE_CHECKING:
    import argparse

__all__ = ["APPLET", "trusted_keys"]


def trusted_keys(ctx: ApkContext) -> Keyring:
    """The keys an apk applet trusts: ``--keys-dir`` (under ROOT), else ROOT/etc/apk/keys
    and ROOT/lib/apk/keys."""
    root = Path(getattr(ctx.opts, "root", "/") or "/")
    keys_dir = getattr(ctx.opts, "keys_dir", None)
    if keys_dir:
        return Keyring.from_directory(root / keys_dir)
    return Keyring.from_directory(root / "etc/apk/keys", root / "lib/apk/keys")


def _verbosity(ctx: ApkContext) -> int:
    verbose = int(getattr(ctx.opts, "verbose", 0) or 0)
    quiet = int(getattr(ctx.opts, "quiet", 0) or 0)
    return max(0, 1 + verbose - quiet)


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="package files to verify")


def _is_index(data: bytes) -> bool:
    """Whether ``data`` is an APKINDEX.tar.gz: an index member holding DESCRIPTION/APKINDEX,
    optionally after a signature member."""
    from alpenglow.apk.archive import iter_tar, split_gzip

    try:
        members = split_gzip(data, max_members=2)
        first = next(iter_tar(members[-1].payload), None)
    except AlpenglowError:
        return False
    return first is not None and first.path in ("DESCRIPTION", "APKINDEX")


def _problem(path: str, keys: Keyring, allow_untrusted: bool) -> str | None:
    """None when ``path`` verifies, else the problem (starting with ``path: ``)."""
    from alpenglow.apk.index import load_index_archive
    from alpenglow.apk.package import read_package

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    try:
        if _is_index(data):
            load_index_archive(data, keys, source=path, allow_untrusted=allow_untrusted)
            return None
        apk = read_package(data, keys, source=path, allow_untrusted=allow_untrusted)
        for _ in apk.entries(verify=True):
            pass
    except AlpenglowError as exc:
        return exc.message
    return None


def _run(ctx: ApkContext) -> int:
    keys = trusted_keys(ctx)
    verbosity = _verbosity(ctx)
    failed = 0
    for path in ctx.opts.files:
        problem = _problem(path, keys, bool(ctx.opts.allow_untrusted))
        if problem is not None:
            failed += 1
        if verbosity >= 1:
            ctx.out(problem if problem is not None else f"{path}: OK")
        elif problem is not None:
            ctx.out(path)
    ctx.stdout.flush()
    return min(failed, 255)


APPLET = Applet(
    name="verify",
    summary="Verify package integrity and signature",
    configure=_configure,
    run=_run,
)
