"""``alpenglow inspect [--sizes]``, through the real console script."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from alpenglow.apk.database import parse_installed
from alpenglow.cli._table import human_size
from alpenglow.oci.image import OCI_LAYER_GZIP, image_bundle, index_bundle
from alpenglow.oci.store import ImageStore
from alpenglow.oci.transport import write_oci
from tests.cli.conftest import Run
from tests.oci.images import config_for, installed_db, make_image
from tests.support.alpine_repo import RealisticRepo

DB_X86 = installed_db(
    [("musl", "1.2.5-r0", 700_000), ("busybox", "1.36.1-r2", 900_000), ("zlib", "1.3-r0", 100)]
)
DB_ARM = installed_db([("busybox", "1.36.1-r2", 800_000), ("musl", "1.2.5-r0", 600_000)])


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    s = ImageStore(tmp_path / "store")
    s.add(
        index_bundle(
            [
                make_image("x86_64", {"lib/apk/db/installed": DB_X86}),
                make_image("aarch64", {"lib/apk/db/installed": DB_ARM}),
            ]
        ),
        ["alpine-base"],
    )
    s.add(make_image("x86_64", {"etc/motd": "no apk here"}), ["plain:1"])
    return s


def env_for(store: ImageStore) -> dict[str, str]:
    return {"ALPENGLOW_STORE": str(store.path)}


def test_inspect_prints_index_manifests_and_configs(run_cli: Run, store: ImageStore) -> None:
    proc = run_cli("inspect", "alpine-base", env=env_for(store))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    bundle = store.get("alpine-base")
    assert doc["name"] == "alpine-base:latest"
    assert doc["digest"] == bundle.root.digest
    assert doc["index"] == json.loads(bundle.blob(bundle.root.digest))
    assert [i["platform"] for i in doc["images"]] == ["linux/amd64", "linux/arm64/v8"]
    first = doc["images"][0]
    assert first["config"]["config"]["Cmd"] == ["/bin/sh"]
    assert first["manifest"]["layers"][0]["mediaType"].endswith("tar+gzip")
    by_id = json.loads(run_cli("inspect", bundle.root.digest[7:19], env=env_for(store)).stdout)
    assert by_id["digest"] == bundle.root.digest


def test_inspect_a_single_manifest_and_a_platform(run_cli: Run, store: ImageStore) -> None:
    doc = json.loads(run_cli("inspect", "plain:1", env=env_for(store)).stdout)
    assert "index" not in doc
    assert [i["platform"] for i in doc["images"]] == ["linux/amd64"]
    arm = run_cli("inspect", "--platform", "linux/arm64", "alpine-base", env=env_for(store))
    assert [i["platform"] for i in json.loads(arm.stdout)["images"]] == ["linux/arm64/v8"]


def test_inspect_another_transport(run_cli: Run, tmp_path: Path) -> None:
    image = make_image("armv7", {"lib/apk/db/installed": DB_ARM})
    write_oci(image, tmp_path / "lay", ["v1"])
    proc = run_cli("inspect", f"oci:{tmp_path}/lay:v1")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["name"] == f"oci:{tmp_path}/lay:v1"
    assert doc["images"][0]["platform"] == "linux/arm/v7"
    sizes = run_cli("inspect", "--sizes", f"oci:{tmp_path}/lay:v1")
    assert sizes.stdout.splitlines()[1].split()[:2] == ["armv7", "linux/arm/v7"]


def test_sizes(run_cli: Run, store: ImageStore) -> None:
    proc = run_cli("inspect", "--sizes", "alpine-base", env=env_for(store))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    bundle = store.get("alpine-base")
    images = bundle.images()
    assert lines[0].split() == ["ARCH", "PLATFORM", "TAG", "DIGEST", "COMPRESSED"]
    assert lines[1].split() == [
        "x86_64",
        "linux/amd64",
        "alpine-base:latest",
        images[0].descriptor.digest[7:19],
        human_size(images[0].compressed_size),
    ]
    assert lines[2].split()[:2] == ["aarch64", "linux/arm64/v8"]
    text = proc.stdout
    assert "linux/amd64: 3 packages, 1.6MB installed; largest 3:" in text
    x86 = text[text.index("linux/amd64: 3 packages") :].splitlines()
    assert x86[1].split() == ["PACKAGE", "VERSION", "INSTALLED", "SIZE"]
    assert [line.split()[0] for line in x86[2:5]] == ["busybox", "musl", "zlib"]
    assert x86[2].split() == ["busybox", "1.36.1-r2", "900kB"]
    assert "linux/arm64/v8: 2 packages, 1.4MB installed; largest 2:" in text


def test_sizes_top_and_platform(run_cli: Run, store: ImageStore) -> None:
    proc = run_cli(
        "inspect", "--sizes", "--top", "1", "--platform", "x86_64", "alpine-base",
        env=env_for(store),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:2]] == ["x86_64"]
    assert "aarch64" not in proc.stdout
    tail = lines[lines.index("linux/amd64: 3 packages, 1.6MB installed; largest 1:") + 1 :]
    assert [line.split()[0] for line in tail] == ["PACKAGE", "busybox"]


def test_sizes_without_an_apk_database(run_cli: Run, store: ImageStore) -> None:
    proc = run_cli("inspect", "--sizes", "plain:1", env=env_for(store))
    assert proc.returncode == 0, proc.stderr
    assert "linux/amd64: no apk database in the image" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (("inspect", "nope"), "ERROR: no such image in the store: nope:latest", 1),
        (("inspect", "Nope"), "ERROR: invalid reference 'Nope'", 1),
        (("inspect", "--platform", "linux/s390x", "alpine-base"), "ERROR: alpine-base: no", 1),
        (("inspect", "oci:/nonexistent/dir:x"), "ERROR: /nonexistent/dir: no such OCI", 1),
        (("inspect", "docker://alpine"), "ERROR: unsupported transport", 1),
        (("inspect", "--top", "-1", "alpine-base"), "Invalid value for '--top'", 2),
    ],
)
def test_errors_are_one_line(
    run_cli: Run, store: ImageStore, args: tuple[str, ...], message: str, status: int
) -> None:
    proc = run_cli(*args, env=env_for(store))
    assert proc.returncode == status
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_corrupt_layer_is_reported(run_cli: Run, store: ImageStore) -> None:
    image = store.get("plain:1").images()[0]
    layer = image.manifest.layers[0].digest
    store.layout.blob_path(layer).write_bytes(b"garbage")
    proc = run_cli("inspect", "--sizes", "plain:1", env=env_for(store))
    assert proc.returncode == 1
    assert proc.stderr.startswith("ERROR: ")
    assert f"blob {layer} is corrupt" in proc.stderr


def test_sizes_of_a_real_alpine_base_root(
    run_cli: Run, realistic_repo: RealisticRepo, tmp_path: Path
) -> None:
    """alpine-base installed by ``alpenglow apk --root``, tarred into a layer: the size table
    lists exactly the installed database's packages, largest first."""
    if "x86_64" not in realistic_repo.arches:
        pytest.skip(f"x86_64: {realistic_repo.skipped.get('x86_64')}")
    root = tmp_path / "root"
    proc = run_cli(
        "apk", "--root", str(root), "--arch", "x86_64", "--initdb",
        "-X", str(realistic_repo.base()), "--keys-dir", str(realistic_repo.keys_dir),
        "--no-cache", "add", "alpine-base",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    layer = raw.getvalue()
    config = config_for("x86_64", ["sha256:" + hashlib.sha256(layer).hexdigest()])
    image = image_bundle(config, [(OCI_LAYER_GZIP, gzip.compress(layer, mtime=0))])
    store = ImageStore(tmp_path / "store")
    store.add(image, ["alpine-base"])

    out = run_cli("inspect", "--sizes", "--top", "1000", "alpine-base", env=env_for(store))
    assert out.returncode == 0, out.stderr
    installed = parse_installed((root / "lib/apk/db/installed").read_bytes())
    expected = sorted(installed, key=lambda p: (-p.package.installed_size, p.package.name))
    assert "alpine-base" in {p.package.name for p in installed}
    header = f"linux/amd64: {len(installed)} packages, "
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    listed = [line.split()[:2] for line in lines[start + 2 :]]
    assert listed == [[p.package.name, p.package.version] for p in expected]


def test_a_hostile_archive_is_one_error_line(run_cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    proc = run_cli("inspect", f"oci-archive:{path}")
    assert proc.returncode == 1
    assert proc.stderr == (
        f"ERROR: {path}: refusing archive member '../../etc/evil' (a '..' path)\n"
    )
    assert not (tmp_path.parent.parent / "etc" / "evil").exists()
