"""Building small signed repositories and hostile packages for the commit tests."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from alpenglow.apk.archive import TarEntry, gzip_member, write_tar
from alpenglow.apk.index import Package, write_index_archive
from alpenglow.apk.package import (
    CHECKSUM_KEY,
    PackageInfo,
    format_pkginfo,
    identity_of,
    read_package,
    write_package,
)
from alpenglow.apk.signing import Keyring, Signer, generate_keypair

MTIME = 1700000000


@functools.cache
def keypair() -> tuple[bytes, bytes]:
    """One RSA key pair for the whole test run (generation is slow)."""
    return generate_keypair(2048)


def d(path: str, mode: int = 0o755, **kw: object) -> TarEntry:
    kw.setdefault("uname", "root")
    kw.setdefault("gname", "root")
    return TarEntry(path + "/", type="5", mode=mode, mtime=MTIME, **kw)  # type: ignore[arg-type]


def f(path: str, data: bytes, mode: int = 0o644, **kw: object) -> TarEntry:
    kw.setdefault("uname", "root")
    kw.setdefault("gname", "root")
    return TarEntry(path, data=data, mode=mode, mtime=MTIME, **kw)  # type: ignore[arg-type]


def sym(path: str, target: str) -> TarEntry:
    return TarEntry(path, type="2", linkname=target, mode=0o777, mtime=MTIME)


def hard(path: str, target: str) -> TarEntry:
    return TarEntry(path, type="1", linkname=target, mode=0o644, mtime=MTIME)


def info(name: str, version: str, **kw: object) -> PackageInfo:
    return PackageInfo(
        Package(
            name=name,
            version=version,
            arch=str(kw.pop("arch", "x86_64")),
            description=f"test package {name}",
            url="https://example.com/",
            license="MIT",
            origin=str(kw.pop("origin", name)),
            build_time=MTIME,
            **kw,  # type: ignore[arg-type]
        ),
        triggers=(),
    )


def raw_package(entries: Sequence[TarEntry], pkginfo: PackageInfo) -> bytes:
    """An unsigned package built without :func:`write_package`'s checks (entries in the
    order given, hostile paths allowed), with correct checksums and datahash."""
    out = []
    for e in entries:
        if e.type in ("0", "7"):
            out.append(replace(e, pax=((CHECKSUM_KEY, hashlib.sha1(e.data).hexdigest()),)))
        else:
            out.append(e)
    data_member = gzip_member(write_tar(out))
    size = sum(len(e.data) for e in out) or 1
    pkginfo = replace(
        pkginfo,
        package=replace(pkginfo.package, installed_size=size),
        datahash=hashlib.sha256(data_member).hexdigest(),
    )
    control = write_tar(
        [TarEntry(".PKGINFO", data=format_pkginfo(pkginfo), uname="root", gname="root")],
        end_of_archive=False,
    )
    return gzip_member(control) + data_member


@dataclass
class Repo:
    """A local repository ``BASE/x86_64`` with a signed index, and its trusted key dir."""

    base: Path
    keys_dir: Path
    signer: Signer
    packages: dict[str, bytes] = field(default_factory=dict)
    records: list[Package] = field(default_factory=list)

    @property
    def arch_dir(self) -> Path:
        return self.base / "x86_64"

    @property
    def keyring(self) -> Keyring:
        return Keyring.from_directory(self.keys_dir)

    def add(
        self,
        name: str,
        version: str,
        entries: Iterable[TarEntry],
        *,
        scripts: Sequence[tuple[str, bytes]] = (),
        triggers: tuple[str, ...] = (),
        raw: bool = False,
        **kw: object,
    ) -> Package:
        pkginfo = replace(info(name, version, **kw), triggers=triggers)
        if raw:
            data = raw_package(list(entries), pkginfo)
        else:
            data = write_package(entries, pkginfo, self.signer, scripts=scripts, mtime=MTIME)
        apk = read_package(data, None, source=name, allow_untrusted=True)
        self.arch_dir.mkdir(parents=True, exist_ok=True)
        (self.arch_dir / f"{name}-{version}.apk").write_bytes(data)
        self.packages[f"{name}-{version}"] = data
        self.records = [p for p in self.records if str(p) != f"{name}-{version}"]
        self.records.append(apk.package)
        self.write_index()
        return apk.package

    def write_index(self, signer: Signer | None = None) -> None:
        self.arch_dir.mkdir(parents=True, exist_ok=True)
        archive = write_index_archive(self.records, "test repository", signer or self.signer)
        (self.arch_dir / "APKINDEX.tar.gz").write_bytes(archive)


def make_repo(base: Path) -> Repo:
    private, public = keypair()
    keys = base / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "test-65000000.rsa.pub").write_bytes(public)
    return Repo(base / "repo", keys, Signer("test-65000000.rsa.pub", private))


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything about a tree that a commit could change, for before/after comparisons."""
    out: dict[str, tuple[object, ...]] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            content: object = None
            if os.path.islink(p):
                content = os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as fh:
                    content = fh.read()
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime), content)
    return out


def identity(data: bytes) -> str:
    from alpenglow.apk.archive import split_gzip

    members = split_gzip(data)
    return identity_of(members[-2].compressed)
