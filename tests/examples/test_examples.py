"""The examples: every image configuration in ``examples/`` loads, the shell scripts are sound,
and ``examples/make-local-repo.sh`` builds a signed multi-architecture repository that
``alpenglow build`` turns into an image, all offline.

The script normally downloads Debian's ``busybox-static``, ``musl`` and ``ca-certificates``.
Here its download directory is filled beforehand with the ``.deb`` files the realistic test
repository already fetched (tests/support/debian.py) and a ``ca-certificates`` package made with
``dpkg-deb``, and ``DEBIAN_MIRROR`` points at a closed local port, so nothing can reach the
network: what is tested is everything after the download.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from alpenglow.build.config import BuildConfig, load_config
from alpenglow.oci.platform import ALL_ARCHES
from tests.support import debian
from tests.support.alpine_repo import RealisticRepo

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SCRIPT = EXAMPLES / "make-local-repo.sh"
DEMO = REPO / "scripts" / "demo"
ALPENGLOW = Path(sys.executable).parent / "alpenglow"
CLOSED_MIRROR = "http://127.0.0.1:9/debian"  # the discard port: nothing listens there

OFFICIAL = ("alpine-official.yaml", "python.yaml", "nginx.yaml", "docker-cli.yaml")
ALPINE_322 = (  # `apk info` in the official alpine:3.22 image
    "alpine-baselayout",
    "alpine-baselayout-data",
    "alpine-keys",
    "alpine-release",
    "apk-tools",
    "busybox",
    "busybox-binsh",
    "ca-certificates-bundle",
    "libapk2",
    "libcrypto3",
    "libssl3",
    "musl",
    "musl-utils",
    "scanelf",
    "ssl_client",
    "zlib",
)
# The key that signs each architecture's index on Alpine's mirrors (v3.22).
ALPINE_KEY = {
    "x86_64": "6165ee59",
    "x86": "61666e3f",
    "aarch64": "616ae350",
    "armv7": "616adfeb",
    "armhf": "616a9724",
    "ppc64le": "616abc23",
    "s390x": "616ac3bc",
    "riscv64": "616db30d",
    "loongarch64": "66ba20fe",
}
LOCAL_PACKAGES = {
    "alpine-base",
    "alpine-baselayout",
    "alpine-baselayout-data",
    "alpine-keys",
    "alpine-release",
    "busybox",
    "busybox-binsh",
    "ca-certificates-bundle",
    "musl",
}
LOADER = {a.alpine: a.loader for a in debian.ARCHES}
DEBIAN_ARCH = {a.alpine: a.debian for a in debian.ARCHES}


# -- the configurations ------------------------------------------------------------------------


def _key_url(arch: str) -> str:
    return f"https://alpinelinux.org/keys/alpine-devel@lists.alpinelinux.org-{ALPINE_KEY[arch]}.rsa.pub"


def test_every_example_config_is_covered() -> None:
    names = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert names == {"alpine-base.yaml", *OFFICIAL}


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_mirror_configs_load(name: str) -> None:
    config = load_config(EXAMPLES / name)
    assert config.packages
    assert all(
        r.startswith("https://dl-cdn.alpinelinux.org/alpine/v3.22/") for r in config.repositories
    )
    # every architecture the file builds by default can verify its index
    for arch in config.archs or ALL_ARCHES:
        assert _key_url(arch) in config.keyring, arch


def test_alpine_official_has_the_official_image_packages() -> None:
    config = load_config(EXAMPLES / "alpine-official.yaml")
    assert config.packages == ALPINE_322
    assert config.archs == ()  # the machine's, or --arch all: every key is in the keyring
    assert set(config.keyring) == {_key_url(a) for a in ALL_ARCHES}
    assert config.cmd == ("/bin/sh",)


def test_nginx_runs_as_its_own_user() -> None:
    config = load_config(EXAMPLES / "nginx.yaml")
    assert "nginx" in config.packages
    assert config.entrypoint == ("nginx", "-g", "daemon off;")
    assert config.accounts.run_as == "nginx"
    (user,) = config.accounts.users
    (group,) = config.accounts.groups
    assert (user.username, user.uid, user.gid, group.groupname, group.gid) == (
        "nginx",
        101,
        101,
        "nginx",
        101,
    )
    owned = {p.path: (p.uid, p.gid) for p in config.paths}
    assert owned["/run/nginx"] == owned["/var/lib/nginx"] == owned["/var/log/nginx"] == (101, 101)
    copied = {f.destination: f.source for f in config.files}
    assert copied["/etc/nginx/http.d/default.conf"] == EXAMPLES / "nginx" / "default.conf"
    assert "listen 8080" in copied["/etc/nginx/http.d/default.conf"].read_text()
    assert copied["/usr/share/nginx/html/index.html"].is_file()


def test_python_and_docker_cli() -> None:
    python = load_config(EXAMPLES / "python.yaml")
    assert "python3" in python.packages
    assert python.entrypoint == ("/usr/bin/python3",)
    assert python.accounts.run_as == "python"
    assert python.work_dir == "/home/python"
    docker = load_config(EXAMPLES / "docker-cli.yaml")
    assert "docker-cli" in docker.packages
    assert any(r.endswith("/v3.22/community") for r in docker.repositories)
    assert docker.entrypoint == ("/usr/bin/docker",)


def _public_key() -> bytes:
    from alpenglow.apk.signing import generate_keypair

    return generate_keypair(2048)[1]


def test_alpine_base_config_points_at_the_local_repository(tmp_path: Path) -> None:
    """Its paths are relative to its own directory: ``local/`` is make-local-repo.sh's
    default output."""
    shutil.copy(EXAMPLES / "alpine-base.yaml", tmp_path / "alpine-base.yaml")
    (tmp_path / "local" / "keys").mkdir(parents=True)
    (tmp_path / "local" / "keys" / "alpenglow-local.rsa.pub").write_bytes(_public_key())
    config = load_config(tmp_path / "alpine-base.yaml")
    assert config.repositories == (str(tmp_path / "local" / "repo"),)
    assert config.keyring == (str(tmp_path / "local" / "keys" / "alpenglow-local.rsa.pub"),)
    assert config.packages == ("alpine-base",)
    assert config.cmd == ("/bin/sh",)


# -- the scripts -------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [SCRIPT, DEMO], ids=["make-local-repo.sh", "demo"])
def test_script_parses(script: Path) -> None:
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("script", [SCRIPT, DEMO], ids=["make-local-repo.sh", "demo"])
def test_script_passes_shellcheck(script: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    done = subprocess.run(
        ["shellcheck", "--shell=bash", str(script)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout


def run_script(
    out: Path, arches: str, mirror: str = CLOSED_MIRROR
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ARCHES": arches,
        "ALPENGLOW": str(ALPENGLOW),
        "DEBIAN_MIRROR": mirror,
        "LC_ALL": "C",
    }
    return subprocess.run(
        ["bash", str(SCRIPT), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_unknown_architecture_is_a_usage_error(tmp_path: Path) -> None:
    done = run_script(tmp_path / "out", "vax")
    assert done.returncode == 2
    assert done.stderr.strip() == "ERROR: ARCHES=vax names no known architecture"
    assert not (tmp_path / "out" / "downloads").exists()


# -- the script, run offline -------------------------------------------------------------------


def _ca_deb(directory: Path) -> Path:
    """A ``ca-certificates`` package like Debian's: CA certificates one file each under
    ``usr/share/ca-certificates/mozilla``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    tree = directory / "ca-tree"
    certs = tree / "usr" / "share" / "ca-certificates" / "mozilla"
    certs.mkdir(parents=True)
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    for number in (1, 2):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Example Root CA {number}")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(number)
            .not_valid_before(start)
            .not_valid_after(start.replace(year=2045))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        (certs / f"Example_Root_CA_{number}.crt").write_bytes(pem)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(
        "Package: ca-certificates\nVersion: 20250101\nArchitecture: all\n"
        "Maintainer: Alpenglow Tests <tests@example.org>\n"
        "Description: two example CA certificates\n"
    )
    deb = directory / "ca-certificates_20250101_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)],
        capture_output=True,
        check=True,
    )
    shutil.rmtree(tree)
    return deb


@dataclass(frozen=True, slots=True)
class LocalRepo:
    out: Path
    arches: tuple[str, ...]
    first_run: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def local_repo(
    realistic_repo: RealisticRepo, tmp_path_factory: pytest.TempPathFactory
) -> LocalRepo:
    """make-local-repo.sh run once over the already downloaded ``.deb`` files (x86_64 and,
    when there, aarch64: one architecture whose busybox runs through qemu-user)."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed (the script unpacks .deb files with it)")
    manifests = sorted(
        realistic_repo.path.parent.glob("debian-*/manifest.json"), key=lambda p: p.stat().st_mtime
    )
    if not manifests:
        pytest.skip("no downloaded Debian packages in the realistic repository's cache")
    debs = debian.fetch_debs(manifests[-1].parent, retry_after=math.inf)
    arches = tuple(a for a in ("x86_64", "aarch64") if a in debs.debs)
    if "x86_64" not in arches:
        pytest.skip(f"Debian's amd64 packages were not downloaded: {debs.skipped.get('x86_64')}")
    out = tmp_path_factory.mktemp("examples") / "local"
    for arch in arches:
        target = out / "downloads" / DEBIAN_ARCH[arch]
        target.mkdir(parents=True)
        for path in debs.debs[arch].values():
            shutil.copy(path, target / path.name)
    (out / "downloads" / "all").mkdir()
    _ca_deb(out / "downloads" / "all")
    done = run_script(out, " ".join(arches))
    assert done.returncode == 0, done.stdout + done.stderr
    return LocalRepo(out, arches, done)


def _members(apk: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(apk, "r:gz", ignore_zeros=True) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(apk: Path, name: str) -> bytes:
    with tarfile.open(apk, "r:gz", ignore_zeros=True) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def _only(directory: Path, name: str) -> Path:
    (found,) = list(directory.glob(f"{name}-[0-9]*.apk"))
    return found


def test_offline_run_builds_and_verifies_every_architecture(local_repo: LocalRepo) -> None:
    out, stdout = local_repo.out, local_repo.first_run.stdout
    assert "all downloaded already" in stdout  # nothing was fetched
    assert f"repository: {out}/repo ({' '.join(local_repo.arches)})" in stdout
    assert "SKIPPED" not in stdout
    assert sorted(p.name for p in (out / "keys").iterdir()) == ["alpenglow-local.rsa.pub"]
    assert (out / "private" / "alpenglow-local.rsa").stat().st_mode & 0o077 == 0
    assert not (out / ".work").exists()
    assert not (out / "apt").exists() or not (out / "apt" / "lists").exists()
    for arch in local_repo.arches:
        directory = out / "repo" / arch
        apks = sorted(directory.glob("*.apk"))
        assert {p.name.rsplit("-", 2)[0] for p in apks} == LOCAL_PACKAGES
        done = subprocess.run(
            [
                str(ALPENGLOW),
                "apk",
                "--keys-dir",
                str(out / "keys"),
                "verify",
                *map(str, apks),
                str(directory / "APKINDEX.tar.gz"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_packages_are_laid_out_as_alpine_s(local_repo: LocalRepo) -> None:
    out = local_repo.out
    public = (out / "keys" / "alpenglow-local.rsa.pub").read_bytes()
    for arch in local_repo.arches:
        directory = out / "repo" / arch
        musl = _members(_only(directory, "musl"))
        loader = musl[f"lib/{LOADER[arch]}"]
        assert loader.isfile()
        assert loader.mode & 0o777 == 0o755
        assert musl[f"lib/libc.musl-{arch}.so.1"].linkname == LOADER[arch]
        busybox = _only(directory, "busybox")
        applets = _read(busybox, "etc/busybox-paths.d/busybox").decode().split()
        assert {"/bin/ls", "/bin/sh", "/usr/bin/wget"} <= set(applets)
        assert len(applets) > 100
        assert all(a.startswith(("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/")) for a in applets)
        assert {".post-install", ".post-upgrade", ".trigger"} <= set(_members(busybox))
        binsh = _members(_only(directory, "busybox-binsh"))
        assert binsh["bin/sh"].linkname == "/bin/busybox"
        keys = _only(directory, "alpine-keys")
        assert _read(keys, "etc/apk/keys/alpenglow-local.rsa.pub") == public
        ca = _read(_only(directory, "ca-certificates-bundle"), "etc/ssl/certs/ca-certificates.crt")
        assert ca.count(b"BEGIN CERTIFICATE") == 2
        release = _only(directory, "alpine-release")
        assert _members(release)["etc/os-release"].linkname == "../usr/lib/os-release"
        assert b"ID=alpine" in _read(release, "usr/lib/os-release")
        layout = _members(_only(directory, "alpine-baselayout"))
        assert layout["tmp"].mode & 0o7777 == 0o1777
        assert layout["root"].mode & 0o777 == 0o700
        assert all(m.uid == 0 and m.gid == 0 for m in layout.values())


def test_generated_config_builds_an_image_for_every_architecture(
    local_repo: LocalRepo, tmp_path: Path
) -> None:
    out = local_repo.out
    config: BuildConfig = load_config(out / "alpine-base.yaml")
    assert config.repositories == (str(out / "repo"),)
    assert config.keyring == (str(out / "keys" / "alpenglow-local.rsa.pub"),)
    env = {
        **os.environ,
        "ALPENGLOW_STORE": str(tmp_path / "store"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    layout = tmp_path / "layout"
    done = subprocess.run(
        [
            str(ALPENGLOW),
            "build",
            str(out / "alpine-base.yaml"),
            "--arch",
            "all",
            "-o",
            f"oci:{layout}:latest",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    index = json.loads((layout / "index.json").read_text())
    (root,) = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest"
    ]
    algorithm, digest = root["digest"].split(":")
    image_index = json.loads((layout / "blobs" / algorithm / digest).read_text())
    platforms = {
        m["platform"]["architecture"]
        for m in image_index["manifests"]
        if m.get("platform", {}).get("os") == "linux"
    }
    expected = {"x86_64": "amd64", "aarch64": "arm64"}
    assert platforms == {expected[a] for a in local_repo.arches}
    # the amd64 layer holds busybox's applet links and the loader under Alpine's name
    (amd64,) = [m for m in image_index["manifests"] if m["platform"]["architecture"] == "amd64"]
    manifest = json.loads((layout / "blobs" / "sha256" / amd64["digest"][7:]).read_text())
    (layer,) = manifest["layers"]
    data = (layout / "blobs" / "sha256" / layer["digest"][7:]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = {m.name.removeprefix("./"): m for m in tar.getmembers()}
    assert names["bin/ls"].linkname == "/bin/busybox"
    assert names["bin/sh"].linkname == "/bin/busybox"
    assert names["lib/ld-musl-x86_64.so.1"].isfile()
    assert "etc/alpine-release" in names


def test_second_run_reuses_everything(local_repo: LocalRepo, tmp_path: Path) -> None:
    out = tmp_path / "local"
    shutil.copytree(local_repo.out, out, symlinks=True)
    indexes = {a: (out / "repo" / a / "APKINDEX.tar.gz").read_bytes() for a in local_repo.arches}
    key = (out / "private" / "alpenglow-local.rsa").read_bytes()
    done = run_script(out, " ".join(local_repo.arches))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all downloaded already" in done.stdout
    assert "reusing" in done.stdout
    for arch in local_repo.arches:
        assert f"== {arch}: up to date" in done.stdout
        assert (out / "repo" / arch / "APKINDEX.tar.gz").read_bytes() == indexes[arch]
    assert (out / "private" / "alpenglow-local.rsa").read_bytes() == key


def test_a_broken_download_skips_only_its_architecture(
    local_repo: LocalRepo, tmp_path: Path
) -> None:
    if "aarch64" not in local_repo.arches:
        pytest.skip("needs a second architecture")
    out = tmp_path / "local"
    shutil.copytree(local_repo.out, out, symlinks=True)
    shutil.rmtree(out / "repo" / "aarch64")
    (busybox,) = (out / "downloads" / "arm64").glob("busybox-static_*.deb")
    busybox.write_bytes(b"!<arch>\nnot a Debian package at all\n")
    done = run_script(out, "x86_64 aarch64")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SKIPPED aarch64: cannot unpack its .debs" in done.stdout
    assert "== x86_64: up to date" in done.stdout
    assert "skipped:    aarch64" in done.stdout
    assert not (out / "repo" / "aarch64").exists()
    assert not (out / "repo" / "aarch64.new").exists()


def test_an_unreachable_mirror_skips_the_missing_architecture(
    local_repo: LocalRepo, tmp_path: Path
) -> None:
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not installed")
    out = tmp_path / "local"
    shutil.copytree(local_repo.out, out, symlinks=True)
    done = run_script(out, "x86_64 s390x")  # no s390x .debs: apt asks the closed port
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"apt-get update from {CLOSED_MIRROR}" in done.stdout
    assert "SKIPPED s390x: Debian bookworm gave no busybox-static/musl for s390x" in done.stdout
    assert "== x86_64: up to date" in done.stdout
    assert not (out / "repo" / "s390x").exists()
    assert not list((out / "downloads").glob(".partial*"))


def test_nothing_at_all_is_an_error(tmp_path: Path) -> None:
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not installed")
    done = run_script(tmp_path / "out", "s390x")
    assert done.returncode == 1
    assert "SKIPPED s390x" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "ERROR: no architecture could be built"
