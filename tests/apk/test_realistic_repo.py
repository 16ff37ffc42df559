"""The realistic repository fixture (tests/support): what it holds, that alpenglow's own
``apk verify`` accepts it, that ``alpine-base`` resolves from it over HTTP, and the Debian
helpers it is made with."""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from alpenglow.apk.archive import SYMLINK, TarEntry
from alpenglow.apk.index import Package, load_index_archive
from alpenglow.apk.package import read_package
from alpenglow.apk.signing import Keyring
from tests.support import debian
from tests.support.alpine_repo import BRANCH, OLD_BRANCH, RealisticRepo, realistic_repository
from tests.support.mirror import Mirror, serve

ALPENGLOW = Path(sys.executable).parent / "alpenglow"
ARCH_NAMES = [a.alpine for a in debian.ARCHES]
ARCHES_BY_NAME = {a.alpine: a for a in debian.ARCHES}
BASE_SET = [
    "alpine-baselayout-data",
    "alpine-baselayout",
    "alpine-keys",
    "alpine-release",
    "musl",
    "busybox",
    "busybox-binsh",
    "ca-certificates-bundle",
    "alpine-base",
]
# ELF e_machine of each architecture
MACHINE = {
    "x86_64": 62,
    "x86": 3,
    "aarch64": 183,
    "armv7": 40,
    "armhf": 40,
    "ppc64le": 21,
    "s390x": 22,
    "riscv64": 243,
    "loongarch64": 258,
}


def need(repo: RealisticRepo, arch: str) -> None:
    if arch not in repo.arches:
        pytest.skip(f"{arch}: {repo.skipped.get(arch, 'not built')}")


def index(repo: RealisticRepo, arch: str, branch: str = BRANCH) -> dict[str, list[Package]]:
    data = (repo.arch_dir(arch, branch) / "APKINDEX.tar.gz").read_bytes()
    archive = load_index_archive(data, Keyring.from_directory(repo.keys_dir), source=arch)
    assert archive.key_name == repo.key_name
    by_name: dict[str, list[Package]] = {}
    for pkg in archive.packages:
        by_name.setdefault(pkg.name, []).append(pkg)
    return by_name


def elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF"
    return int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")


def apk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ALPENGLOW), "apk", *args], capture_output=True, text=True, timeout=120, check=False
    )


# --------------------------------------------------------------------------------------------
# contents


def test_every_index_and_package_verifies_with_apk_verify(realistic_repo: RealisticRepo) -> None:
    files = sorted(str(p) for p in realistic_repo.mirror.rglob("*") if p.is_file())
    assert len(files) >= 2 * len(realistic_repo.arches)
    done = apk("--keys-dir", str(realistic_repo.keys_dir), "verify", *files)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{f}: OK" for f in files]


def test_an_index_is_refused_without_the_key(realistic_repo: RealisticRepo, tmp_path: Path) -> None:
    arch = realistic_repo.arches[0]
    target = realistic_repo.arch_dir(arch) / "APKINDEX.tar.gz"
    done = apk("--keys-dir", str(tmp_path), "verify", str(target))
    assert done.returncode != 0
    assert f"signed by {realistic_repo.key_name}, which is not in {tmp_path}" in done.stdout


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_index_records(realistic_repo: RealisticRepo, arch: str) -> None:
    need(realistic_repo, arch)
    packages = index(realistic_repo, arch)
    assert sorted(packages) == sorted(BASE_SET)
    newest = {name: versions[-1] for name, versions in packages.items()}
    musl = newest["musl"]
    assert [str(p) for p in musl.provides] == [f"so:libc.musl-{arch}.so.1=1"]
    busybox = newest["busybox"]
    provided = {p.name for p in busybox.provides}
    assert {"cmd:busybox", "cmd:ls", "cmd:cat"} <= provided
    assert "cmd:sh" not in provided
    assert [str(d) for d in busybox.depends] == [f"so:libc.musl-{arch}.so.1"]
    binsh = newest["busybox-binsh"]
    assert [str(p) for p in binsh.provides] == ["/bin/sh", f"cmd:sh={binsh.version}"]
    assert binsh.provider_priority == 100
    assert [str(d) for d in binsh.depends] == [f"busybox={busybox.version}"]
    assert newest["alpine-base"].installed_size == 0  # a meta package
    assert {p.arch for p in packages["alpine-keys"] + packages["ca-certificates-bundle"]} == {
        "noarch"
    }
    assert {p.arch for n in ("musl", "busybox") for p in packages[n]} == {arch}
    two = {name for name, versions in packages.items() if len(versions) == 2}
    assert two == {
        "alpine-base",
        "alpine-baselayout",
        "alpine-baselayout-data",
        "alpine-release",
        "busybox",
        "busybox-binsh",
    }
    for pkg in (p for versions in packages.values() for p in versions):
        blob = (realistic_repo.arch_dir(arch) / f"{pkg}.apk").read_bytes()
        assert pkg.size == len(blob)


def test_old_branch_holds_the_older_version_of_each(realistic_repo: RealisticRepo) -> None:
    arch = realistic_repo.arches[0]
    latest = index(realistic_repo, arch)
    old = index(realistic_repo, arch, OLD_BRANCH)
    assert sorted(old) == sorted(latest)
    for name, versions in old.items():
        assert [p.checksum for p in versions] == [latest[name][0].checksum]
    assert realistic_repo.versions("alpine-baselayout", arch) == ["3.6.5-r0", "3.6.8-r1"]


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_binaries_are_for_their_architecture(realistic_repo: RealisticRepo, arch: str) -> None:
    need(realistic_repo, arch)
    keys = Keyring.from_directory(realistic_repo.keys_dir)
    for name in ("busybox", "musl"):
        path = realistic_repo.apk(name, arch)
        pkg = read_package(path.read_bytes(), keys, source=str(path))
        assert pkg.key_name == realistic_repo.key_name
        entries = {e.path.rstrip("/"): e for e in pkg.entries()}
        assert not [p for p in entries if p.startswith("usr/")], "merged-usr paths mapped back"
        if name == "busybox":
            binary = entries["bin/busybox"]
            assert stat.S_IMODE(binary.mode) == 0o755
            applets = entries["etc/busybox-paths.d/busybox"].data.decode().splitlines()
            assert "/bin/sh" in applets
            assert "/bin/ls" in applets
            assert all(
                a.startswith(("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/")) for a in applets
            )
            assert applets == list(realistic_repo.applets[arch])
            assert {s[0] for s in pkg.scripts} == {".post-install", ".post-upgrade", ".trigger"}
            assert pkg.info.triggers == ("/bin", "/usr/bin", "/sbin", "/usr/sbin", "/lib/modules/*")
        else:
            loaders = [p for p in entries if p.startswith("lib/ld-musl-")]
            assert len(loaders) == 1
            binary = entries[loaders[0]]
            link = entries[f"lib/libc.musl-{arch}.so.1"]
            assert link.type == SYMLINK
            assert link.linkname == loaders[0].removeprefix("lib/")
        assert elf_machine(binary.data) == MACHINE[arch]


def test_baselayout_release_and_keys_look_like_alpines(realistic_repo: RealisticRepo) -> None:
    arch = realistic_repo.arches[0]
    keys = Keyring.from_directory(realistic_repo.keys_dir)

    def entries(name: str, version: str | None = None) -> dict[str, TarEntry]:
        path = realistic_repo.apk(name, arch, version)
        pkg = read_package(path.read_bytes(), keys, source=str(path))
        return {e.path.rstrip("/"): e for e in pkg.entries()}

    old_data, new_data = (entries("alpine-baselayout-data", v) for v in ("3.6.5-r0", "3.6.8-r1"))
    passwd = new_data["etc/passwd"]
    assert passwd.data.startswith(b"root:x:0:0:root:/root:/bin/sh\n")
    assert b"\nshadow:x:42:\n" in new_data["etc/group"].data
    shadow = new_data["etc/shadow"]
    assert (shadow.gid, shadow.gname, stat.S_IMODE(shadow.mode)) == (42, "shadow", 0o640)
    assert "etc/sysctl.conf" in old_data
    assert "etc/sysctl.conf" not in new_data
    assert "etc/nsswitch.conf" in new_data
    assert "etc/nsswitch.conf" not in old_data
    layout = entries("alpine-baselayout")
    modes = {p: stat.S_IMODE(layout[p].mode) for p in ("tmp", "var/tmp", "root", "proc")}
    assert modes == {"tmp": 0o1777, "var/tmp": 0o1777, "root": 0o700, "proc": 0o555}
    assert layout["var/run"].linkname == "../run"
    old_release, new_release = (entries("alpine-release", v) for v in ("3.20.3-r0", "3.21.0-r0"))
    assert b"VERSION_ID=3.20.3" in old_release["etc/os-release"].data
    assert new_release["etc/os-release"].linkname == "../usr/lib/os-release"
    key = entries("alpine-keys")[f"etc/apk/keys/{realistic_repo.key_name}"]
    assert key.data == (realistic_repo.keys_dir / realistic_repo.key_name).read_bytes()
    bundle = entries("ca-certificates-bundle")
    assert bundle["etc/ssl/certs/ca-certificates.crt"].data.count(b"BEGIN CERTIFICATE") == 2
    assert bundle["etc/ssl/cert.pem"].linkname == "certs/ca-certificates.crt"


# --------------------------------------------------------------------------------------------
# resolving and serving


def simulate(repository: str, repo: RealisticRepo, root: Path, arch: str = "x86_64") -> str:
    done = apk(
        "--root",
        str(root),
        "--arch",
        arch,
        "-X",
        repository,
        "--keys-dir",
        str(repo.keys_dir),
        "--cache-dir",
        str(root.parent / "cache"),
        "--initdb",
        "--simulate",
        "add",
        "alpine-base",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def expected_plan(repo: RealisticRepo, arch: str, branch: str = BRANCH) -> list[str]:
    newest = {name: versions[-1].version for name, versions in index(repo, arch, branch).items()}
    return [
        f"({i}/{len(BASE_SET)}) Installing {name} ({newest[name]})"
        for i, name in enumerate(BASE_SET, 1)
    ]


def test_alpine_base_resolves_from_the_http_mirror(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    need(realistic_repo, "x86_64")
    (tmp_path / "root").mkdir()
    out = simulate(alpine_mirror.repository(BRANCH), realistic_repo, tmp_path / "root")
    lines = out.splitlines()
    assert lines[:-1] == expected_plan(realistic_repo, "x86_64")
    assert lines[-1].startswith("OK: ")
    assert lines[-1].endswith(f"in {len(BASE_SET)} packages")
    assert f"/alpine/{BRANCH}/main/x86_64/APKINDEX.tar.gz" in alpine_mirror.requests


def test_alpine_base_resolves_from_the_old_branch_as_a_plain_path(
    realistic_repo: RealisticRepo, tmp_path: Path
) -> None:
    arch = realistic_repo.arches[-1]
    (tmp_path / "root").mkdir()
    out = simulate(str(realistic_repo.base(OLD_BRANCH)), realistic_repo, tmp_path / "root", arch)
    assert out.splitlines()[:-1] == expected_plan(realistic_repo, arch, OLD_BRANCH)
    assert "Installing alpine-baselayout (3.6.5-r0)" in out


def test_mirror_serves_the_tree(realistic_repo: RealisticRepo, alpine_mirror: Mirror) -> None:
    arch = realistic_repo.arches[0]
    path = f"/alpine/{BRANCH}/main/{arch}/APKINDEX.tar.gz"
    with urllib.request.urlopen(alpine_mirror.url + path, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Last-Modified"]
        body = response.read()
    assert body == (realistic_repo.arch_dir(arch) / "APKINDEX.tar.gz").read_bytes()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(
            alpine_mirror.url + "/alpine/v0.0/main/x/APKINDEX.tar.gz", timeout=10
        )
    assert missing.value.code == 404
    assert alpine_mirror.url.startswith("http://127.0.0.1:")


def test_the_built_repository_is_reused(realistic_repo: RealisticRepo) -> None:
    started = time.perf_counter()
    again = realistic_repository(realistic_repo.path.parent)
    assert again.path == realistic_repo.path
    assert time.perf_counter() - started < 5
    manifest = json.loads((realistic_repo.path / "manifest.json").read_text())
    assert manifest["arches"] == list(realistic_repo.arches)


# --------------------------------------------------------------------------------------------
# Debian helpers (offline)


def ar_archive(members: list[tuple[str, bytes]]) -> bytes:
    out = [b"!<arch>\n"]
    for name, body in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n"
        out.append(header.encode() + body + (b"\n" if len(body) % 2 else b""))
    return b"".join(out)


def data_tar_xz(files: dict[str, bytes | str]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo("./" + name)
            if isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content
                tar.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o755
                tar.addfile(info, io.BytesIO(content))
    return lzma.compress(raw.getvalue())


def test_read_ar_members_with_odd_sizes() -> None:
    data = ar_archive([("debian-binary", b"2.0\n"), ("odd", b"abc"), ("last", b"xy")])
    assert debian.read_ar(data, source="t") == {
        "debian-binary": b"2.0\n",
        "odd": b"abc",
        "last": b"xy",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04", "not an ar archive"),
        (b"!<arch>\nshort", "bad ar member header"),
        (ar_archive([("a", b"abcdef")])[:-3], "truncated"),
        (ar_archive([("a", b"x")]).replace(b"1         `", b"zz        `"), "bad ar member size"),
    ],
)
def test_read_ar_rejects_bad_archives(data: bytes, message: str) -> None:
    with pytest.raises(debian.DebError, match=message):
        debian.read_ar(data, source="bad.deb")


def test_deb_data_reads_the_xz_data_member(tmp_path: Path) -> None:
    data = data_tar_xz({"usr/bin/busybox": b"\x7fELF...", "usr/lib/ld-musl-x.so.1": "libc.so"})
    deb = tmp_path / "p.deb"
    deb.write_bytes(
        ar_archive([("debian-binary", b"2.0\n"), ("control.tar.xz", b""), ("data.tar.xz", data)])
    )
    entries = debian.deb_data(deb)
    assert [(e.path, e.kind, e.data, e.linkname) for e in entries] == [
        ("usr/bin/busybox", "file", b"\x7fELF...", ""),
        ("usr/lib/ld-musl-x.so.1", "symlink", b"", "libc.so"),
    ]
    deb.write_bytes(ar_archive([("debian-binary", b"2.0\n"), ("data.tar.zst", b"")]))
    with pytest.raises(debian.DebError, match="zstd"):
        debian.deb_data(deb)
    deb.write_bytes(ar_archive([("debian-binary", b"2.0\n"), ("data.tar.xz", b"junk")]))
    with pytest.raises(debian.DebError, match=r"cannot read data\.tar\.xz"):
        debian.deb_data(deb)


@pytest.mark.parametrize(
    ("version", "bump", "expected"),
    [
        ("1:1.35.0-4+deb12u1+b1", 0, "1.35.0-r4"),
        ("1:1.35.0-4+deb12u1+b1", 1, "1.35.0-r5"),
        ("1.2.5-3.1~deb13u1", 0, "1.2.5-r3"),
        ("1.2.6-2", 0, "1.2.6-r2"),
        ("20230311", 0, "20230311-r0"),
    ],
)
def test_apk_version_from_debian(version: str, bump: int, expected: str) -> None:
    assert debian.apk_version(version, bump=bump) == expected


def test_find_mirror_reads_both_source_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALPENGLOW_TEST_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    assert debian.find_mirror(tmp_path) is None
    (tmp_path / "sources.list.d" / "a.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: x\n\n"
        "Types: deb-src\nURIs: http://src.invalid/debian\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://off.invalid/debian\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian/\nSuites: bookworm\n"
    )
    assert debian.find_mirror(tmp_path) == "http://mirror.invalid/debian"
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://first.invalid/debian bookworm main\n"
    )
    assert debian.find_mirror(tmp_path) == "http://first.invalid/debian"
    monkeypatch.setenv("ALPENGLOW_TEST_DEBIAN_MIRROR", "http://override.invalid/debian/")
    assert debian.find_mirror(tmp_path) == "http://override.invalid/debian"


def test_policy_output_gives_candidates() -> None:
    output = (
        "busybox-static:\n  Installed: (none)\n  Candidate: 1:1.35.0-4\n"
        "musl:loong64:\n  Installed: (none)\n  Candidate: (none)\n"
        "musl:riscv64:\n  Candidate: 1.2.5-3\n  Version table:\n"
    )
    assert debian._candidates(output, "amd64") == {
        ("busybox-static", "amd64"): "1:1.35.0-4",
        ("musl", "riscv64"): "1.2.5-3",
    }


def test_downloaded_debs_are_reused_and_a_failed_arch_retried_later(tmp_path: Path) -> None:
    cache = tmp_path / "debian"
    (cache / "debs").mkdir(parents=True)
    (cache / "debs" / "musl_1_amd64.deb").write_bytes(b"x")
    manifest = {
        "mirror": "http://mirror.invalid/debian",
        "debs": {"x86_64": {"musl": ["musl_1_amd64.deb", "1-1"]}},
        "skipped": {"riscv64": "unreachable"},
    }
    (cache / "manifest.json").write_text(json.dumps(manifest))
    got = debian.fetch_debs(cache, packages=("musl",))
    assert got.debs == {"x86_64": {"musl": cache / "debs" / "musl_1_amd64.deb"}}
    assert got.versions == {"x86_64": {"musl": "1-1"}}
    assert got.skipped == {"riscv64": "unreachable"}
    # a deb gone from the cache makes the manifest unusable
    os.unlink(cache / "debs" / "musl_1_amd64.deb")
    assert debian._load(cache / "manifest.json", cache) is None


def fake_debian_mirror(base: Path) -> dict[str, bytes]:
    """An unsigned Debian archive: bookworm has both packages for amd64 but only musl for
    i386; trixie does not exist at all. Returns the .deb bytes by file name."""
    debs: dict[str, bytes] = {}
    stanzas: dict[str, list[str]] = {"amd64": [], "i386": []}
    for package, arch in (("busybox-static", "amd64"), ("musl", "amd64"), ("musl", "i386")):
        version = "1:1.35.0-4" if package == "busybox-static" else "1.2.3-1"
        data = data_tar_xz({f"bin/{package}": f"{package} {arch}".encode()})
        blob = ar_archive([("debian-binary", b"2.0\n"), ("data.tar.xz", data)])
        name = f"{package}_{version.rsplit(':', maxsplit=1)[-1]}_{arch}.deb"
        pool = base / "pool" / "main" / name
        pool.parent.mkdir(parents=True, exist_ok=True)
        pool.write_bytes(blob)
        debs[name] = blob
        stanzas[arch].append(
            f"Package: {package}\nVersion: {version}\nArchitecture: {arch}\n"
            f"Maintainer: Tests <tests@example.org>\nFilename: pool/main/{name}\n"
            f"Size: {len(blob)}\nSHA256: {hashlib.sha256(blob).hexdigest()}\n"
            f"Description: {package}\n"
        )
    checksums = []
    dists = base / "dists" / "bookworm"
    for arch, items in stanzas.items():
        text = "\n".join(items).encode()
        rel = f"main/binary-{arch}/Packages"
        (dists / rel).parent.mkdir(parents=True)
        (dists / rel).write_bytes(text)
        checksums.append(f" {hashlib.sha256(text).hexdigest()} {len(text)} {rel}")
    (dists / "Release").write_text(
        "Origin: Tests\nSuite: stable\nCodename: bookworm\n"
        "Date: Sun, 01 Nov 2026 00:00:00 UTC\nArchitectures: amd64 i386\nComponents: main\n"
        "SHA256:\n" + "\n".join(checksums) + "\n"
    )
    return debs


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not installed")
def test_private_apt_download_skips_what_a_mirror_lacks(tmp_path: Path) -> None:
    """The real apt-get path against a local unsigned mirror: one arch downloads, one lacks
    a package, one's suite is unreachable; nothing of the system's apt is used."""
    expected = fake_debian_mirror(tmp_path / "mirror" / "debian")
    wanted = [ARCHES_BY_NAME[a] for a in ("x86_64", "x86", "riscv64")]
    with serve(tmp_path / "mirror") as mirror:
        url = f"{mirror.url}/debian"
        got = debian._download(tmp_path / "work", url, wanted, debian.PACKAGES, trusted=True)
    assert sorted(got.debs) == ["x86_64"]
    assert {p: path.read_bytes() for p, path in got.debs["x86_64"].items()} == {
        "busybox-static": expected["busybox-static_1.35.0-4_amd64.deb"],
        "musl": expected["musl_1.2.3-1_amd64.deb"],
    }
    assert got.versions == {"x86_64": {"busybox-static": "1:1.35.0-4", "musl": "1.2.3-1"}}
    assert sorted(got.skipped) == ["riscv64", "x86"]
    assert got.skipped["x86"] == (
        f"Debian bookworm has no busybox-static for i386 at {url} "
        "(not in the suite's package index)"
    )
    reason = got.skipped["riscv64"]
    assert reason.startswith(f"Debian trixie has no busybox-static, musl for riscv64 at {url} (")
    assert "trixie" in reason.split("(", 1)[1]
    assert "404" in reason


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not installed")
def test_a_download_that_gets_nothing_is_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    with serve(tmp_path / "empty") as mirror:
        monkeypatch.setenv("ALPENGLOW_TEST_DEBIAN_MIRROR", f"{mirror.url}/debian")
        got = debian.fetch_debs(tmp_path / "cache", [ARCHES_BY_NAME["x86_64"]])
    assert got.debs == {}
    assert list(got.skipped) == ["x86_64"]
    assert got.skipped["x86_64"].startswith(
        f"Debian bookworm has no busybox-static, musl for amd64 at {mirror.url}/debian ("
    )
    assert not (tmp_path / "cache").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]  # no work directory left behind
