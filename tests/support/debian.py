"""Debian packages for the realistic repository: a tiny ``ar`` reader, ``.deb`` data, and a
private apt configuration that downloads foreign-architecture ``.deb`` files.

The download never touches the system's apt state: its own sources list, lists, status and
cache directories live under a work directory; ``APT::Architectures`` names every architecture
wanted, so no ``dpkg --add-architecture`` is needed. One ``apt-get update`` and one
``apt-get download`` fetch everything (one download per package would take over a minute).

The mirror is the one this machine's own apt uses (``/etc/apt/sources.list`` or
``sources.list.d``; ``ALPENGLOW_TEST_DEBIAN_MIRROR`` overrides it). An architecture whose
suite cannot be reached is reported as skipped with a reason, never an error for the rest.

Architectures (Debian -> Alpine). Debian 12 (bookworm) has ``busybox-static`` and ``musl``
for the first seven; riscv64 comes from Debian 13 (trixie) and loong64 from unstable (sid),
whose packages are merged-usr (files under ``usr/``; the recipe maps them back):

=========  ==========  ======================================================================
Debian     Alpine      why
=========  ==========  ======================================================================
amd64      x86_64
i386       x86
arm64      aarch64
armhf      armv7       both ARMv7 hard-float (Alpine's armv7 loader is ``ld-musl-armhf.so.1``)
armel      armhf       Alpine's armhf is ARMv6 hard-float, Debian's armel ARMv5 soft-float:
                       the static busybox runs on any ARMv6+ CPU; musl's soft-float loader
                       (``ld-musl-arm.so.1``) is installed under Alpine's name
                       ``ld-musl-armhf.so.1``. Good for layout and ``sh``, not for linking
                       hard-float programs against it.
ppc64el    ppc64le
s390x      s390x
riscv64    riscv64     Debian 13
loong64    loongarch64 Debian unstable (``Check-Valid-Until "false"``)
=========  ==========  ======================================================================
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ARCHES",
    "PACKAGES",
    "Arch",
    "DebEntry",
    "DebError",
    "Downloaded",
    "apk_version",
    "deb_data",
    "fetch_debs",
    "find_mirror",
    "read_ar",
]

PACKAGES = ("busybox-static", "musl")
"""The Debian packages the repository is made from."""


class DebError(Exception):
    """A ``.deb`` (or ``ar`` archive) that cannot be read."""


@dataclass(frozen=True, slots=True)
class Arch:
    """One architecture of the repository."""

    alpine: str  # Alpine's name (x86_64, armv7, ...)
    debian: str  # Debian's name (amd64, armhf, ...)
    suite: str  # Debian suite that has both packages for it
    qemu: str  # qemu-user name: qemu-<qemu>-static, binfmt entry qemu-<qemu>
    loader: str  # musl's dynamic loader file name on Alpine, in /lib


ARCHES: tuple[Arch, ...] = (
    Arch("x86_64", "amd64", "bookworm", "x86_64", "ld-musl-x86_64.so.1"),
    Arch("x86", "i386", "bookworm", "i386", "ld-musl-i386.so.1"),
    Arch("aarch64", "arm64", "bookworm", "aarch64", "ld-musl-aarch64.so.1"),
    Arch("armv7", "armhf", "bookworm", "arm", "ld-musl-armhf.so.1"),
    Arch("armhf", "armel", "bookworm", "arm", "ld-musl-armhf.so.1"),
    Arch("ppc64le", "ppc64el", "bookworm", "ppc64le", "ld-musl-powerpc64le.so.1"),
    Arch("s390x", "s390x", "bookworm", "s390x", "ld-musl-s390x.so.1"),
    Arch("riscv64", "riscv64", "trixie", "riscv64", "ld-musl-riscv64.so.1"),
    Arch("loongarch64", "loong64", "sid", "loongarch64", "ld-musl-loongarch64.so.1"),
)

_UNSTABLE_SUITES = frozenset({"sid", "unstable"})
_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


# --------------------------------------------------------------------------------------------
# ar and .deb


def read_ar(data: bytes, *, source: str) -> dict[str, bytes]:
    """The members of a (System V / GNU) ``ar`` archive, by name."""
    if not data.startswith(b"!<arch>\n"):
        raise DebError(f"{source}: not an ar archive")
    members: dict[str, bytes] = {}
    pos = 8
    while pos < len(data):
        header = data[pos : pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise DebError(f"{source}: bad ar member header at byte {pos}")
        name = header[:16].decode("ascii", "replace").rstrip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(f"{source}: bad ar member size at byte {pos}") from None
        body = data[pos + 60 : pos + 60 + size]
        if len(body) != size:
            raise DebError(f"{source}: ar member {name!r} is truncated")
        members[name] = body
        pos += 60 + size + (size & 1)
    return members


@dataclass(frozen=True, slots=True)
class DebEntry:
    """One entry of a ``.deb``'s data tar; ``path`` is relative (no ``./``, no slash at end)."""

    path: str
    kind: str  # "file", "dir", "symlink" or "hardlink"
    mode: int
    data: bytes = field(default=b"", repr=False)
    linkname: str = ""


def deb_data(path: Path) -> list[DebEntry]:
    """The entries of a ``.deb``'s ``data.tar.*`` (xz, gz, bz2 or plain tar)."""
    source = str(path)
    members = read_ar(path.read_bytes(), source=source)
    if members.get("debian-binary", b"").strip() != b"2.0":
        raise DebError(f"{source}: not a Debian 2.0 package")
    names = [n for n in members if n.startswith("data.tar")]
    if not names:
        raise DebError(f"{source}: no data.tar member")
    if names[0].endswith(".zst"):
        raise DebError(f"{source}: {names[0]} is zstd, which the standard library cannot read")
    entries: list[DebEntry] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(members[names[0]]), mode="r:*") as tar:
            for info in tar:
                rel = info.name.removeprefix("./").strip("/")
                if rel in ("", "."):
                    continue
                mode = info.mode & 0o7777
                if info.isdir():
                    entries.append(DebEntry(rel, "dir", mode))
                elif info.issym():
                    entries.append(DebEntry(rel, "symlink", mode, linkname=info.linkname))
                elif info.islnk():
                    target = info.linkname.removeprefix("./")
                    entries.append(DebEntry(rel, "hardlink", mode, linkname=target))
                elif info.isfile():
                    handle = tar.extractfile(info)
                    assert handle is not None
                    entries.append(DebEntry(rel, "file", mode, handle.read()))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DebError(f"{source}: cannot read {names[0]} ({exc})") from None
    return entries


_UPSTREAM = re.compile(r"\d+(?:\.\d+)*")


def apk_version(debian_version: str, *, bump: int = 0) -> str:
    """An apk version for a Debian version: the upstream version's leading ``N.N.N`` and the
    Debian revision's leading number as ``-rN`` (plus ``bump``).

    >>> apk_version("1:1.35.0-4+deb12u1+b1")
    '1.35.0-r4'
    >>> apk_version("1.2.5-3.1~deb13u1", bump=1)
    '1.2.5-r4'
    """
    text = debian_version.split(":", 1)[-1]
    upstream, _, revision = text.rpartition("-") if "-" in text else (text, "", "0")
    match = _UPSTREAM.match(upstream)
    if match is None:
        raise DebError(f"cannot make an apk version from Debian version {debian_version!r}")
    digits = re.match(r"\d+", revision)
    return f"{match.group()}-r{(int(digits.group()) if digits else 0) + bump}"


# --------------------------------------------------------------------------------------------
# the mirror


def _one_line_sources(text: str) -> Iterable[str]:
    for raw in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", raw.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield words[1]


def _deb822_sources(text: str) -> Iterable[str]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" in fields.get("types", "").split():
            yield from fields.get("uris", "").split()


def find_mirror(etc_apt: Path = Path("/etc/apt")) -> str | None:
    """The Debian archive URL the system's apt uses (a URI whose path ends in ``/debian``),
    or ``ALPENGLOW_TEST_DEBIAN_MIRROR`` when set; None when there is none."""
    override = os.environ.get("ALPENGLOW_TEST_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/")
    uris: list[str] = []
    files = [etc_apt / "sources.list"]
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        files.extend(sorted(parts.iterdir()))
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            uris.extend(_deb822_sources(text))
        elif path.name == "sources.list" or path.suffix == ".list":
            uris.extend(_one_line_sources(text))
    for uri in uris:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    return None


# --------------------------------------------------------------------------------------------
# the download


@dataclass(frozen=True, slots=True)
class Downloaded:
    """What a download produced: ``debs[alpine_arch][package]`` is a ``.deb`` path and
    ``versions`` its Debian version; ``skipped[alpine_arch]`` says why an arch is missing."""

    debs: dict[str, dict[str, Path]]
    versions: dict[str, dict[str, str]]
    skipped: dict[str, str]


def _apt_config(work: Path, mirror: str, arches: Sequence[Arch], *, trusted: bool = False) -> Path:
    for sub in ("sources.list.d", "preferences.d", "lists/partial", "archives/partial", "debs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "status").write_text("")
    signed = f" signed-by={_KEYRING}" if _KEYRING.exists() else ""
    if trusted:  # an unsigned local test mirror
        signed = " trusted=yes"
    lines = []
    for suite in dict.fromkeys(a.suite for a in arches):
        names = ",".join(a.debian for a in arches if a.suite == suite)
        extra = " check-valid-until=no" if suite in _UNSTABLE_SUITES else ""
        lines.append(f"deb [arch={names}{signed}{extra}] {mirror} {suite} main\n")
    (work / "sources.list").write_text("".join(lines))
    arch_list = " ".join(f'"{a}";' for a in dict.fromkeys(a.debian for a in arches))
    config = f"""\
Dir::Etc::SourceList "{work}/sources.list";
Dir::Etc::SourceParts "{work}/sources.list.d";
Dir::Etc::Preferences "{work}/preferences";
Dir::Etc::PreferencesParts "{work}/preferences.d";
Dir::State "{work}";
Dir::State::Lists "{work}/lists";
Dir::State::status "{work}/status";
Dir::Cache "{work}";
Dir::Cache::archives "{work}/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Architecture "{arches[0].debian}";
APT::Architectures {{ {arch_list} }};
Acquire::Languages "none";
Acquire::Retries "2";
APT::Sandbox::User "root";
"""
    path = work / "apt.conf"
    path.write_text(config)
    return path


def _run(args: Sequence[str], config: Path, cwd: Path, timeout: int) -> tuple[int, str]:
    env = {
        **os.environ,
        "APT_CONFIG": str(config),
        "LC_ALL": "C",
        "DEBIAN_FRONTEND": "noninteractive",
    }
    try:
        done = subprocess.run(
            list(args),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124, f"{args[0]} timed out after {timeout} s"
    return done.returncode, done.stdout + done.stderr


def _candidates(output: str, native: str) -> dict[tuple[str, str], str]:
    """``apt-cache policy`` output -> {(package, debian arch): candidate version}."""
    found: dict[tuple[str, str], str] = {}
    current: tuple[str, str] | None = None
    for line in output.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            name, _, arch = line[:-1].partition(":")
            current = (name, arch or native)
        elif current is not None and line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version and version != "(none)":
                found[current] = version
    return found


def _problem(update_output: str, arch: Arch) -> str:
    """The first error apt-get update gave for ``arch``'s suite (with its detail line)."""
    lines = update_output.splitlines()
    for number, line in enumerate(lines):
        if line.startswith(("E:", "W:", "Err:")) and f" {arch.suite}" in line:
            detail = lines[number + 1] if number + 1 < len(lines) else ""
            if line.startswith("Err:") and detail[:1].isspace():
                return f"{line.strip()}: {detail.strip()}"
            return line.strip()
    return ""


def _download(
    work: Path,
    mirror: str,
    arches: Sequence[Arch],
    packages: Sequence[str],
    *,
    trusted: bool = False,
) -> Downloaded:
    config = _apt_config(work, mirror, arches, trusted=trusted)
    status, update_out = _run(["apt-get", "update"], config, work, 900)
    _, policy_out = _run(
        ["apt-cache", "policy", *(f"{p}:{a.debian}" for a in arches for p in packages)],
        config,
        work,
        120,
    )
    candidates = _candidates(policy_out, arches[0].debian)
    skipped: dict[str, str] = {}
    wanted: list[tuple[Arch, str, str]] = []
    for arch in arches:
        missing = [p for p in packages if (p, arch.debian) not in candidates]
        if missing:
            problem = _problem(update_out, arch) or "not in the suite's package index"
            skipped[arch.alpine] = (
                f"Debian {arch.suite} has no {', '.join(missing)} for {arch.debian} at {mirror} "
                f"({problem})"
            )
            continue
        wanted.extend((arch, p, candidates[(p, arch.debian)]) for p in packages)
    debs: dict[str, dict[str, Path]] = {}
    versions: dict[str, dict[str, str]] = {}
    if wanted:
        specs = [f"{p}:{a.debian}={v}" for a, p, v in wanted]
        status, out = _run(["apt-get", "download", *specs], config, work / "debs", 900)
        for arch, package, version in wanted:
            hits = sorted((work / "debs").glob(f"{package}_*_{arch.debian}.deb"))
            if status != 0 or not hits:
                last = out.strip().splitlines()[-1:] or [f"exit status {status}"]
                skipped[arch.alpine] = f"apt-get download failed for {arch.debian}: {last[0]}"
                debs.pop(arch.alpine, None)
                versions.pop(arch.alpine, None)
                continue
            if arch.alpine in skipped:
                continue
            debs.setdefault(arch.alpine, {})[package] = hits[-1]
            versions.setdefault(arch.alpine, {})[package] = version
    return Downloaded(debs, versions, skipped)


def fetch_debs(
    cache: Path,
    arches: Sequence[Arch] = ARCHES,
    packages: Sequence[str] = PACKAGES,
    *,
    retry_after: float = 24 * 3600,
) -> Downloaded:
    """The ``.deb`` files of ``packages`` for ``arches``, downloaded once into ``cache``.

    ``cache/manifest.json`` records what was fetched; it is reused as is unless some
    architectures were skipped and it is older than ``retry_after`` seconds, then the whole
    download is tried again (delete ``cache`` to force it). A download that got nothing is
    not recorded. Writes go to a temporary directory renamed into place.
    """
    manifest = cache / "manifest.json"
    previous = _load(manifest, cache)
    if previous is not None and (
        not previous.skipped or time.time() - manifest.stat().st_mtime < retry_after
    ):
        return previous
    mirror = find_mirror()
    if mirror is None:
        reason = "no Debian mirror found in /etc/apt/sources.list(.d)"
        return Downloaded({}, {}, {a.alpine: reason for a in arches})
    if shutil.which("apt-get") is None:
        return Downloaded({}, {}, {a.alpine: "apt-get is not available" for a in arches})
    cache.parent.mkdir(parents=True, exist_ok=True)
    work = Path(_mkdtemp(cache.parent, cache.name))
    try:
        result = _download(work, mirror, arches, packages)
        if not result.debs:  # nothing at all (offline?): not recorded, tried again next time
            return result
        final = cache.with_name(f".{cache.name}.new{os.getpid()}")
        (final / "debs").mkdir(parents=True)
        record: dict[str, object] = {"mirror": mirror, "skipped": result.skipped, "debs": {}}
        debs = record["debs"]
        assert isinstance(debs, dict)
        for alpine, by_package in result.debs.items():
            debs[alpine] = {}
            for package, path in by_package.items():
                os.replace(path, final / "debs" / path.name)
                debs[alpine][package] = [path.name, result.versions[alpine][package]]
        (final / "manifest.json").write_text(json.dumps(record, indent=1, sort_keys=True))
        if cache.exists():
            old = cache.with_name(f".{cache.name}.old{os.getpid()}")
            os.replace(cache, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(final, cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loaded = _load(manifest, cache)
    assert loaded is not None
    return loaded


def _mkdtemp(parent: Path, name: str) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=f".{name}.work", dir=parent)


def _load(manifest: Path, cache: Path) -> Downloaded | None:
    try:
        record = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    debs: dict[str, dict[str, Path]] = {}
    versions: dict[str, dict[str, str]] = {}
    for alpine, by_package in record.get("debs", {}).items():
        for package, (name, version) in by_package.items():
            path = cache / "debs" / name
            if not path.is_file():
                return None
            debs.setdefault(alpine, {})[package] = path
            versions.setdefault(alpine, {})[package] = version
    return Downloaded(debs, versions, dict(record.get("skipped", {})))
