"""``alpenglow build`` end to end, checked from outside: the realistic repository's
``alpine-base`` built for every architecture it has, inspected with skopeo, unpacked with
umoci (the tree equals what ``alpenglow apk --root`` installs), loaded by podman, and run
under runc. Plus reproducibility, lock files, the image store and bad input.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.alpine_repo import BRANCH, NEW_TIME, RealisticRepo
from tests.support.apk_root import install
from tests.support.mirror import Mirror
from tests.support.runc import is_native, run_in_root, runc_path

ALPENGLOW = Path(sys.executable).parent / "alpenglow"
EPOCH = "1700000000"


def run(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(ALPENGLOW), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def tool(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if shutil.which(args[0]) is None:
        pytest.skip(f"{args[0]} is not installed (bash scripts/setup installs it)")
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=300, check=False)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A private image store and package cache for the module's builds."""
    base = tmp_path_factory.mktemp("build-env")
    out = dict(os.environ)
    out["ALPENGLOW_STORE"] = str(base / "store")
    out["XDG_CACHE_HOME"] = str(base / "cache")
    out["SOURCE_DATE_EPOCH"] = EPOCH
    return out


def write_config(
    path: Path, repo: RealisticRepo, mirror: Mirror, archs: list[str], extra: str = ""
) -> Path:
    keys = sorted(repo.keys_dir.iterdir())
    path.write_text(
        "contents:\n"
        f"  repositories:\n    - {mirror.repository(BRANCH)}\n"
        f"  keyring:\n    - {keys[0]}\n"
        "  packages:\n    - alpine-base\n"
        f"archs: [{', '.join(archs)}]\n"
        "annotations:\n  org.opencontainers.image.title: alpine-base\n" + extra
    )
    return path


@pytest.fixture(scope="module")
def built(
    realistic_repo: RealisticRepo,
    alpine_mirror: Mirror,
    env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, list[str]]:
    """``alpenglow build alpine-base.yaml --output oci:DIR`` for every architecture."""
    work = tmp_path_factory.mktemp("built")
    archs = list(realistic_repo.arches)
    config = write_config(work / "alpine-base.yaml", realistic_repo, alpine_mirror, archs)
    layout = work / "layout"
    run("build", str(config), "--output", f"oci:{layout}:latest", env=env)
    return config, layout, archs


def blob(layout: Path, digest: str) -> bytes:
    algo, hexd = digest.split(":")
    return (layout / "blobs" / algo / hexd).read_bytes()


def test_skopeo_sees_one_index_with_every_platform(built: tuple[Path, Path, list[str]]) -> None:
    _, layout, archs = built
    raw = json.loads(tool("skopeo", "inspect", "--raw", f"oci:{layout}:latest").stdout)
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = [m["platform"] for m in raw["manifests"]]
    assert len(platforms) == len(archs)
    expected = {
        "x86_64": {"os": "linux", "architecture": "amd64"},
        "aarch64": {"os": "linux", "architecture": "arm64", "variant": "v8"},
        "armv7": {"os": "linux", "architecture": "arm", "variant": "v7"},
        "armhf": {"os": "linux", "architecture": "arm", "variant": "v6"},
        "x86": {"os": "linux", "architecture": "386"},
    }
    for arch, platform in zip(archs, platforms, strict=True):
        if arch in expected:
            assert platform == expected[arch]
    info = json.loads(
        tool("skopeo", "--override-arch", "amd64", "inspect", f"oci:{layout}:latest").stdout
    )
    assert info["Architecture"] == "amd64"
    assert info["Labels"]["org.opencontainers.image.title"] == "alpine-base"
    assert info["Env"][0].startswith("PATH=/usr/local/sbin")
    assert info["Created"].startswith("2023-11-14T22:13:20")  # SOURCE_DATE_EPOCH


def amd64_manifest(layout: Path) -> tuple[str, dict[str, Any]]:
    index = json.loads((layout / "index.json").read_bytes())
    named = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest"
    ]
    top = json.loads(blob(layout, named[0]["digest"]))
    entry = next(m for m in top["manifests"] if m["platform"]["architecture"] == "amd64")
    return entry["digest"], json.loads(blob(layout, entry["digest"]))


def test_image_config_is_like_the_official_one(built: tuple[Path, Path, list[str]]) -> None:
    _, layout, _ = built
    _, manifest = amd64_manifest(layout)
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    assert config["config"]["Cmd"] == ["/bin/sh"]
    assert len(manifest["layers"]) == 1
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    layer = blob(layout, manifest["layers"][0]["digest"])
    import gzip

    assert config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    ]


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            if rel.startswith(skip):
                continue
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                what: Any = os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(full.read_bytes()).hexdigest()
            else:
                what = None
            out[rel] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                what,
            )
    return out


@pytest.fixture(scope="module")
def unpacked(built: tuple[Path, Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The amd64 image unpacked by umoci (from a single-platform copy made by skopeo)."""
    _, layout, _ = built
    work = tmp_path_factory.mktemp("umoci")
    single = work / "single"
    tool(
        "skopeo",
        "--insecure-policy",
        "--override-arch",
        "amd64",
        "copy",
        f"oci:{layout}:latest",
        f"oci:{single}:amd64",
    )
    bundle = work / "bundle"
    tool("umoci", "unpack", "--image", f"{single}:amd64", str(bundle))
    return bundle


def test_umoci_tree_equals_an_apk_install(
    unpacked: Path,
    realistic_repo: RealisticRepo,
    alpine_mirror: Mirror,
    tmp_path: Path,
) -> None:
    root = install(realistic_repo, alpine_mirror, "x86_64", tmp_path / "apk")
    # var/cache/apk: created by apk for its package cache; lib/apk/db/lock: apk's lock file;
    # etc/apk/repositories: the image records its repositories so that apk inside works
    skip = ("var/cache/apk", "lib/apk/db/lock", "etc/apk/repositories")
    repositories = (unpacked / "rootfs" / "etc/apk/repositories").read_text()
    assert repositories == alpine_mirror.repository(BRANCH) + "\n"
    image = snapshot(unpacked / "rootfs", skip)
    disk = snapshot(root, skip)
    assert sorted(set(image) ^ set(disk)) == []
    different = {p: (image[p], disk[p]) for p in image if image[p] != disk[p]}
    assert different == {}


def test_runs_under_runc(unpacked: Path) -> None:
    if runc_path() is None or os.geteuid() != 0:
        pytest.skip("runc containers need runc and root here")
    if not is_native("x86_64"):
        pytest.skip("this machine cannot run x86_64 binaries natively")
    done = run_in_root(unpacked / "rootfs", ["/bin/sh", "-c", "echo ok; cat /etc/alpine-release"])
    assert (done.returncode, done.stdout.splitlines()[0]) == (0, "ok"), done.stderr


def test_build_is_reproducible(
    built: tuple[Path, Path, list[str]], env: dict[str, str], tmp_path: Path
) -> None:
    config, layout, _ = built
    again = tmp_path / "again"
    other = dict(env)
    other["XDG_CACHE_HOME"] = str(tmp_path / "cold-cache")  # fetched anew
    run("build", str(config), "--output", f"oci:{again}:latest", env=other)
    assert (again / "index.json").read_bytes() == (layout / "index.json").read_bytes()
    first = {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}
    second = {p.name: p.read_bytes() for p in (again / "blobs" / "sha256").iterdir()}
    assert first == second


def test_default_epoch_is_the_newest_package(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "a.yaml", realistic_repo, alpine_mirror, ["x86_64"])
    no_epoch = {k: v for k, v in env.items() if k != "SOURCE_DATE_EPOCH"}
    out = tmp_path / "a"
    run("build", str(config), "--output", f"oci:{out}", env=no_epoch)
    _, manifest = amd64_manifest_any(out)
    cfg = json.loads(blob(out, manifest["config"]["digest"]))
    assert cfg["created"] == time_text(NEW_TIME)  # the newest installed package's build date


def time_text(epoch: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def amd64_manifest_any(layout: Path) -> tuple[str, dict[str, Any]]:
    index = json.loads((layout / "index.json").read_bytes())
    top = json.loads(blob(layout, index["manifests"][0]["digest"]))
    entry = top["manifests"][0]
    return entry["digest"], json.loads(blob(layout, entry["digest"]))


def test_docker_archive_loads_in_podman(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "alpine-base.yaml", realistic_repo, alpine_mirror, ["x86_64"])
    archive = tmp_path / "alpine-base.tar"
    run("build", str(config), "--output", f"docker-archive:{archive}", env=env)
    assert archive.is_file()
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="ag-podman-"))  # podman wants a runroot < 50 chars
    storage = ["--root", str(short / "root"), "--runroot", str(short / "run")]
    storage += ["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"]
    done = tool("podman", *storage, "load", "-i", str(archive), check=False)
    if done.returncode != 0 and "cannot" in done.stderr.lower():
        pytest.skip(f"podman cannot run here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    try:
        images = tool("podman", *storage, "images", "--format", "{{.Repository}}:{{.Tag}}")
        assert "alpine-base:latest" in images.stdout  # podman shows localhost/alpine-base
        ran = tool(
            "podman",
            *storage,
            "run",
            "--rm",
            "--pull",
            "never",
            "--network",
            "none",
            # this sandbox refuses podman's default (raised) rlimits
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "localhost/alpine-base:latest",
            "/bin/sh",
            "-c",
            "echo ok",
            check=False,
        )
        assert (ran.returncode, ran.stdout) == (0, "ok\n"), ran.stderr
    finally:
        subprocess.run(
            ["podman", *storage, "system", "reset", "-f"], capture_output=True, check=False
        )
        shutil.rmtree(short, ignore_errors=True)


def test_store_images_and_inspect_sizes(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "mybase.yaml", realistic_repo, alpine_mirror, ["x86_64"])
    run("build", str(config), "--tag", "mybase:1.0", "--tag", "mybase:latest", env=env)
    listing = run("images", env=env).stdout
    assert "mybase" in listing
    assert "1.0" in listing
    assert "latest" in listing
    sizes = run("inspect", "mybase:1.0", "--sizes", env=env).stdout
    assert "busybox" in sizes


def test_sboms_are_written_beside_the_output(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "s.yaml", realistic_repo, alpine_mirror, ["x86_64"])
    run("build", str(config), "--output", f"oci-archive:{tmp_path / 'out' / 's.tar'}", env=env)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "s.tar" in names
    spdx = [n for n in names if n.endswith(".spdx.json")]
    cdx = [n for n in names if n.endswith(".cdx.json")]
    assert spdx
    assert cdx
    doc = json.loads((tmp_path / "out" / spdx[0]).read_text())
    assert any(p["name"] == "busybox" for p in doc["packages"])
    # checked by real validators from PyPI (spdx-tools, cyclonedx-python-lib)
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.json import json_parser
    from spdx_tools.spdx.validation.document_validator import (
        validate_full_spdx_document,
    )

    document = json_parser.parse_from_file(str(tmp_path / "out" / spdx[0]))
    assert [m.validation_message for m in validate_full_spdx_document(document)] == []
    validator = JsonStrictValidator(SchemaVersion.V1_5)
    assert validator.validate_str((tmp_path / "out" / cdx[0]).read_text()) is None
    components = json.loads((tmp_path / "out" / cdx[0]).read_text())["components"]
    purls = {c.get("purl", "") for c in components}
    version = realistic_repo.versions("busybox", "x86_64")[-1]
    assert any(p.startswith(f"pkg:apk/alpine/busybox@{version}?arch=x86_64") for p in purls)


def test_lockfile_round_trip_and_mismatch(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "l.yaml", realistic_repo, alpine_mirror, ["x86_64"])
    run("lock", str(config), env=env)
    lock_path = tmp_path / "l.lock.json"
    assert lock_path.is_file()
    run(
        "build",
        str(config),
        "--lockfile",
        str(lock_path),
        "--output",
        f"oci:{tmp_path / 'o'}",
        env=env,
    )
    text = lock_path.read_text()
    version = realistic_repo.versions("busybox", "x86_64")[-1]
    lock_path.write_text(text.replace(f'"{version}"', '"0.0.1-r0"'))
    done = run(
        "build",
        str(config),
        "--lockfile",
        str(lock_path),
        "--output",
        f"oci:{tmp_path / 'p'}",
        env=env,
        check=False,
    )
    assert done.returncode == 1
    assert "busybox" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("contents: [\n", "bad.yaml:"),
        ("contents:\n  packages: [alpine-base]\nbogus: 1\n", "bad.yaml:3"),
        ("contents:\n  packages: ['a=']\n", "bad.yaml:2"),
    ],
)
def test_bad_config_is_one_line_and_changes_nothing(
    text: str, message: str, env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    store = Path(env["ALPENGLOW_STORE"])
    before = sorted(str(p) for p in store.rglob("*")) if store.exists() else []
    done = run("build", str(config), env=env, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    after = sorted(str(p) for p in store.rglob("*")) if store.exists() else []
    assert before == after


def test_arch_all_and_one_docker_archive_per_platform(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "multi.yaml"
    keys = sorted(realistic_repo.keys_dir.iterdir())
    config.write_text(
        f"contents:\n  repositories: [{alpine_mirror.repository(BRANCH)}]\n"
        f"  keyring: [{keys[0]}]\n  packages: [alpine-base]\n"
    )
    done = run(
        "build",
        str(config),
        "--arch",
        "all",
        "--output",
        f"docker-archive:{tmp_path / 'm.tar'}",
        env=env,
    )
    written = sorted(p.name for p in tmp_path.glob("m-*.tar"))
    assert len(written) == len(realistic_repo.arches)
    assert "m-amd64.tar" in written
    assert "m-arm64-v8.tar" in written or "aarch64" not in realistic_repo.arches
    assert "m-arm-v7.tar" in written or "armv7" not in realistic_repo.arches
    for name in written:
        assert f"wrote {tmp_path / name}" in done.stderr
    with tarfile.open(tmp_path / "m-amd64.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["multi:latest"]


def test_base_image_accounts_files_and_run_as(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    base_config = write_config(tmp_path / "base.yaml", realistic_repo, alpine_mirror, ["x86_64"])
    run("build", str(base_config), "--tag", "mybase:1", env=env)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>hi</h1>\n")
    top = tmp_path / "app.yaml"
    top.write_text(
        "base: mybase:1\n"
        "accounts:\n"
        "  groups: [{groupname: app, gid: 10000}]\n"
        "  users: [{username: app, uid: 10000, gid: 10000}]\n"
        "  run-as: app\n"
        "files:\n"
        "  - {source: ./site, destination: /srv/www, uid: 10000, gid: 10000}\n"
        "paths:\n"
        "  - {path: /var/lib/app, type: directory, uid: 10000, gid: 10000, permissions: 0o750}\n"
        "work-dir: /srv/www\n"
        "environment: {GREETING: hello}\n"
        "entrypoint: {command: /bin/cat}\n"
        "cmd: index.html\n"
    )
    out = tmp_path / "app"
    run("build", str(top), "--output", f"oci:{out}:app", env=env)
    index = json.loads((out / "index.json").read_bytes())
    named = [m for m in index["manifests"] if m.get("annotations")]
    root = json.loads(blob(out, named[0]["digest"]))
    manifest = json.loads(blob(out, root["manifests"][0]["digest"]))
    config = json.loads(blob(out, manifest["config"]["digest"]))
    assert len(manifest["layers"]) == 2  # the base's layer, reused, and the difference
    store_layout = Path(env["ALPENGLOW_STORE"])
    assert (store_layout / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]).is_file()
    assert config["config"]["User"] == "10000"
    assert config["config"]["WorkingDir"] == "/srv/www"
    assert config["config"]["Entrypoint"] == ["/bin/cat"]
    assert config["config"]["Cmd"] == ["index.html"]
    assert "GREETING=hello" in config["config"]["Env"]
    assert len(config["rootfs"]["diff_ids"]) == 2
    import gzip
    import io

    with tarfile.open(
        fileobj=io.BytesIO(gzip.decompress(blob(out, manifest["layers"][1]["digest"])))
    ) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "bin/busybox" not in members  # only what changed
    assert members["srv/www/index.html"].uid == 10000
    assert members["var/lib/app"].mode == 0o750
    passwd = tar_text(blob(out, manifest["layers"][1]["digest"]), "etc/passwd")
    assert "app:x:10000:10000:" in passwd
    assert passwd.startswith("root:x:0:0:")  # the packages' accounts are kept


def tar_text(layer: bytes, name: str) -> str:
    import gzip
    import io

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        fh = tar.extractfile(name)
        assert fh is not None
        return fh.read().decode()


def test_base_image_pulled_from_a_registry(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, env: dict[str, str], tmp_path: Path
) -> None:
    from tests.support.registry import registry_problem, running_registry

    problem = registry_problem()
    if problem is not None:
        pytest.skip(problem)
    base_config = write_config(tmp_path / "rbase.yaml", realistic_repo, alpine_mirror, ["x86_64"])
    layout = tmp_path / "rbase"
    run("build", str(base_config), "--output", f"oci:{layout}:1", env=env)
    with running_registry(tmp_path / "registry") as server:
        remote = f"{server.host}/team/rbase:1"
        run("push", f"oci:{layout}:1", remote, env=env)
        top = tmp_path / "ontop.yaml"
        top.write_text(f"base: {remote}\ncmd: /bin/true\n")
        out = tmp_path / "ontop"
        run("build", str(top), "--output", f"oci:{out}:x", env=env)
    _, manifest = amd64_manifest_any(out)
    pushed = json.loads((layout / "index.json").read_bytes())["manifests"][0]["digest"]
    base_index = json.loads(blob(layout, pushed))
    base_manifest = json.loads(blob(layout, base_index["manifests"][0]["digest"]))
    assert manifest["layers"][0] == base_manifest["layers"][0]  # reused as pulled
    assert len(manifest["layers"]) == 2
    assert f"{server.host}/team/rbase" in run("images", env=env).stdout  # kept, as docker does
