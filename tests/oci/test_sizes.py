"""Size reports: compressed sizes per platform and packages from the apk database in layers."""

from __future__ import annotations

import gzip
import hashlib

import pytest

import alpenglow.oci.sizes as sizes_module
from alpenglow.errors import ArchiveError, DatabaseError
from alpenglow.oci.image import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, image_bundle
from alpenglow.oci.sizes import PackageSize, read_image_file, size_report
from tests.oci.images import config_for, installed_db, layer_tar, make_image, make_index

DB = installed_db([("musl", "1.2.5-r0", 700_000), ("busybox", "1.36.1-r2", 900_000), ("z", "1", 0)])


def test_exports() -> None:
    assert sorted(dir(sizes_module)) == sorted(sizes_module.__all__)


def test_packages_sorted_by_installed_size() -> None:
    image = make_image("x86_64", {"lib/apk/db/installed": DB, "bin/busybox": b"\x7fELF"})
    (report,) = size_report(image)
    assert report.packages == (
        PackageSize("busybox", "1.36.1-r2", 900_000),
        PackageSize("musl", "1.2.5-r0", 700_000),
        PackageSize("z", "1", 0),
    )
    assert report.installed_size == 1_600_000
    (pi,) = image.images()
    assert report.compressed_size == pi.compressed_size
    assert report.digest == image.root.digest
    assert report.layers == 1


def test_every_platform_is_reported() -> None:
    index = make_index(("x86_64", "aarch64"))
    reports = size_report(index)
    assert [str(r.platform) for r in reports] == ["linux/amd64", "linux/arm64/v8"]
    assert all(r.packages is None for r in reports)
    assert [r.installed_size for r in reports] == [0, 0]
    assert size_report(index, packages=False)[0].packages is None


def test_apko_location_is_found() -> None:
    image = make_image("x86_64", {"usr/lib/apk/db/installed": DB})
    (report,) = size_report(image)
    assert report.packages is not None
    assert report.packages[0].name == "busybox"


def test_upper_layers_win_and_whiteouts_hide() -> None:
    small = installed_db([("only", "1", 5)])
    replaced = make_image(
        "x86_64", layers=[{"lib/apk/db/installed": DB}, {"lib/apk/db/installed": small}]
    )
    assert size_report(replaced)[0].packages == (PackageSize("only", "1", 5),)
    for whiteout in ("lib/apk/db/.wh.installed", "lib/apk/.wh.db", "lib/apk/db/.wh..wh..opq"):
        deleted = make_image(
            "x86_64", layers=[{"lib/apk/db/installed": DB}, {whiteout: b"", "x": b"1"}]
        )
        assert size_report(deleted)[0].packages is None, whiteout
        (pi,) = deleted.images()
        assert read_image_file(deleted, pi, "lib/apk/db/installed") is None
        assert read_image_file(deleted, pi, "/x") == b"1"


def test_opaque_directory_keeps_its_own_new_files() -> None:
    image = make_image(
        "x86_64",
        layers=[
            {"lib/apk/db/installed": DB},
            {"lib/apk/db/.wh..wh..opq": b"", "lib/apk/db/installed": installed_db([("n", "1", 1)])},
        ],
    )
    assert size_report(image)[0].packages == (PackageSize("n", "1", 1),)


def test_uncompressed_layers() -> None:
    raw = layer_tar({"lib/apk/db/installed": DB})
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    image = image_bundle(config_for("x86_64", [digest]), [(OCI_LAYER, raw)])
    assert size_report(image)[0].packages is not None


def test_unreadable_layers() -> None:
    raw = layer_tar({"a": "1"})
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    zstd = image_bundle(config_for("x86_64", [digest]), [(OCI_LAYER_ZSTD, b"\x28\xb5\x2f\xfd")])
    with pytest.raises(ArchiveError, match="zstd-compressed layers cannot be read"):
        size_report(zstd)
    broken = image_bundle(
        config_for("x86_64", [digest]), [(OCI_LAYER_GZIP, gzip.compress(raw)[:40])]
    )
    with pytest.raises(ArchiveError, match="not a readable layer tar"):
        size_report(broken)


def test_a_bad_database_is_named() -> None:
    image = make_image("x86_64", {"lib/apk/db/installed": b"P:x\nV:1\nnot a field line\n\n"})
    with pytest.raises(DatabaseError, match=r"\(linux/amd64\): lib/apk/db/installed: line 3"):
        size_report(image)
