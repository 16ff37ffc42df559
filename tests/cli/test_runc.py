"""Proof it runs: ``alpine-base`` installed by ``alpenglow apk`` from the local HTTP mirror
of the realistic repository, then ``/bin/sh -c 'echo ok'`` run in the root with runc —
natively for x86_64 (and x86), through qemu-user registered with binfmt_misc for the others.

Needs root and Debian's ``runc`` (``qemu-user-static`` for the foreign architectures);
skipped with the reason otherwise, per architecture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alpenglow.apk.package import read_package
from alpenglow.apk.signing import Keyring
from tests.support import debian
from tests.support.alpine_repo import BRANCH, OLD_BRANCH, RealisticRepo
from tests.support.apk_root import apk, install
from tests.support.mirror import Mirror
from tests.support.runc import (
    BinfmtError,
    emulator_problem,
    is_native,
    oci_config,
    qemu_binfmt,
    qemu_emulator,
    run_in_root,
    runc_path,
)

ARCHES = {a.alpine: a for a in debian.ARCHES}

pytestmark = [
    pytest.mark.skipif(runc_path() is None, reason="runc is not installed (apt-get install runc)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="runc containers need root here"),
]


def test_config_is_a_minimal_read_only_container(tmp_path: Path) -> None:
    config = oci_config(["/bin/sh", "-c", "echo ok"], root=tmp_path)
    assert config["root"] == {"path": str(tmp_path), "readonly": True}
    process = config["process"]
    assert isinstance(process, dict)
    assert process["args"] == ["/bin/sh", "-c", "echo ok"]
    assert process["user"] == {"uid": 0, "gid": 0}
    linux = config["linux"]
    assert isinstance(linux, dict)
    assert {"type": "network"} in linux["namespaces"]


@pytest.fixture(scope="module")
def x86_64_root(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return install(realistic_repo, alpine_mirror, "x86_64", tmp_path_factory.mktemp("runc"))


def test_alpine_base_runs_under_runc(x86_64_root: Path) -> None:
    root = x86_64_root
    if not is_native("x86_64"):
        pytest.skip("this machine cannot run x86_64 binaries natively")
    done = run_in_root(root, ["/bin/sh", "-c", "echo ok"])
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")
    # the applet links made by the install work too
    done = run_in_root(root, ["/bin/sh", "-c", "cat /etc/alpine-release; ls /bin/ls"])
    assert (done.returncode, done.stdout) == (0, "3.21.0\n/bin/ls\n"), done.stderr


def test_a_failing_command_reports_its_status(x86_64_root: Path) -> None:
    root = x86_64_root
    if not is_native("x86_64"):
        pytest.skip("this machine cannot run x86_64 binaries natively")
    done = run_in_root(root, ["/bin/sh", "-c", "echo nope >&2; exit 3"])
    assert (done.returncode, done.stdout, done.stderr) == (3, "", "nope\n")
    done = run_in_root(root, ["/bin/sh", "-c", "touch /etc/x"])
    assert done.returncode != 0  # the root is mounted read-only
    assert not (root / "etc" / "x").exists()


def test_a_root_upgraded_to_the_next_branch_still_runs(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path
) -> None:
    if not is_native("x86_64"):
        pytest.skip("this machine cannot run x86_64 binaries natively")
    root = install(realistic_repo, alpine_mirror, "x86_64", tmp_path, OLD_BRANCH)
    assert (root / "etc" / "os-release").is_file()
    assert (root / "etc" / "sysctl.conf").is_file()
    done = apk(realistic_repo, root, "x86_64", alpine_mirror.repository(BRANCH), "upgrade")
    assert done.returncode == 0, done.stderr
    old, new = realistic_repo.versions("busybox", "x86_64")
    assert f"Upgrading busybox ({old} -> {new})" in done.stdout
    assert os.readlink(root / "etc" / "os-release") == "../usr/lib/os-release"
    assert not (root / "etc" / "sysctl.conf").exists()
    assert (root / "etc" / "nsswitch.conf").is_file()
    done = run_in_root(root, ["/bin/sh", "-c", "echo ok; . /etc/os-release; echo $VERSION_ID"])
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n3.21.0\n", "")


def busybox_binary(repo: RealisticRepo, arch: str, where: Path) -> Path:
    """``bin/busybox`` of the repository's busybox package, written to ``where``."""
    path = repo.apk("busybox", arch)
    keys = Keyring.from_directory(repo.keys_dir)
    for entry in read_package(path.read_bytes(), keys, source=str(path)).entries():
        if entry.path == "bin/busybox":
            target = where / f"busybox-{arch}"
            target.write_bytes(entry.data)
            target.chmod(0o755)
            return target
    raise AssertionError(f"{path}: no bin/busybox")


@pytest.mark.parametrize("arch", [a for a in ARCHES if a != "x86_64"])
def test_other_architectures_run_under_qemu(
    realistic_repo: RealisticRepo, alpine_mirror: Mirror, tmp_path: Path, arch: str
) -> None:
    if arch not in realistic_repo.arches:
        pytest.skip(f"{arch}: {realistic_repo.skipped.get(arch, 'not in the repository')}")
    if is_native(arch):
        root = install(realistic_repo, alpine_mirror, arch, tmp_path)
        done = run_in_root(root, ["/bin/sh", "-c", "echo ok"])
    else:
        qemu = ARCHES[arch].qemu
        emulator = qemu_emulator(qemu)
        if emulator is None:
            pytest.skip(f"{arch}: qemu-{qemu}-static is missing (apt-get install qemu-user-static)")
        problem = emulator_problem(emulator, busybox_binary(realistic_repo, arch, tmp_path))
        if problem is not None:
            pytest.skip(f"{arch}: {problem}")
        root = install(realistic_repo, alpine_mirror, arch, tmp_path)
        try:
            with qemu_binfmt(qemu, emulator):
                done = run_in_root(root, ["/bin/sh", "-c", "echo ok"])
        except BinfmtError as exc:
            pytest.skip(f"{arch}: {exc}")
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")
