"""Small real images for the oci tests: layer tars made with tarfile, configs, bundles,
and the outside tools (skopeo, umoci, podman) that check what we write."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from alpenglow.oci.image import (
    OCI_LAYER,
    OCI_LAYER_GZIP,
    ImageBundle,
    canonical_json,
    image_bundle,
    index_bundle,
)
from alpenglow.oci.platform import platform_for_arch

__all__ = [
    "config_for",
    "installed_db",
    "layer_tar",
    "make_image",
    "make_index",
    "podman",
    "run_tool",
    "skopeo",
    "umoci",
]


def layer_tar(
    files: Mapping[str, bytes | str], *, symlinks: Mapping[str, str] | None = None
) -> bytes:
    """A reproducible layer tar: parent directories, files, symlinks, sorted, mtime 0."""
    entries: dict[str, tarfile.TarInfo] = {}
    data: dict[str, bytes] = {}
    for name, content in files.items():
        raw = content.encode() if isinstance(content, str) else content
        info = tarfile.TarInfo(name)
        info.size = len(raw)
        info.mode = 0o644
        entries[name] = info
        data[name] = raw
    for name, target in (symlinks or {}).items():
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        entries[name] = info
    for name in list(entries):
        parent = name.rpartition("/")[0]
        while parent and parent not in entries:
            info = tarfile.TarInfo(parent)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            entries[parent] = info
            parent = parent.rpartition("/")[0]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(entries):
            info = entries[name]
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data[name]) if name in data else None)
    return out.getvalue()


def config_for(arch: str, diff_ids: Sequence[str], **extra: object) -> bytes:
    platform = platform_for_arch(arch)
    obj: dict[str, object] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "test"}],
    }
    if platform.variant:
        obj["variant"] = platform.variant
    obj.update(extra)
    return canonical_json(obj)


def make_image(
    arch: str = "x86_64",
    files: Mapping[str, bytes | str] | None = None,
    *,
    layers: Sequence[Mapping[str, bytes | str]] | None = None,
    gzip_layers: bool = True,
) -> ImageBundle:
    """A single-platform image whose layers hold ``files`` (default: a marker file)."""
    layer_files = (
        list(layers) if layers is not None else [files or {"etc/arch": f"{arch}\n".encode()}]
    )
    raw_layers = [layer_tar(f) for f in layer_files]
    diff_ids = ["sha256:" + hashlib.sha256(raw).hexdigest() for raw in raw_layers]
    blobs = [
        (OCI_LAYER_GZIP, gzip.compress(raw, mtime=0)) if gzip_layers else (OCI_LAYER, raw)
        for raw in raw_layers
    ]
    return image_bundle(config_for(arch, diff_ids), blobs, platform=platform_for_arch(arch))


def make_index(arches: Sequence[str] = ("x86_64", "aarch64", "armv7")) -> ImageBundle:
    return index_bundle([make_image(arch) for arch in arches])


def installed_db(packages: Sequence[tuple[str, str, int]]) -> bytes:
    """A minimal apk installed database: (name, version, installed size) per package."""
    stanzas = []
    for name, version, size in packages:
        stanzas.append(f"P:{name}\nV:{version}\nA:x86_64\nS:{size // 2}\nI:{size}\nT:{name}\n")
    return ("\n".join(stanzas) + "\n").encode()


def run_tool(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run an outside tool; skip the test when it is not installed."""
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """skopeo with no signature policy needed and no network (local transports only)."""
    return run_tool("skopeo", "--insecure-policy", *args, check=check)


def umoci(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_tool("umoci", *args, check=check)


def podman(root: Path, runroot: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """podman with its own storage (``root``, vfs driver) and ``runroot`` (podman wants
    that path shorter than 50 characters); skips with podman's own words when it cannot
    run here."""
    base = ("podman", "--root", str(root), "--runroot", str(runroot), "--storage-driver", "vfs")
    probe = run_tool(*base, "images", check=False)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run here: {probe.stderr.strip().splitlines()[-1:]}")
    return run_tool(*base, *args)
