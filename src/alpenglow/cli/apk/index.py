"""``apk index -o APKINDEX.tar.gz PKG.apk...``: make a repository index, like apk-tools 3.

Every package is read and verified (trusted keys as for ``apk verify``, or
``--allow-untrusted``); with ``-x OLD`` a package whose ``NAME-VERSION.apk`` and size
match an entry of an older index (and is not newer than it) is taken from there unread.
Stanzas are sorted by name. ``--sign-key KEY.rsa`` (an alpenglow extension) signs the
result as ``abuild-sign`` would; without it the index is unsigned. Then, as apk does: a
warning listing dependency names nothing provides, and ``Index has N packages (of which M
are new)``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from alpenglow._record import replace
from alpenglow.apk.index import Package
from alpenglow.cli.apk import ApkContext, Applet
from alpenglow.errors import AlpenglowError

if TYPE_CHECKING:
    import argparse

__all__ = ["APPLET"]


def _configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("index options")
    g.add_argument("-o", "--output", metavar="FILE", help="write the index to FILE")
    g.add_argument("-d", "--description", metavar="TEXT", help="the index's DESCRIPTION")
    g.add_argument("-x", "--index", metavar="INDEX", help="reuse entries of an older index")
    g.add_argument("--rewrite-arch", metavar="ARCH", help="set every package's arch to ARCH")
    g.add_argument("--no-warnings", action="store_true", help="do not list missing providers")
    g.add_argument(
        "--sign-key", metavar="KEY", help="sign the index with this private key (KEY.rsa)"
    )
    g.add_argument(
        "--sign-type",
        choices=("RSA", "RSA256", "RSA512"),
        default="RSA",
        help="signature algorithm (default RSA, i.e. SHA-1, as abuild-sign)",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="package files")


def _old_index(ctx: ApkContext, path: str) -> tuple[dict[tuple[str, str], Package], float]:
    from alpenglow.apk.index import load_index_archive

    try:
        stat = os.stat(path)
        data = Path(path).read_bytes()
    except OSError:
        return {}, 0.0  # apk ignores an old index it cannot read
    archive = load_index_archive(data, None, source=path, allow_untrusted=True)
    return {(p.name, p.version): p for p in archive.packages}, stat.st_mtime


def _reusable(path: str, old: dict[tuple[str, str], Package], old_mtime: float) -> Package | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not old or old_mtime < st.st_mtime:
        return None
    base = os.path.basename(path).removesuffix(".apk")
    for (name, version), pkg in old.items():
        if base == f"{name}-{version}" and pkg.size == st.st_size:
            return pkg
    return None


def _missing_providers(packages: list[Package]) -> list[str]:
    provided = {p.name for p in packages}
    provided.update(d.name for p in packages for d in p.provides)
    wanted = {d.name for p in packages for d in p.depends if not d.conflict}
    return sorted(wanted - provided)


def _width() -> int:
    if sys.stdout.isatty():
        columns = shutil.get_terminal_size((50, 24)).columns
        return columns if columns > 25 else 50
    return 50


def _write(path: str, data: bytes) -> None:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AlpenglowError(f"{path}: cannot write index ({exc.strerror})") from None


def _run(ctx: ApkContext) -> int:
    from alpenglow.apk.index import write_index_archive
    from alpenglow.apk.package import read_package
    from alpenglow.apk.signing import Signer
    from alpenglow.apk.version import compare
    from alpenglow.cli.apk.verify import trusted_keys

    opts = ctx.opts
    if opts.output is None and sys.stdout.isatty():
        ctx.error("Will not write binary index to console. Use -o FILE.")
        return 1
    signer = Signer.from_file(opts.sign_key, algorithm=opts.sign_type) if opts.sign_key else None
    old, old_mtime = _old_index(ctx, opts.index) if opts.index else ({}, 0.0)
    keys = trusted_keys(ctx)
    packages: dict[str, Package] = {}
    new = errors = 0
    for path in opts.files:
        if not os.path.exists(path):
            ctx.warning(f"File '{path}' is unaccessible")
            continue
        pkg = _reusable(path, old, old_mtime)
        if pkg is None:
            try:
                data = Path(path).read_bytes()
                pkg = read_package(
                    data, keys, source=path, allow_untrusted=bool(opts.allow_untrusted)
                ).package
            except OSError as exc:
                ctx.error(f"{path}: {exc.strerror}")
                errors += 1
                continue
            except AlpenglowError as exc:
                ctx.error(exc.message)
                errors += 1
                continue
            new += 1
        if opts.rewrite_arch:
            pkg = replace(pkg, arch=opts.rewrite_arch)
        packages.setdefault(pkg.checksum or f"{pkg.name}-{pkg.version}", pkg)
    if errors:
        return 1
    from functools import cmp_to_key

    def order(a: Package, b: Package) -> int:
        if a.name != b.name:
            return -1 if a.name < b.name else 1
        return compare(a.version, b.version)

    ordered = sorted(packages.values(), key=cmp_to_key(order))
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    mtime = int(epoch) if epoch.isdigit() else int(time.time())
    blob = write_index_archive(ordered, opts.description or "", signer, mtime=mtime)
    if opts.output is not None:
        _write(opts.output, blob)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(blob)
        sys.stdout.buffer.flush()
    missing = [] if opts.no_warnings else _missing_providers(ordered)
    if missing:
        from alpenglow.apk.changeset import Wrapper

        wrapper = Wrapper(_width())
        wrapper.group("WARNING: No provider for the dependencies:\n", 2)
        for name in missing:
            wrapper.item(name)
        ctx.stdout.flush()
        ctx.stderr.write(wrapper.end())
        ctx.warning(
            f"Total of {len(missing)} unsatisfiable package names. Your repository may be broken."
        )
    if opts.output is not None:
        ctx.out(f"Index has {len(ordered)} packages (of which {new} are new)")
    return 0


APPLET = Applet(
    name="index",
    summary="Create repository index file from packages",
    configure=_configure,
    run=_run,
)
