"""Transports: oci:, oci-archive:, docker-archive: and the store, written and read back,
checked with skopeo and podman, and hostile archives refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import alpenglow.oci.transport as transport_module
from alpenglow.errors import (
    AlpenglowError,
    ArchiveError,
    FormatError,
    ImageNotFound,
    InvalidReference,
)
from alpenglow.oci.image import (
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    ImageBundle,
    Platform,
    digest_of,
    image_bundle,
    index_bundle,
)
from alpenglow.oci.platform import platform_for_arch
from alpenglow.oci.store import ImageStore
from alpenglow.oci.transport import (
    ImageReference,
    docker_archive_paths,
    parse_reference,
    read_docker_archive,
    read_image,
    read_oci,
    read_oci_archive,
    write_docker_archive,
    write_image,
    write_oci,
    write_oci_archive,
)
from tests.oci.images import config_for, layer_tar, make_image, make_index, podman, skopeo


def test_exports() -> None:
    assert sorted(dir(transport_module)) == sorted(transport_module.__all__)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpine", ImageReference("store", "", "alpine:latest")),
        ("localhost:5000/a/b:1", ImageReference("store", "", "localhost:5000/a/b:1")),
        ("0123abcd", ImageReference("store", "", "0123abcd")),
        ("sha256:" + "a" * 64, ImageReference("store", "", "sha256:" + "a" * 64)),
        ("@sha256:" + "a" * 64, ImageReference("store", "", "@sha256:" + "a" * 64)),
        ("oci:out", ImageReference("oci", "out", "")),
        ("oci:/tmp/x:latest", ImageReference("oci", "/tmp/x", "latest")),
        ("oci:out:alpine-base:3.22", ImageReference("oci", "out", "alpine-base:3.22")),
        ("oci-archive:a.tar", ImageReference("oci-archive", "a.tar", "")),
        ("oci-archive:a.tar:v1", ImageReference("oci-archive", "a.tar", "v1")),
        ("docker-archive:a.tar", ImageReference("docker-archive", "a.tar", "")),
        ("docker-archive:a.tar:x/y", ImageReference("docker-archive", "a.tar", "x/y:latest")),
        ("docker-archive:a.tar:@1", ImageReference("docker-archive", "a.tar", "@1")),
        (
            "docker-archive:a.tar:docker.io/library/alpine:3",
            ImageReference("docker-archive", "a.tar", "alpine:3"),
        ),
    ],
)
def test_parse_reference(text: str, expected: ImageReference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("oci:", "no path after oci:"),
        ("oci-archive::x", "no path after oci-archive:"),
        ("oci:dir:bad name", "bad image name 'bad name'"),
        ("oci:dir:../x", "bad image name"),
        ("docker-archive:a.tar:@x", "@ must be followed by a number"),
        ("docker-archive:a.tar:a@sha256:" + "0" * 64, "take no digest"),
        ("docker://alpine", "unsupported transport"),
        ("containers-storage:alpine", "unsupported transport"),
        ("Bad", "lower case"),
    ],
)
def test_bad_references(text: str, problem: str) -> None:
    with pytest.raises(InvalidReference, match=problem):
        parse_reference(text)


def test_reference_str_round_trips() -> None:
    for text in ("oci:d:t", "oci-archive:f.tar", "docker-archive:f.tar:a:1", "alpine:3"):
        assert str(parse_reference(text)) == text


# -- oci: ---------------------------------------------------------------------------------------


def test_oci_round_trip_and_skopeo(tmp_path: Path) -> None:
    index = make_index()
    assert write_image(index, f"oci:{tmp_path}/lay:v1") == (f"{tmp_path}/lay",)
    write_image(index, f"oci:{tmp_path}/lay", names=["alpine-base:latest"])
    back = read_image(f"oci:{tmp_path}/lay:v1")
    assert back.root == index.root
    assert dict(back.blobs) == dict(index.blobs)
    assert read_oci(tmp_path / "lay", "alpine-base:latest").root == index.root
    raw = skopeo("inspect", "--raw", f"oci:{tmp_path}/lay:v1").stdout
    assert raw.encode() == index.blobs[index.root.digest]
    # skopeo copies the whole index to another layout, byte for byte
    skopeo("copy", "--all", f"oci:{tmp_path}/lay:v1", f"oci:{tmp_path}/copy:c")
    copied = read_oci(tmp_path / "copy", "c")
    assert copied.root.digest == index.root.digest


def test_oci_layouts_written_by_skopeo_read_back(tmp_path: Path) -> None:
    image = make_image("x86_64", {"etc/motd": "hi\n"})
    write_oci(image, tmp_path / "ours", ["t"])
    skopeo("copy", f"oci:{tmp_path}/ours:t", f"oci:{tmp_path}/theirs:x")
    back = read_image(f"oci:{tmp_path}/theirs:x")
    (theirs,) = back.images()
    (ours,) = image.images()
    assert theirs.config.diff_ids == ours.config.diff_ids
    assert theirs.platform == Platform("linux", "amd64")


def test_oci_missing_name(tmp_path: Path) -> None:
    write_oci(make_image(), tmp_path, ["a"])
    with pytest.raises(ImageNotFound, match="no image named 'b'"):
        read_image(f"oci:{tmp_path}:b")
    with pytest.raises(ImageNotFound, match="no such OCI layout directory"):
        read_image(f"oci:{tmp_path}/nowhere:b")


# -- oci-archive: -------------------------------------------------------------------------------


def test_oci_archive_round_trip_is_reproducible(tmp_path: Path) -> None:
    index = make_index()
    write_oci_archive(index, tmp_path / "a.tar", ["v1"], mtime=1_700_000_000)
    write_image(index, f"oci-archive:{tmp_path}/b.tar:v1", mtime=1_700_000_000)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:2] == ["blobs", "blobs/sha256"]
    assert names[-2:] == ["index.json", "oci-layout"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (1_700_000_000, 0, 0, "", "")
    }
    assert {m.mode for m in members if m.isdir()} == {0o755}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    back = read_oci_archive(tmp_path / "a.tar", "v1")
    assert back.root == index.root
    assert dict(back.blobs) == dict(index.blobs)
    assert read_image(f"oci-archive:{tmp_path}/a.tar").root == index.root


def test_skopeo_reads_our_oci_archive(tmp_path: Path) -> None:
    index = make_index(("x86_64", "aarch64"))
    write_oci_archive(index, tmp_path / "a.tar", ["v1"])
    raw = skopeo("inspect", "--raw", f"oci-archive:{tmp_path}/a.tar:v1").stdout
    assert raw.encode() == index.blobs[index.root.digest]
    info = json.loads(skopeo("inspect", f"oci-archive:{tmp_path}/a.tar").stdout)
    assert info["Architecture"] == "amd64"
    assert info["Layers"] == [index.images()[0].manifest.layers[0].digest]


def test_skopeo_written_oci_archive_reads_back(tmp_path: Path) -> None:
    index = make_index(("x86_64", "aarch64"))
    write_oci(index, tmp_path / "lay", ["v1"])
    skopeo("copy", "--all", f"oci:{tmp_path}/lay:v1", f"oci-archive:{tmp_path}/s.tar:v9")
    back = read_oci_archive(tmp_path / "s.tar", "v9")
    assert back.root.digest == index.root.digest
    back.verify()


# -- docker-archive: ----------------------------------------------------------------------------


def test_docker_archive_format(tmp_path: Path) -> None:
    image = make_image("x86_64", layers=[{"a": "1"}, {"b": "2"}])
    (path,) = write_docker_archive(image, tmp_path / "d.tar", ["app:1", "app:latest"])
    assert path == tmp_path / "d.tar"
    with tarfile.open(path) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    (pi,) = image.images()
    config_hex = pi.manifest.config.digest[7:]
    layer_names = [f"{d[7:]}.tar" for d in pi.config.diff_ids]
    assert json.loads(files["manifest.json"]) == [
        {
            "Config": f"{config_hex}.json",
            "RepoTags": ["app:1", "app:latest"],
            "Layers": layer_names,
        }
    ]
    assert json.loads(files["repositories"]) == {
        "app": {"1": layer_names[-1][:-4], "latest": layer_names[-1][:-4]}
    }
    assert files[f"{config_hex}.json"] == image.blobs[pi.manifest.config.digest]
    for name, diff_id in zip(layer_names, pi.config.diff_ids, strict=True):
        assert "sha256:" + hashlib.sha256(files[name]).hexdigest() == diff_id
    back = read_docker_archive(path, "app:latest")
    (again,) = back.images()
    assert again.config == pi.config
    assert [layer.media_type for layer in again.manifest.layers] == [OCI_LAYER, OCI_LAYER]
    assert back.root.platform == Platform("linux", "amd64")


def test_docker_archive_per_platform_files(tmp_path: Path) -> None:
    index = make_index(("x86_64", "aarch64", "armv7"))
    written = write_image(index, f"docker-archive:{tmp_path}/img.tar:img:1")
    assert written == tuple(
        str(tmp_path / n) for n in ("img-amd64.tar", "img-arm64-v8.tar", "img-arm-v7.tar")
    )
    for file, arch in zip(written, ("x86_64", "aarch64", "armv7"), strict=True):
        back = read_image(f"docker-archive:{file}:img:1")
        assert back.platforms() == (platform_for_arch(arch),)
    assert not (tmp_path / "img.tar").exists()
    only = write_docker_archive(index, tmp_path / "one.tar", platforms=[Platform("linux", "arm64")])
    assert only == [tmp_path / "one.tar"]
    assert read_docker_archive(only[0]).platforms() == (platform_for_arch("aarch64"),)
    with pytest.raises(ImageNotFound, match="no image for linux/s390x"):
        write_docker_archive(index, tmp_path / "x.tar", platforms=[Platform("linux", "s390x")])


def test_docker_archive_paths() -> None:
    amd, arm = Platform("linux", "amd64"), Platform("linux", "arm", "v7")
    assert docker_archive_paths("o.tar", [amd]) == [Path("o.tar")]
    assert docker_archive_paths("d/o.tar", [amd, arm]) == [
        Path("d/o-amd64.tar"),
        Path("d/o-arm-v7.tar"),
    ]
    assert docker_archive_paths("o", [amd, arm]) == [Path("o-amd64"), Path("o-arm-v7")]


def test_a_failed_multi_platform_write_leaves_no_file(tmp_path: Path) -> None:
    good = make_image("x86_64")
    raw = layer_tar({"x": "1"})
    lying = image_bundle(
        config_for("aarch64", [digest_of(b"something else")]),
        [(OCI_LAYER_GZIP, gzip.compress(raw, mtime=0))],
    )
    with pytest.raises(FormatError, match=r"uncompressed content is sha256:.*, the config says"):
        write_docker_archive(index_bundle([good, lying]), tmp_path / "o.tar")
    assert list(tmp_path.iterdir()) == []


def test_zstd_layers_cannot_go_to_a_docker_archive(tmp_path: Path) -> None:
    raw = layer_tar({"x": "1"})
    image = image_bundle(
        config_for("x86_64", [digest_of(raw)]), [(OCI_LAYER_ZSTD, b"\x28\xb5\x2f\xfd")]
    )
    with pytest.raises(ArchiveError, match="zstd"):
        write_docker_archive(image, tmp_path / "o.tar")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destination(tmp_path: Path) -> None:
    with pytest.raises(AlpenglowError, match="cannot write"):
        write_docker_archive(make_image(), tmp_path / "missing-dir" / "o.tar")
    with pytest.raises(AlpenglowError, match="cannot write"):
        write_oci_archive(make_image(), tmp_path / "missing-dir" / "o.tar")


def test_skopeo_and_our_docker_archives_interoperate(tmp_path: Path) -> None:
    image = make_image("x86_64", layers=[{"a": "1"}, {"b": "2"}])
    (pi,) = image.images()
    write_oci(image, tmp_path / "lay", ["t"])
    # skopeo writes a docker archive (with legacy symlinked layer dirs); we read it
    skopeo("copy", f"oci:{tmp_path}/lay:t", f"docker-archive:{tmp_path}/sk.tar:x/y:2")
    theirs = read_docker_archive(tmp_path / "sk.tar", "x/y:2")
    (tpi,) = theirs.images()
    assert tpi.config.diff_ids == pi.config.diff_ids
    assert tpi.manifest.config.digest == pi.manifest.config.digest
    # we write one; skopeo reads it into a layout; we read that
    write_docker_archive(image, tmp_path / "ours.tar", ["a/b:3"])
    info = json.loads(skopeo("inspect", f"docker-archive:{tmp_path}/ours.tar").stdout)
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")
    assert info["Layers"] == list(pi.config.diff_ids)  # skopeo names docker layers by diff_id
    skopeo("inspect", f"docker-archive:{tmp_path}/ours.tar:a/b:3")  # found by its RepoTag
    missing = skopeo("inspect", f"docker-archive:{tmp_path}/ours.tar:a/b:4", check=False)
    assert missing.returncode != 0
    assert "not found" in missing.stderr
    skopeo("copy", f"docker-archive:{tmp_path}/ours.tar", f"oci:{tmp_path}/lay2:u")
    (back,) = read_oci(tmp_path / "lay2", "u").images()
    assert back.config.diff_ids == pi.config.diff_ids


@pytest.fixture
def short_runroot() -> Iterator[Path]:
    """A run root for podman under /tmp (podman refuses one longer than 50 characters)."""
    path = Path(tempfile.mkdtemp(prefix="ag-podman-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_podman_loads_and_saves(tmp_path: Path, short_runroot: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return podman(tmp_path / "podman", short_runroot, *args)

    index = make_index(("x86_64", "aarch64"))
    files = write_docker_archive(index, tmp_path / "img.tar", ["localhost/test/img:1"])
    out = run("load", "-i", str(files[1])).stdout
    assert "localhost/test/img:1" in out
    inspect = json.loads(run("image", "inspect", "localhost/test/img:1").stdout)
    assert inspect[0]["Architecture"] == "arm64"
    run("load", "-i", str(files[0]))
    inspect = json.loads(run("image", "inspect", "localhost/test/img:1").stdout)
    assert inspect[0]["Architecture"] == "amd64"
    (pi,) = index.select(index.images()[0]).images()
    assert inspect[0]["RootFS"]["Layers"] == list(pi.config.diff_ids)
    # and podman's own docker archive reads back
    saved = tmp_path / "saved.tar"
    run("save", "-o", str(saved), "localhost/test/img:1")
    back = read_docker_archive(saved, "localhost/test/img:1")
    (bpi,) = back.images()
    assert bpi.config.diff_ids == pi.config.diff_ids


def test_docker_archive_selection(tmp_path: Path) -> None:
    a, b = make_image("x86_64"), make_image("aarch64")
    pa, pb = (a.images()[0], b.images()[0])
    files: dict[str, bytes] = {}
    entries = []
    for image, pi, tag in ((a, pa, "a:1"), (b, pb, "b:1")):
        name = f"{pi.manifest.config.digest[7:]}.json"
        files[name] = image.blobs[pi.manifest.config.digest]
        layers = []
        for layer, diff_id in zip(pi.manifest.layers, pi.config.diff_ids, strict=True):
            files[f"{diff_id[7:]}/layer.tar"] = gzip.decompress(image.blobs[layer.digest])
            layers.append(f"{diff_id[7:]}/layer.tar")
        entries.append({"Config": name, "RepoTags": [tag], "Layers": layers})
    files["manifest.json"] = json.dumps(entries).encode()
    path = tmp_path / "two.tar.gz"
    path.write_bytes(gzip.compress(_tar(files)))  # docker save | gzip
    assert read_docker_archive(path, "b:1").platforms() == (platform_for_arch("aarch64"),)
    assert read_docker_archive(path, "@0").platforms() == (Platform("linux", "amd64"),)
    with pytest.raises(ImageNotFound, match="2 images in the archive; name one"):
        read_docker_archive(path)
    with pytest.raises(ImageNotFound, match="no image tagged 'c:latest'"):
        read_image(f"docker-archive:{path}:c")
    with pytest.raises(ImageNotFound, match="no image @5"):
        read_image(f"docker-archive:{path}:@5")


def test_gzip_layers_in_a_docker_archive_stay_gzip(tmp_path: Path) -> None:
    image = make_image()
    (pi,) = image.images()
    gz = image.blobs[pi.manifest.layers[0].digest]
    files = {
        "c.json": image.blobs[pi.manifest.config.digest],
        "l.tar.gz": gz,
        "manifest.json": json.dumps([{"Config": "c.json", "Layers": ["./l.tar.gz"]}]).encode(),
    }
    (tmp_path / "d.tar").write_bytes(_tar(files))
    back = read_docker_archive(tmp_path / "d.tar")
    assert back.root.digest == image.root.digest  # same config, same gzip layer: same manifest


# -- the store as a transport -------------------------------------------------------------------


def test_store_transport(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    index = make_index()
    assert write_image(index, "alpine-base", store=store) == ("alpine-base:latest",)
    assert write_image(index, ImageReference("store"), store=store, names=["a:1", "b"]) == (
        "a:1",
        "b:latest",
    )
    assert read_image("b", store=store).root == index.root
    with pytest.raises(AlpenglowError, match="no image store given"):
        read_image("b")
    # a docker archive read into the store, and out again as an oci archive
    write_docker_archive(index, tmp_path / "d.tar", ["x:1"], platforms=[Platform("linux", "amd64")])
    write_image(read_image(f"docker-archive:{tmp_path}/d.tar"), "from-archive:1", store=store)
    write_image(read_image("from-archive:1", store=store), f"oci-archive:{tmp_path}/o.tar:z")
    assert read_oci_archive(tmp_path / "o.tar", "z").platforms() == (Platform("linux", "amd64"),)


# -- hostile and broken archives ---------------------------------------------------------------


def _tar(files: dict[str, bytes], extra: Callable[[tarfile.TarFile], None] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(tar)
    return out.getvalue()


def _good_oci_archive(tmp_path: Path) -> dict[str, bytes]:
    write_oci_archive(make_image(), tmp_path / "good.tar", ["v"])
    with tarfile.open(tmp_path / "good.tar") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def _member(name: str, kind: bytes, link: str = "") -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        tar.addfile(info)

    return add


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (_member("../evil", tarfile.REGTYPE), r"refusing archive member '../evil' \(a '..' path\)"),
        (_member("blobs/../../x", tarfile.REGTYPE), "a '..' path"),
        (_member("/etc/cron.d/x", tarfile.REGTYPE), "an absolute path"),
        (_member("link", tarfile.SYMTYPE, "/etc/passwd"), "leads outside the archive"),
        (_member("blobs/l", tarfile.SYMTYPE, "../../x"), "leads outside the archive"),
        (_member("dev", tarfile.CHRTYPE), "not a file or directory"),
        (_member("fifo", tarfile.FIFOTYPE), "not a file or directory"),
        (_member("index.json", tarfile.REGTYPE), "'index.json' appears twice"),
        (_member("hard", tarfile.LNKTYPE, "nothing"), "does not lead to a file"),
    ],
)
def test_hostile_oci_archives_are_refused(
    tmp_path: Path, extra: Callable[[tarfile.TarFile], None], problem: str
) -> None:
    path = tmp_path / "bad.tar"
    path.write_bytes(_tar(_good_oci_archive(tmp_path), extra))
    store = ImageStore(tmp_path / "store")
    with pytest.raises(ArchiveError, match=f"{path}: .*{problem}"):
        write_image(read_image(f"oci-archive:{path}:v"), "x", store=store)
    with pytest.raises(ArchiveError, match=problem):
        read_docker_archive(path)
    assert not store.path.exists()


def test_links_inside_an_archive_are_followed(tmp_path: Path) -> None:
    files = _good_oci_archive(tmp_path)
    files["real-index.json"] = files.pop("index.json")
    path = tmp_path / "links.tar"
    path.write_bytes(_tar(files, _member("index.json", tarfile.SYMTYPE, "real-index.json")))
    assert read_oci_archive(path, "v").platforms() == (Platform("linux", "amd64"),)


def test_corrupt_blob_in_an_archive(tmp_path: Path) -> None:
    files = _good_oci_archive(tmp_path)
    image = make_image()
    layer = image.manifest().layers[0].digest
    name = f"blobs/sha256/{layer[7:]}"
    files[name] = files[name][:-1] + bytes([files[name][-1] ^ 1])
    path = tmp_path / "bad.tar"
    path.write_bytes(_tar(files))
    with pytest.raises(FormatError, match=f"{path}:v: blob {layer} is corrupt"):
        read_image(f"oci-archive:{path}:v")
    del files[name]
    path.write_bytes(_tar(files))
    with pytest.raises(FormatError, match=f"blob {layer} .* is missing"):
        read_oci_archive(path, "v")


def test_truncated_and_non_archives(tmp_path: Path) -> None:
    data = _tar(_good_oci_archive(tmp_path))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        last = tar.getmembers()[-1]
    path = tmp_path / "cut.tar"
    path.write_bytes(data[: last.offset_data + last.size // 2])  # inside the last file
    with pytest.raises(ArchiveError, match=f"{path}: "):
        read_oci_archive(path)
    path.write_bytes(data[: last.offset + 100])  # inside the last header
    with pytest.raises((ArchiveError, FormatError), match=f"{path}: "):
        read_oci_archive(path)
    path.write_bytes(gzip.compress(data)[:200])
    with pytest.raises(ArchiveError, match=f"{path}: not a readable tar archive"):
        read_oci_archive(path)
    path.write_bytes(b"hello, not a tar" * 100)
    with pytest.raises(ArchiveError, match=f"{path}: not a readable tar archive") as caught:
        read_docker_archive(path)
    assert "\n" not in str(caught.value)  # one line, whatever tarfile tried
    with pytest.raises(ImageNotFound, match="no such file"):
        read_oci_archive(tmp_path / "missing.tar")
    with pytest.raises(ArchiveError, match="is a directory"):
        read_oci_archive(tmp_path)


def test_broken_oci_archives(tmp_path: Path) -> None:
    files = _good_oci_archive(tmp_path)
    path = tmp_path / "b.tar"
    path.write_bytes(_tar({k: v for k, v in files.items() if k != "index.json"}))
    with pytest.raises(FormatError, match=r"not an OCI archive \(no index.json\)"):
        read_oci_archive(path)
    path.write_bytes(_tar({**files, "index.json": b"{"}))
    with pytest.raises(FormatError, match=f"{path}: index.json: not valid JSON"):
        read_oci_archive(path)
    path.write_bytes(_tar({**files, "oci-layout": b'{"imageLayoutVersion": "9"}'}))
    with pytest.raises(FormatError, match="unsupported or missing imageLayoutVersion"):
        read_oci_archive(path)
    path.write_bytes(_tar(files))
    with pytest.raises(ImageNotFound, match="no image named 'w'"):
        read_oci_archive(path, "w")


def test_broken_docker_archives(tmp_path: Path) -> None:
    image = make_image("x86_64", layers=[{"a": "1"}])
    write_docker_archive(image, tmp_path / "d.tar", ["a:1"])
    with tarfile.open(tmp_path / "d.tar") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    (pi,) = image.images()
    layer_name = f"{pi.config.diff_ids[0][7:]}.tar"
    path = tmp_path / "b.tar"
    cases: list[tuple[dict[str, bytes], str]] = [
        ({k: v for k, v in files.items() if k != "manifest.json"}, "no manifest.json"),
        ({**files, "manifest.json": b"{}"}, "expected a list of objects"),
        ({**files, "manifest.json": b'[{"Config": 1}]'}, "needs 'Config' and 'Layers'"),
        ({k: v for k, v in files.items() if k != layer_name}, "is named in manifest.json but not"),
        ({**files, layer_name: layer_tar({"a": "2"})}, "the config says sha256:"),
        ({**files, layer_name: b"\x1f\x8bnot gzip"}, "layer is not valid gzip"),
        (
            {
                **files,
                "manifest.json": json.dumps(
                    [{"Config": f"{pi.manifest.config.digest[7:]}.json", "Layers": []}]
                ).encode(),
            },
            "lists 1 diff_ids for 0 layers",
        ),
        (
            {
                **files,
                "manifest.json": json.dumps(
                    [{"Config": "../../etc/passwd", "Layers": [layer_name]}]
                ).encode(),
            },
            "a '..' path",
        ),
    ]
    for content, problem in cases:
        path.write_bytes(_tar(content))
        with pytest.raises((FormatError, ArchiveError), match=problem):
            read_docker_archive(path)


def test_a_bundle_read_from_a_layout_can_be_written_anywhere(tmp_path: Path) -> None:
    index = make_index(("x86_64",))
    write_oci(index, tmp_path / "lay", ["t"])
    lazy = read_oci(tmp_path / "lay", "t")
    write_oci_archive(lazy, tmp_path / "a.tar", ["t"])
    write_oci_archive(index, tmp_path / "b.tar", ["t"])
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert isinstance(lazy, ImageBundle)
