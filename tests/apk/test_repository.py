"""Repository lines and index locations."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from alpenglow.apk.repository import (
    Repository,
    RepositoryError,
    cache_file_name,
    index_location,
    load_index,
    parse_repositories,
)


@pytest.mark.parametrize(
    ("line", "url", "tag", "remote"),
    [
        (
            "https://dl-cdn.alpinelinux.org/alpine/v3.21/main",
            "https://dl-cdn.alpinelinux.org/alpine/v3.21/main/x86_64/APKINDEX.tar.gz",
            None,
            True,
        ),
        (
            "@edge http://m/edge/testing/",
            "http://m/edge/testing/x86_64/APKINDEX.tar.gz",
            "edge",
            True,
        ),
        ("/srv/repo", "/srv/repo/x86_64/APKINDEX.tar.gz", None, False),
        ("file:///srv/repo", "file:///srv/repo/x86_64/APKINDEX.tar.gz", None, False),
        ("test:///tmp/r/basic.tar.gz", "test:///tmp/r/basic.tar.gz", None, True),
        ("@t /tmp/r/index.tar.gz", "/tmp/r/index.tar.gz", "t", False),
        ("v3 /srv/repo", "/srv/repo/x86_64/Packages.adb", None, False),
    ],
)
def test_lines(line: str, url: str, tag: str | None, remote: bool) -> None:
    (repo,), warnings = parse_repositories(line + "\n", "x86_64")
    assert warnings == []
    assert (repo.url, repo.tag, repo.remote) == (url, tag, remote)


def test_comments_variables_and_components() -> None:
    text = (
        "# mirrors\n\n"
        "set mirror=https://m.example/alpine\n"
        "set -default mirror=ignored\n"
        "v2 ${mirror}/v3.21 main community\n"
    )
    repos, warnings = parse_repositories(text, "aarch64")
    assert warnings == []
    assert [r.url for r in repos] == [
        "https://m.example/alpine/v3.21/main/aarch64/APKINDEX.tar.gz",
        "https://m.example/alpine/v3.21/community/aarch64/APKINDEX.tar.gz",
    ]
    assert repos[0].base == "https://m.example/alpine/v3.21/main"


def test_bad_lines_stop_parsing_with_apks_warning() -> None:
    repos, warnings = parse_repositories("/a\nbogus /b\n/c\n", "x86_64", source="repos")
    assert [r.url for r in repos] == ["/a/x86_64/APKINDEX.tar.gz"]
    assert warnings == ["repos:2: unrecogized keyword: bogus"]
    _, warnings = parse_repositories("v2 ${nope}/x\n", "x86_64", source="repos")
    assert warnings == ["repos:1: undefined variable: nope"]


def test_index_location() -> None:
    assert index_location("test:///x/y.tar.gz") == "///x/y.tar.gz"
    assert index_location("file:/x") == "/x"
    assert index_location("https://h/x") is None
    assert Repository("test:///x", "test:///").local_path == "///x"
    assert cache_file_name("https://h/x").startswith("APKINDEX.")


def _index_file(tmp_path: Path, text: str) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("APKINDEX")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "index.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    return path


def test_load_index_untrusted_and_missing(tmp_path: Path) -> None:
    path = _index_file(tmp_path, "C:Q1EyN5AdpAOBJWKMR89pp/C66o+OE=\nP:a\nV:1\n\n")
    _, pkgs = load_index(str(path), url="u", keys=None, allow_untrusted=True)
    assert [p.name for p in pkgs] == ["a"]  # type: ignore[attr-defined]
    with pytest.raises(RepositoryError) as exc:
        load_index(str(path), url="u", keys=None, allow_untrusted=False)
    assert exc.value.reason == "UNTRUSTED signature"
    with pytest.raises(RepositoryError) as exc:
        load_index(str(tmp_path / "missing"), url="u", keys=None, allow_untrusted=True)
    assert exc.value.reason == "No such file or directory"
    (tmp_path / "junk").write_bytes(b"not gzip")
    with pytest.raises(RepositoryError) as exc:
        load_index(str(tmp_path / "junk"), url="u", keys=None, allow_untrusted=True)
    assert exc.value.reason == "file format is invalid or inconsistent"
