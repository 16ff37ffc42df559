"""The multi-architecture fixture image of the distribution tests and benchmark.

:func:`build_fixture_image` runs the real ``alpenglow build`` of ``alpine-base`` from the
realistic repository (tests/support/alpine_repo.py, served on 127.0.0.1) for every
architecture it has, into an OCI layout whose one image is named ``latest``: an index of up
to nine platforms, one gzip layer each (about 1.5 MB a platform).

:func:`random_image` makes a single-platform image whose one layer holds ``size`` random
(incompressible) bytes: big enough for an upload to be interrupted in the middle.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

from alpenglow.oci.image import OCI_LAYER, ImageBundle, canonical_json, image_bundle
from tests.support.alpine_repo import BRANCH, RealisticRepo
from tests.support.mirror import serve

__all__ = ["EPOCH", "build_fixture_image", "random_image"]

EPOCH = "1700000000"
ALPENGLOW = Path(sys.executable).parent / "alpenglow"


def build_fixture_image(repo: RealisticRepo, work: Path) -> Path:
    """``alpenglow build`` of ``alpine-base`` for every architecture of ``repo`` into
    ``work/layout`` (named ``latest``); returns the layout directory."""
    work.mkdir(parents=True, exist_ok=True)
    layout = work / "layout"
    key = sorted(repo.keys_dir.iterdir())[0]
    with serve(repo.mirror) as mirror:
        config = work / "alpine-base.yaml"
        config.write_text(
            "contents:\n"
            f"  repositories: [{mirror.repository(BRANCH)}]\n"
            f"  keyring: [{key}]\n"
            "  packages: [alpine-base]\n"
            f"archs: [{', '.join(repo.arches)}]\n"
            "annotations:\n  org.opencontainers.image.title: alpine-base\n"
        )
        env = dict(os.environ)
        env["SOURCE_DATE_EPOCH"] = EPOCH
        env["XDG_CACHE_HOME"] = str(work / "cache")
        env["ALPENGLOW_STORE"] = str(work / "store")
        done = subprocess.run(
            [
                str(ALPENGLOW),
                "build",
                str(config),
                "--output",
                f"oci:{layout}:latest",
                "--sbom-dir",
                str(work / "sbom"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"alpenglow build failed ({done.returncode}):\n{done.stderr}")
    return layout


def random_image(size: int, *, seed: int = 0, arch: str = "amd64") -> ImageBundle:
    """A one-layer image (uncompressed tar) whose layer holds ``size`` pseudo-random bytes
    made from ``seed`` (different seeds, different blobs)."""
    payload = random.Random(seed).randbytes(size)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("data/random.bin")
        info.size = size
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    layer = out.getvalue()
    config = canonical_json(
        {
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()],
            },
        }
    )
    return image_bundle(config, [(OCI_LAYER, layer)])
