"""The realistic test repository: a signed, multi-architecture Alpine-style repository made
from Debian's ``busybox-static`` and ``musl`` plus Alpine-like packages made here.

It is built with alpenglow's own package writer and index writer
(:func:`alpenglow.apk.package.tree_entries`, :func:`~alpenglow.apk.package.write_package`,
:func:`alpenglow.apk.index.write_index_archive`), every package and index signed by one
test key, and laid out as an Alpine mirror::

    mirror/alpine/v3.21/main/<arch>/APKINDEX.tar.gz   every version of every package
    mirror/alpine/v3.21/main/<arch>/<name>-<version>.apk
    mirror/alpine/v3.20/main/<arch>/...               only the older version of each
    keys/<key>.rsa.pub                                the public key (a --keys-dir)
    private/<key>.rsa                                 its private key, to sign more
    manifest.json                                     what was built, what was skipped

Packages of each architecture (``OLD -> NEW`` where there are two versions):

- ``musl`` (Debian's, laid out as Alpine: ``lib/ld-musl-*.so.1`` and the
  ``lib/libc.musl-ARCH.so.1`` link; provides ``so:libc.musl-ARCH.so.1=1``);
- ``busybox`` (Debian's static binary as ``bin/busybox``, ``etc/busybox-paths.d/busybox``
  listing the applets, ``.post-install``/``.post-upgrade``/``.trigger`` scripts and triggers
  as Alpine's; provides ``cmd:busybox`` and ``cmd:APPLET``) and ``busybox-binsh`` (the
  ``bin/sh`` link; provides ``/bin/sh`` and ``cmd:sh``, priority 100), upstream ``-rN`` and
  ``-rN+1``;
- ``alpine-baselayout-data`` (``etc/passwd``, ``etc/group``, ``etc/shadow`` group
  ``shadow``, hosts, fstab, profile, shells...; the new version adds
  ``etc/nsswitch.conf`` and drops ``etc/sysctl.conf``) and ``alpine-baselayout``
  (the directory tree with its modes and links; ``etc/motd`` changes), 3.6.5-r0 -> 3.6.8-r1;
- ``alpine-release`` (``etc/os-release`` a file, then a link to ``../usr/lib/os-release``),
  3.20.3-r0 -> 3.21.0-r0; ``alpine-base`` (meta package) likewise;
- ``alpine-keys`` (``etc/apk/keys/KEY.rsa.pub``) and ``ca-certificates-bundle``
  (``etc/ssl/certs/ca-certificates.crt``, ``etc/ssl/cert.pem`` link), both ``noarch``.

The build is cached under ``ALPENGLOW_TEST_CACHE`` (default ``~/.cache/alpenglow-tests``,
following ``XDG_CACHE_HOME``) in a directory named by a hash of its inputs: this recipe, the
alpenglow writer modules and the Debian packages used. It is written to a temporary
directory and renamed into place under a file lock, so concurrent runs are safe.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import alpenglow.apk
from alpenglow.apk.archive import TarEntry
from alpenglow.apk.dependency import parse
from alpenglow.apk.index import Package, write_index_archive
from alpenglow.apk.package import PackageInfo, read_package, tree_entries, write_package
from alpenglow.apk.signing import Keyring, Signer, generate_keypair
from tests.support import debian
from tests.support.debian import ARCHES, Arch, DebEntry, Downloaded

__all__ = [
    "BRANCH",
    "OLD_BRANCH",
    "RECIPE",
    "BuiltPackage",
    "RealisticRepo",
    "build_repository",
    "cache_root",
    "realistic_repository",
]

RECIPE = "alpenglow realistic repository, recipe 1"
BRANCH = "v3.21"
OLD_BRANCH = "v3.20"
KEY_NAME = "alpenglow-test@example.org-674e2a00.rsa"
OLD_TIME = 1_727_000_000
NEW_TIME = 1_733_300_000
MAINTAINER = "Alpenglow Tests <tests@example.org>"
PACKAGER = "Alpenglow fixture <tests@example.org>"
BASELAYOUT = ("3.6.5-r0", "3.6.8-r1")
RELEASE = ("3.20.3-r0", "3.21.0-r0")
KEYS_VERSION = "2.5-r0"
CA_VERSION = "20241121-r1"
STALE_AFTER = 3 * 24 * 3600
"""Builds of other inputs (other checkouts, older code) unused this long are removed."""
_HERE = Path(__file__).resolve()
_WRITERS = ("archive.py", "package.py", "index.py", "signing.py")


@dataclass(frozen=True, slots=True)
class BuiltPackage:
    """One ``.apk`` of the repository."""

    name: str
    version: str
    arch: str  # the package's own arch (``noarch`` or the repository's)
    file: str  # file name in the arch directory

    @property
    def atom(self) -> str:
        return f"{self.name}-{self.version}"


@dataclass(frozen=True, slots=True)
class RealisticRepo:
    """A built repository (see the module docstring for the layout)."""

    path: Path
    arches: tuple[str, ...]
    skipped: dict[str, str] = field(hash=False)
    packages: dict[str, tuple[BuiltPackage, ...]] = field(hash=False)  # by arch, all versions
    old_packages: dict[str, tuple[BuiltPackage, ...]] = field(hash=False)  # v3.20's
    applets: dict[str, tuple[str, ...]] = field(hash=False)  # absolute paths, by arch
    key_name: str = KEY_NAME + ".pub"

    @property
    def mirror(self) -> Path:
        """The mirror root (contains ``alpine/``)."""
        return self.path / "mirror"

    @property
    def keys_dir(self) -> Path:
        """A directory holding only the public key: use as ``--keys-dir``."""
        return self.path / "keys"

    @property
    def private_key(self) -> Path:
        return self.path / "private" / KEY_NAME

    def signer(self) -> Signer:
        return Signer.from_file(self.private_key, key_name=self.key_name)

    def base(self, branch: str = BRANCH) -> Path:
        """The repository as a plain path (``.../alpine/BRANCH/main``), without the arch."""
        return self.mirror / "alpine" / branch / "main"

    def arch_dir(self, arch: str, branch: str = BRANCH) -> Path:
        return self.base(branch) / arch

    def versions(self, name: str, arch: str = "x86_64") -> list[str]:
        """Versions of ``name`` in the latest branch, oldest first."""
        return [p.version for p in self.packages[arch] if p.name == name]

    def apk(self, name: str, arch: str = "x86_64", version: str | None = None) -> Path:
        """The ``.apk`` file of ``name`` (newest version unless ``version``)."""
        found = [p for p in self.packages[arch] if p.name == name]
        if version is not None:
            found = [p for p in found if p.version == version]
        if not found:
            raise KeyError(f"{name} {version or ''} not in the {arch} repository")
        return self.arch_dir(arch) / found[-1].file


# --------------------------------------------------------------------------------------------
# cache


def cache_root() -> Path:
    """``ALPENGLOW_TEST_CACHE``, else ``$XDG_CACHE_HOME/alpenglow-tests``, else
    ``~/.cache/alpenglow-tests``."""
    explicit = os.environ.get("ALPENGLOW_TEST_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "alpenglow-tests"


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()[:20]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def realistic_repository(root: Path | None = None) -> RealisticRepo:
    """The repository, from the cache or built now (downloading the Debian packages once)."""
    root = cache_root() if root is None else root
    with _locked(root / ".lock"):
        mirror = debian.find_mirror() or ""
        deb_key = _digest(repr(ARCHES), repr(debian.PACKAGES), mirror)
        debs = debian.fetch_debs(root / f"debian-{deb_key}")
        inputs: list[bytes | str] = [RECIPE, _HERE.read_bytes()]
        inputs.append(Path(debian.__file__).read_bytes())
        apk_dir = Path(alpenglow.apk.__file__).parent
        inputs += [(apk_dir / name).read_bytes() for name in _WRITERS]
        for arch in sorted(debs.debs):
            for package, path in sorted(debs.debs[arch].items()):
                inputs += [arch, package, path.name, debs.versions[arch][package]]
        inputs += sorted(f"{a}={r}" for a, r in debs.skipped.items())
        target = root / f"repo-{_digest(*inputs)}"
        if not (target / "manifest.json").is_file():
            work = Path(tempfile.mkdtemp(prefix=".repo.work", dir=root))
            try:
                build_repository(work, debs)
                os.replace(work, target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        os.utime(target)  # in use: other checkouts' builds unused for STALE_AFTER are removed
        for stale in root.glob("repo-*"):
            try:
                unused = time.time() - stale.stat().st_mtime
            except OSError:
                continue
            if stale != target and unused > STALE_AFTER:
                shutil.rmtree(stale, ignore_errors=True)
        return _load(target)


def _load(path: Path) -> RealisticRepo:
    record = json.loads((path / "manifest.json").read_text())

    def packages(key: str) -> dict[str, tuple[BuiltPackage, ...]]:
        return {
            arch: tuple(BuiltPackage(*item) for item in items)
            for arch, items in record[key].items()
        }

    return RealisticRepo(
        path=path,
        arches=tuple(record["arches"]),
        skipped=dict(record["skipped"]),
        packages=packages("packages"),
        old_packages=packages("old_packages"),
        applets={arch: tuple(paths) for arch, paths in record["applets"].items()},
    )


# --------------------------------------------------------------------------------------------
# package trees


@dataclass(frozen=True, slots=True)
class _Recipe:
    """One package to build: its record, its tree, scripts and triggers."""

    package: Package
    files: dict[str, bytes | str | None]  # path -> content, "->target" link, None = dir
    modes: dict[str, int] = field(default_factory=dict)
    groups: dict[str, tuple[int, str]] = field(default_factory=dict)  # path -> (gid, gname)
    scripts: tuple[tuple[str, bytes], ...] = ()
    triggers: tuple[str, ...] = ()
    build_time: int = NEW_TIME


def _package(
    name: str,
    version: str,
    arch: str,
    description: str,
    *,
    url: str = "https://alpinelinux.org",
    license: str = "GPL-2.0-only",
    origin: str | None = None,
    depends: Sequence[str] = (),
    provides: Sequence[str] = (),
    replaces: Sequence[str] = (),
    provider_priority: int | None = None,
) -> Package:
    return Package(
        name=name,
        version=version,
        arch=arch,
        description=description,
        url=url,
        license=license,
        origin=origin or name,
        maintainer=MAINTAINER,
        depends=tuple(parse(d) for d in depends),
        provides=tuple(parse(p) for p in provides),
        replaces=tuple(parse(r) for r in replaces),
        provider_priority=provider_priority,
    )


def _write_tree(base: Path, recipe: _Recipe) -> None:
    for rel, content in sorted(recipe.files.items()):
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        elif isinstance(content, str) and content.startswith("->"):
            os.symlink(content[2:], path)
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)
            path.chmod(0o644)
    for rel, mode in recipe.modes.items():
        os.chmod(base / rel, mode)
    for dirpath, dirnames, _ in os.walk(base):
        for name in dirnames:
            rel = os.path.relpath(os.path.join(dirpath, name), base)
            if rel not in recipe.modes:
                os.chmod(os.path.join(dirpath, name), 0o755)


def _build(recipe: _Recipe, signer: Signer, scratch: Path) -> bytes:
    tree = Path(tempfile.mkdtemp(dir=scratch))
    try:
        _write_tree(tree, recipe)
        entries: list[TarEntry] = []
        for entry in tree_entries(tree, mtime=recipe.build_time, uid=0, gid=0):
            group = recipe.groups.get(entry.path.rstrip("/"))
            if group is not None:
                entries.append(replace(entry, gid=group[0], gname=group[1]))
            else:
                entries.append(entry)
    finally:
        shutil.rmtree(tree)
    info = PackageInfo(
        replace(recipe.package, build_time=recipe.build_time),
        packager=PACKAGER,
        triggers=recipe.triggers,
    )
    return write_package(entries, info, signer, scripts=recipe.scripts, mtime=recipe.build_time)


PASSWD = """\
root:x:0:0:root:/root:/bin/sh
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/mail:/sbin/nologin
news:x:9:13:news:/usr/lib/news:/sbin/nologin
uucp:x:10:14:uucp:/var/spool/uucppublic:/sbin/nologin
cron:x:16:16:cron:/var/spool/cron:/sbin/nologin
ftp:x:21:21::/var/lib/ftp:/sbin/nologin
sshd:x:22:22:sshd:/dev/null:/sbin/nologin
games:x:35:35:games:/usr/games:/sbin/nologin
ntp:x:123:123:NTP:/var/empty:/sbin/nologin
guest:x:405:100:guest:/dev/null:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
"""

GROUP = """\
root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
sys:x:3:root,bin
adm:x:4:root,daemon
tty:x:5:
disk:x:6:root
lp:x:7:lp
kmem:x:9:
wheel:x:10:root
floppy:x:11:root
mail:x:12:mail
news:x:13:news
uucp:x:14:uucp
cron:x:16:cron
console:x:17:
audio:x:18:
cdrom:x:19:
dialout:x:20:root
ftp:x:21:
sshd:x:22:
input:x:23:
tape:x:26:root
video:x:27:root
netdev:x:28:
kvm:x:34:kvm
games:x:35:
shadow:x:42:
www-data:x:82:
users:x:100:games
ntp:x:123:
abuild:x:300:
utmp:x:406:
ping:x:999:
nogroup:x:65533:
nobody:x:65534:
"""


def _shadow() -> str:
    lines = []
    for line in PASSWD.splitlines():
        user = line.split(":", 1)[0]
        lines.append(f"{user}:{'*' if user == 'root' else '!'}::0:::::\n")
    return "".join(lines)


_DIRS = (
    "bin",
    "dev",
    "etc",
    "etc/apk",
    "etc/conf.d",
    "etc/crontabs",
    "etc/init.d",
    "etc/modprobe.d",
    "etc/modules-load.d",
    "etc/network",
    "etc/network/if-down.d",
    "etc/network/if-post-down.d",
    "etc/network/if-pre-up.d",
    "etc/network/if-up.d",
    "etc/opt",
    "etc/periodic",
    "etc/periodic/15min",
    "etc/periodic/daily",
    "etc/periodic/hourly",
    "etc/periodic/monthly",
    "etc/periodic/weekly",
    "etc/profile.d",
    "etc/sysctl.d",
    "home",
    "lib",
    "lib/firmware",
    "lib/modules-load.d",
    "lib/sysctl.d",
    "media",
    "media/cdrom",
    "media/floppy",
    "media/usb",
    "mnt",
    "opt",
    "run",
    "sbin",
    "srv",
    "usr",
    "usr/bin",
    "usr/lib",
    "usr/local",
    "usr/local/bin",
    "usr/local/lib",
    "usr/local/share",
    "usr/sbin",
    "usr/share",
    "usr/share/man",
    "usr/share/misc",
    "var",
    "var/cache",
    "var/lib",
    "var/lib/misc",
    "var/local",
    "var/log",
    "var/mail",
    "var/opt",
    "var/spool",
    "var/spool/cron",
)


def _baselayout(arch: str, old: bool) -> list[_Recipe]:
    version = BASELAYOUT[0 if old else 1]
    when = OLD_TIME if old else NEW_TIME
    data: dict[str, bytes | str | None] = {
        "etc/fstab": "/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n"
        "/dev/usbdisk\t/media/usb\tvfat\tnoauto\t0 0\n",
        "etc/group": GROUP,
        "etc/hostname": "localhost\n",
        "etc/hosts": "127.0.0.1\tlocalhost localhost.localdomain\n"
        "::1\t\tlocalhost localhost.localdomain\n",
        "etc/inittab": "::sysinit:/sbin/openrc sysinit\n::wait:/sbin/openrc default\n"
        "::ctrlaltdel:/sbin/reboot\n::shutdown:/sbin/openrc shutdown\n",
        "etc/modules": "af_packet\nipv6\n",
        "etc/mtab": "->../proc/mounts",
        "etc/passwd": PASSWD,
        "etc/profile": "export PATH="
        '"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n'
        "export PAGER=less\numask 022\n"
        "for script in /etc/profile.d/*.sh ; do\n"
        '\tif [ -r "$script" ] ; then\n\t\t. "$script"\n\tfi\ndone\nunset script\n',
        "etc/protocols": "ip\t0\tIP\nicmp\t1\tICMP\ntcp\t6\tTCP\nudp\t17\tUDP\n",
        "etc/services": "ssh\t\t22/tcp\nhttp\t\t80/tcp\t\twww\nhttps\t\t443/tcp\n",
        "etc/shadow": _shadow(),
        "etc/shells": "# valid login shells\n/bin/sh\n/bin/ash\n",
    }
    if old:
        data["etc/sysctl.conf"] = "# content of this file will override /etc/sysctl.d/*\n"
    else:
        data["etc/nsswitch.conf"] = (
            "passwd:\t\tfiles\ngroup:\t\tfiles\nshadow:\t\tfiles\n\nhosts:\t\tfiles dns\n"
        )
    tree: dict[str, bytes | str | None] = dict.fromkeys(_DIRS)
    tree.update(
        {
            "etc/crontabs/root": "# min\thour\tday\tmonth\tweekday\tcommand\n"
            "*/15\t*\t*\t*\t*\trun-parts /etc/periodic/15min\n",
            "etc/motd": (
                "Welcome to Alpine!\n\n"
                + ("The old motd.\n" if old else "The Alpine Wiki contains a lot of information.\n")
            ),
            "etc/profile.d/README": "This directory holds shell scripts sourced by /etc/profile.\n",
            "proc": None,
            "root": None,
            "sys": None,
            "tmp": None,
            "var/empty": None,
            "var/tmp": None,
            "var/lock": "->../run/lock",
            "var/run": "->../run",
            "var/spool/mail": "->../mail",
            "var/spool/cron/crontabs": "->../../../etc/crontabs",
        }
    )
    if not old:
        tree["etc/profile.d/color_prompt.sh.disabled"] = "PS1='\\033[1;32m\\h:\\w\\$ \\033[0m'\n"
    modes = {
        "etc/crontabs/root": 0o600,
        "proc": 0o555,
        "root": 0o700,
        "sys": 0o555,
        "tmp": 0o1777,
        "var/empty": 0o555,
        "var/tmp": 0o1777,
    }
    return [
        _Recipe(
            _package(
                "alpine-baselayout-data",
                version,
                arch,
                "Alpine base dir structure and init scripts",
                origin="alpine-baselayout",
                replaces=("alpine-baselayout",),
            ),
            data,
            modes={"etc/shadow": 0o640},
            groups={"etc/shadow": (42, "shadow")},
            build_time=when,
        ),
        _Recipe(
            _package(
                "alpine-baselayout",
                version,
                arch,
                "Alpine base dir structure and init scripts",
                depends=(f"alpine-baselayout-data={version}",),
            ),
            tree,
            modes=modes,
            build_time=when,
        ),
    ]


def _release(arch: str, old: bool) -> _Recipe:
    version = RELEASE[0 if old else 1]
    short = version.split("-")[0]
    os_release = (
        'NAME="Alpine Linux"\nID=alpine\n'
        f"VERSION_ID={short}\n"
        f'PRETTY_NAME="Alpine Linux v{short.rsplit(".", 1)[0]}"\n'
        'HOME_URL="https://alpinelinux.org/"\n'
        'BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"\n'
    )
    files: dict[str, bytes | str | None] = {
        "etc/alpine-release": f"{short}\n",
        "etc/issue": "Welcome to Alpine Linux " + short.rsplit(".", 1)[0] + "\n"
        "Kernel \\r on an \\m (\\l)\n\n",
        "etc/secfixes.d/alpine": "secfixes:\n  3.12.6-r0:\n    - CVE-2021-36159\n",
    }
    if old:
        files["etc/os-release"] = os_release
    else:
        files["etc/os-release"] = "->../usr/lib/os-release"
        files["usr/lib/os-release"] = os_release
    return _Recipe(
        _package(
            "alpine-release",
            version,
            arch,
            "Alpine release data",
            license="MIT",
            origin="alpine-base",
            depends=("alpine-keys",),
        ),
        files,
        build_time=OLD_TIME if old else NEW_TIME,
    )


def _base(arch: str, old: bool) -> _Recipe:
    return _Recipe(
        _package(
            "alpine-base",
            RELEASE[0 if old else 1],
            arch,
            "Meta package for minimal alpine base",
            license="MIT",
            depends=(
                "alpine-baselayout",
                "alpine-release",
                "busybox",
                "busybox-binsh",
                "ca-certificates-bundle",
                "musl",
            ),
        ),
        {},
        build_time=OLD_TIME if old else NEW_TIME,
    )


def _keys(public_key: bytes, key_file: str) -> _Recipe:
    return _Recipe(
        _package(
            "alpine-keys",
            KEYS_VERSION,
            "noarch",
            "Public keys for Alpine Linux packages",
            license="MIT",
        ),
        {
            f"etc/apk/keys/{key_file}": public_key,
            f"usr/share/apk/keys/{key_file}": public_key,
        },
        build_time=OLD_TIME,
    )


def _ca_bundle() -> bytes:
    """Two self-signed CA certificates (made now; the repository is cached)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    out = []
    for number in (1, 2):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Alpenglow Tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Alpenglow Test Root CA {number}"),
            ]
        )
        start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(number)
            .not_valid_before(start)
            .not_valid_after(start.replace(year=2044))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        out.append(cert.public_bytes(serialization.Encoding.PEM))
    return b"".join(out)


def _ca(bundle: bytes) -> _Recipe:
    return _Recipe(
        _package(
            "ca-certificates-bundle",
            CA_VERSION,
            "noarch",
            "Pre generated bundle of Mozilla certificates",
            url="https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/",
            license="MPL-2.0 AND MIT",
            origin="ca-certificates",
        ),
        {
            "etc/ssl/certs/ca-certificates.crt": bundle,
            "etc/ssl/cert.pem": "->certs/ca-certificates.crt",
        },
        build_time=NEW_TIME,
    )


def _usr_unmerged(path: str) -> str:
    """Debian 13+/unstable keep files under usr/ (merged-usr): map them back."""
    for prefix in ("usr/bin/", "usr/sbin/", "usr/lib/"):
        if path.startswith(prefix):
            return path[4:]
    return path


def _find(entries: list[DebEntry], *paths: str) -> DebEntry:
    by_path = {_usr_unmerged(e.path): e for e in entries}
    for wanted in paths:
        path = wanted
        entry = by_path.get(path)
        for _ in range(10):
            if entry is None or entry.kind != "symlink":
                break
            target = os.path.normpath(os.path.join(os.path.dirname(path), entry.linkname))
            path = _usr_unmerged(target.lstrip("/"))
            entry = by_path.get(path)
        if entry is not None and entry.kind == "file":
            return entry
    raise debian.DebError(f"none of {', '.join(paths)} is in the package")


def _musl(arch: Arch, deb: Path, version: str) -> _Recipe:
    entries = debian.deb_data(deb)
    loaders = [e.path for e in entries if os.path.basename(e.path).startswith("ld-musl-")]
    loaders = [p for p in loaders if p.endswith(".so.1")]
    if not loaders:
        raise debian.DebError(f"{deb}: no ld-musl-*.so.1")
    libc = _find(entries, _usr_unmerged(loaders[0]))
    return _Recipe(
        _package(
            "musl",
            version,
            arch.alpine,
            "the musl c library (libc) implementation",
            url="https://musl.libc.org/",
            license="MIT",
            provides=(f"so:libc.musl-{arch.alpine}.so.1=1",),
        ),
        {
            f"lib/{arch.loader}": libc.data,
            f"lib/libc.musl-{arch.alpine}.so.1": f"->{arch.loader}",
        },
        modes={f"lib/{arch.loader}": 0o755},
    )


_APPLET_DIRS = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/")  # Debian's list has /linuxrc too
_SAFE_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")
_INSTALL_SCRIPT = b"#!/bin/busybox sh\n\n# create the applet links\n/bin/busybox --install -s\n"
_TRIGGER_SCRIPT = (
    b"#!/bin/busybox sh\n\n"
    b'for i in "$@"; do\n\tcase "$i" in\n\t/lib/modules/*) [ -d "$i" ] && depmod '
    b'"${i#/lib/modules/}" ;;\n\tesac\ndone\n/bin/busybox --install -s\n'
)


def _busybox(
    arch: Arch, binary: bytes, applets: Sequence[str], version: str, when: int
) -> list[_Recipe]:
    commands = sorted(
        {os.path.basename(a) for a in applets} - {"busybox", "sh"},
    )
    commands = [c for c in commands if set(c) <= _SAFE_NAME and c[0].isalnum()]
    busybox = _Recipe(
        _package(
            "busybox",
            version,
            arch.alpine,
            "Size optimized toolbox of many common UNIX utilities",
            url="https://busybox.net/",
            depends=(f"so:libc.musl-{arch.alpine}.so.1",),
            provides=(f"cmd:busybox={version}", *(f"cmd:{c}={version}" for c in commands)),
        ),
        {
            "bin/busybox": binary,
            "etc/busybox-paths.d/busybox": "".join(f"{a}\n" for a in applets),
            "etc/securetty": "console\ntty1\ntty2\nttyS0\nttyAMA0\nhvc0\n",
        },
        modes={"bin/busybox": 0o755},
        scripts=(
            (".post-install", _INSTALL_SCRIPT),
            (".post-upgrade", _INSTALL_SCRIPT),
            (".trigger", _TRIGGER_SCRIPT),
        ),
        triggers=("/bin", "/usr/bin", "/sbin", "/usr/sbin", "/lib/modules/*"),
        build_time=when,
    )
    binsh = _Recipe(
        _package(
            "busybox-binsh",
            version,
            arch.alpine,
            "busybox ash /bin/sh",
            url="https://busybox.net/",
            origin="busybox",
            depends=(f"busybox={version}",),
            provides=("/bin/sh", f"cmd:sh={version}"),
            provider_priority=100,
        ),
        {"bin/sh": "->/bin/busybox"},
        build_time=when,
    )
    return [busybox, binsh]


def _applets(binary: Path, arch: Arch, fallback: Sequence[str]) -> tuple[str, ...]:
    """``busybox --list-full`` as absolute paths: the binary itself when it runs here
    (natively or through qemu-user), else ``fallback`` (the native binary's list)."""
    command = [str(binary), "--list-full"]
    native = {"x86_64": ("x86_64", "x86")}.get(platform.machine(), ())
    if arch.alpine not in native:
        qemu = shutil.which(f"qemu-{arch.qemu}-static") or shutil.which(f"qemu-{arch.qemu}")
        if qemu is None:
            return tuple(fallback)
        command.insert(0, qemu)
    try:
        done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return tuple(fallback)
    lines = [line.strip() for line in done.stdout.decode("utf-8", "replace").splitlines()]
    if done.returncode != 0 or not lines:
        return tuple(fallback)
    paths = ("/" + line.lstrip("/") for line in lines if line)
    return tuple(p for p in paths if p.startswith(_APPLET_DIRS))


# --------------------------------------------------------------------------------------------
# the build


def build_repository(out: Path, debs: Downloaded) -> None:
    """Build the whole repository into ``out`` (see the module docstring)."""
    scratch = out / ".scratch"
    scratch.mkdir(parents=True)
    private, public = generate_keypair(2048)
    (out / "keys").mkdir()
    (out / "private").mkdir(mode=0o700)
    (out / "keys" / f"{KEY_NAME}.pub").write_bytes(public)
    (out / "private" / KEY_NAME).write_bytes(private)
    signer = Signer(f"{KEY_NAME}.pub", private)
    keyring = Keyring({signer.key_name: public})
    shared = [_keys(public, signer.key_name), _ca(_ca_bundle())]
    shared_blobs = [(r, _build(r, signer, scratch)) for r in shared]

    arches = [a for a in ARCHES if a.alpine in debs.debs]
    binaries = {
        a.alpine: _find(debian.deb_data(debs.debs[a.alpine]["busybox-static"]), "bin/busybox")
        for a in arches
    }
    fallback: tuple[str, ...] = ()
    applets: dict[str, tuple[str, ...]] = {}
    for arch in arches:
        path = scratch / f"busybox-{arch.alpine}"
        path.write_bytes(binaries[arch.alpine].data)
        path.chmod(0o755)
        applets[arch.alpine] = _applets(path, arch, fallback)
        if arch.alpine == "x86_64":
            fallback = applets[arch.alpine]
    skipped = dict(debs.skipped)
    done: list[str] = []
    listed: dict[str, dict[str, list[list[str]]]] = {"packages": {}, "old_packages": {}}
    for arch in arches:
        if not applets[arch.alpine]:
            skipped[arch.alpine] = "no busybox applet list (the binary does not run here)"
            continue
        versions = debs.versions[arch.alpine]
        bb_old = debian.apk_version(versions["busybox-static"])
        bb_new = debian.apk_version(versions["busybox-static"], bump=1)
        recipes: list[tuple[_Recipe, bool]] = []  # (recipe, in the old branch)
        recipes.append(
            (
                _musl(arch, debs.debs[arch.alpine]["musl"], debian.apk_version(versions["musl"])),
                True,
            )
        )
        binary = binaries[arch.alpine].data
        for old, (version, when) in ((True, (bb_old, OLD_TIME)), (False, (bb_new, NEW_TIME))):
            for recipe in _busybox(arch, binary, applets[arch.alpine], version, when):
                recipes.append((recipe, old))
            for recipe in _baselayout(arch.alpine, old):
                recipes.append((recipe, old))
            recipes.append((_release(arch.alpine, old), old))
            recipes.append((_base(arch.alpine, old), old))
        built = [(r, _build(r, signer, scratch), old) for r, old in recipes]
        built += [(r, blob, True) for r, blob in shared_blobs]
        newest, oldest = _write_arch(out, arch.alpine, built, keyring, signer)
        listed["packages"][arch.alpine] = newest
        listed["old_packages"][arch.alpine] = oldest
        done.append(arch.alpine)
    shutil.rmtree(scratch)
    manifest = {
        "recipe": RECIPE,
        "arches": done,
        "skipped": skipped,
        **listed,
        "applets": {arch: list(applets[arch]) for arch in done},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def _write_arch(
    out: Path,
    arch: str,
    built: list[tuple[_Recipe, bytes, bool]],
    keyring: Keyring,
    signer: Signer,
) -> tuple[list[list[str]], list[list[str]]]:
    """Write one arch's packages and both branches' indexes; returns the two package lists
    (``[name, version, arch, file]`` each) for the manifest."""
    from functools import cmp_to_key

    from alpenglow.apk.version import compare

    def order(a: Package, b: Package) -> int:
        if a.name != b.name:
            return -1 if a.name < b.name else 1
        return compare(a.version, b.version)

    new_dir = out / "mirror" / "alpine" / BRANCH / "main" / arch
    old_dir = out / "mirror" / "alpine" / OLD_BRANCH / "main" / arch
    new_dir.mkdir(parents=True)
    old_dir.mkdir(parents=True)
    everything: list[Package] = []
    older: list[Package] = []
    for recipe, blob, old in built:
        pkg = recipe.package
        file = f"{pkg.name}-{pkg.version}.apk"
        (new_dir / file).write_bytes(blob)
        record = read_package(blob, keyring, source=str(new_dir / file)).package
        everything.append(record)
        if old:
            os.link(new_dir / file, old_dir / file)
            older.append(record)
    everything.sort(key=cmp_to_key(order))
    older.sort(key=cmp_to_key(order))
    for directory, packages, branch in (
        (new_dir, everything, BRANCH),
        (old_dir, older, OLD_BRANCH),
    ):
        index = write_index_archive(
            packages, f"{branch}.0-alpenglow-fixture", signer, mtime=NEW_TIME
        )
        (directory / "APKINDEX.tar.gz").write_bytes(index)

    def listing(packages: list[Package]) -> list[list[str]]:
        return [[p.name, p.version, p.arch, f"{p.name}-{p.version}.apk"] for p in packages]

    return listing(everything), listing(older)
