"""``alpenglow images``: the store listing, through the real console script."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from alpenglow.cli._table import format_columns, human_size
from alpenglow.oci.store import ImageStore
from tests.cli.conftest import ALPENGLOW, Run
from tests.oci.images import make_image, make_index


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


def env_for(store: ImageStore) -> dict[str, str]:
    return {"ALPENGLOW_STORE": str(store.path)}


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (3_790_000, "3.79MB"),
        (8_300_000, "8.3MB"),
        (999_999, "1MB"),
        (12_345_678_901, "12.3GB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_format_columns() -> None:
    assert format_columns(("A", "BB"), [("xxx", "y"), ("z", "")]) == [
        "A     BB",
        "xxx   y",
        "z",
    ]


def test_empty_store(run_cli: Run, store: ImageStore) -> None:
    proc = run_cli("images", env=env_for(store))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "PLATFORMS", "SIZE"]
    assert not store.path.exists()


def test_rows_quiet_and_json(run_cli: Run, store: ImageStore) -> None:
    index = make_index(("x86_64", "aarch64"))
    single = make_image("armv7")
    store.add(index, ["alpine-base", "alpine-base:3.22"])
    store.add(single, ["localhost:5000/tools/app:1"])
    proc = run_cli("images", env=env_for(store))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "PLATFORMS", "SIZE"]
    rows = [line.split() for line in lines[1:]]
    short = index.root.digest[7:19]
    assert rows == [
        ["alpine-base", "3.22", short, "linux/amd64,linux/arm64/v8", human_size(index.size)],
        ["alpine-base", "latest", short, "linux/amd64,linux/arm64/v8", human_size(index.size)],
        [
            "localhost:5000/tools/app",
            "1",
            single.root.digest[7:19],
            "linux/arm/v7",
            human_size(single.size),
        ],
    ]
    # columns line up like docker's
    assert len({line.index(short) for line in lines[1:3]}) == 1

    quiet = run_cli("images", "-q", env=env_for(store))
    assert quiet.stdout.split() == [short, single.root.digest[7:19]]
    full = run_cli("images", "-q", "--no-trunc", env=env_for(store))
    assert full.stdout.split() == [index.root.digest, single.root.digest]

    data = json.loads(run_cli("images", "--format", "json", env=env_for(store)).stdout)
    assert data[0] == {
        "repository": "alpine-base",
        "tag": "3.22",
        "id": short,
        "digest": index.root.digest,
        "platforms": ["linux/amd64", "linux/arm64/v8"],
        "size": index.size,
        "created": "2024-01-01T00:00:00Z",
    }


def test_a_terminal_gets_a_rich_table(store: ImageStore) -> None:
    store.add(make_image(), ["app"])
    controller, terminal = pty.openpty()
    env = {**os.environ, **env_for(store), "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen(
        [str(ALPENGLOW), "images"], stdout=terminal, stderr=terminal, env=env, close_fds=True
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert proc.wait(60) == 0
    text = b"".join(chunks).decode()
    assert "REPOSITORY" in text
    assert "app" in text
    assert "linux/amd64" in text


def test_a_damaged_image_is_warned_about(run_cli: Run, store: ImageStore) -> None:
    image = make_image()
    store.add(image, ["broken"])
    store.layout.blob_path(image.root.digest).unlink()
    proc = run_cli("images", env=env_for(store))
    assert proc.returncode == 0
    assert "<damaged>" in proc.stdout
    assert proc.stderr.startswith("WARNING: broken:latest: ")
    assert "is missing" in proc.stderr


def test_a_corrupt_store_is_one_error_line(run_cli: Run, store: ImageStore) -> None:
    store.add(make_image(), ["app"])
    (store.path / "index.json").write_text("{")
    proc = run_cli("images", env=env_for(store))
    assert proc.returncode == 1
    assert proc.stderr.startswith("ERROR: ")
    assert "index.json: not valid JSON" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr
