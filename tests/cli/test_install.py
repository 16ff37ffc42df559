"""``alpenglow apk --root R [--initdb] add/del/upgrade/fix`` changing real roots, through the
console script, with local signed repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpenglow.apk.database import parse_installed
from alpenglow.apk.dependency import parse
from alpenglow.apk.signing import Signer, generate_keypair
from tests.apk.commit_helpers import Repo, d, f, make_repo, snapshot, sym
from tests.cli.conftest import Run


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = make_repo(tmp_path)
    r.add("libz", "1.0-r0", [d("lib"), f("lib/libz.so.1", b"z1")], provides=())
    r.add(
        "tool",
        "1.0-r0",
        [d("usr"), d("usr/bin"), f("usr/bin/tool", b"tool 1", 0o755), sym("usr/bin/t", "tool")],
        depends=(parse("libz"),),
    )
    r.add("clash", "1.0-r0", [d("usr"), d("usr/bin"), f("usr/bin/tool", b"clash")])
    return r


def _apk(run_cli: Run, repo: Repo, root: Path, *args: str) -> tuple[int, str, str]:
    proc = run_cli(
        "apk",
        "--root",
        str(root),
        "--keys-dir",
        str(repo.keys_dir),
        "-X",
        str(repo.base),
        "--no-cache",
        *args,
    )
    return proc.returncode, proc.stdout, proc.stderr


def _names(root: Path) -> list[str]:
    data = (root / "lib/apk/db/installed").read_bytes()
    return [ip.package.name for ip in parse_installed(data)]


def test_initdb_add_del(run_cli: Run, repo: Repo, tmp_path: Path) -> None:
    root = tmp_path / "root"
    code, out, err = _apk(run_cli, repo, root, "--initdb", "add", "tool")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "(1/2) Installing libz (1.0-r0)",
        "(2/2) Installing tool (1.0-r0)",
        "OK: 8 B in 2 packages",
    ]
    assert (root / "usr/bin/tool").read_bytes() == b"tool 1"
    assert (root / "etc/apk/world").read_text() == "tool\n"
    assert _names(root) == ["libz", "tool"]

    code, out, err = _apk(run_cli, repo, root, "del", "tool")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "(1/2) Purging tool (1.0-r0)",
        "(2/2) Purging libz (1.0-r0)",
        "OK: 0 B in 0 packages",
    ]
    assert not (root / "usr").exists()
    assert not (root / "lib/libz.so.1").exists()
    assert (root / "lib/apk/db/installed").read_bytes() == b""
    assert (root / "etc/apk/world").read_bytes() == b"\n"


def test_upgrade_and_fix(run_cli: Run, repo: Repo, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert _apk(run_cli, repo, root, "--initdb", "add", "tool")[0] == 0
    repo.add(
        "tool",
        "2.0-r0",
        [d("usr"), d("usr/bin"), f("usr/bin/tool", b"tool 2", 0o755)],
        depends=(),
    )
    code, out, err = _apk(run_cli, repo, root, "upgrade")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "(1/2) Upgrading tool (1.0-r0 -> 2.0-r0)",
        "(2/2) Purging libz (1.0-r0)",
        "OK: 6 B in 1 packages",
    ]
    assert (root / "usr/bin/tool").read_bytes() == b"tool 2"
    assert not (root / "usr/bin/t").is_symlink()
    assert not (root / "lib").exists() or not (root / "lib/libz.so.1").exists()

    (root / "usr/bin/tool").unlink()
    code, out, err = _apk(run_cli, repo, root, "fix", "tool")
    assert (code, err) == (0, "")
    assert "Reinstalling tool (2.0-r0)" in out
    assert (root / "usr/bin/tool").read_bytes() == b"tool 2"


def test_conflict_fails_and_leaves_the_root(run_cli: Run, repo: Repo, tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert _apk(run_cli, repo, root, "--initdb", "add", "tool")[0] == 0
    before = snapshot(root)
    code, out, err = _apk(run_cli, repo, root, "add", "clash")
    assert code == 1
    assert err == "ERROR: clash-1.0-r0: trying to overwrite usr/bin/tool owned by tool-1.0-r0.\n"
    assert out.splitlines()[-1] == "1 error; 8 B in 2 packages"
    assert snapshot(root) == before

    code, out, err = _apk(run_cli, repo, root, "--force-overwrite", "add", "clash")
    assert code == 0
    assert "WARNING: clash-1.0-r0: overwriting usr/bin/tool owned by tool-1.0-r0." in err
    assert (root / "usr/bin/tool").read_bytes() == b"clash"


def test_untrusted_index_installs_nothing(run_cli: Run, repo: Repo, tmp_path: Path) -> None:
    private, _public = generate_keypair(2048)
    repo.write_index(Signer("stranger-1.rsa.pub", private))
    root = tmp_path / "root"
    code, _out, err = _apk(run_cli, repo, root, "--initdb", "add", "tool")
    assert code != 0
    assert "UNTRUSTED signature" in err
    assert "tool (no such package)" in err
    assert not (root / "lib/apk/db/installed").exists()
    assert not (root / "usr").exists()


def test_hostile_package_is_refused(run_cli: Run, repo: Repo, tmp_path: Path) -> None:
    repo.add("evil", "1.0-r0", [d("etc"), sym("etc/x", "/"), f("etc/x/passwd", b"p")], raw=True)
    root = tmp_path / "root"
    assert _apk(run_cli, repo, root, "--initdb", "add", "tool")[0] == 0
    before = snapshot(root)
    code, _out, err = _apk(run_cli, repo, root, "add", "evil")
    assert code == 1
    assert err == (
        "ERROR: evil-1.0-r0: refusing package: etc/x/passwd lies below etc/x, which the "
        "package ships as a symlink or file\n"
    )
    assert snapshot(root) == before


def test_missing_package_file(run_cli: Run, repo: Repo, tmp_path: Path) -> None:
    (repo.arch_dir / "libz-1.0-r0.apk").unlink()
    root = tmp_path / "root"
    code, _out, err = _apk(run_cli, repo, root, "--initdb", "add", "tool")
    assert code == 1
    assert "libz-1.0-r0.apk: No such file or directory" in err
    assert not root.exists()
