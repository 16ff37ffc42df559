"""alpenglow.runtime.runc: choosing the OCI runtime (crun only where a trial container runs)
and talking to it. Uses the installed runc (and crun when present); skipped without them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from alpenglow.errors import ContainerError
from alpenglow.runtime import runc
from alpenglow.runtime.runc import OciRuntime, find_runtime, runtime_message

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="OCI runtimes need root here")


def runc_binary() -> str:
    found = shutil.which("runc") or ("/usr/sbin/runc" if os.path.exists("/usr/sbin/runc") else None)
    if found is None:
        pytest.skip("runc is not installed (apt-get install runc)")
    return found


def test_exports() -> None:
    assert sorted(runc.__all__) == sorted(dir(runc))


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        (
            'time="2024-01-01T00:00:00Z" level=error msg="container does not exist"\n',
            "container does not exist",
        ),
        (
            '{"level":"error","msg":"exec: \\"x\\": executable file not found in $PATH"}\n',
            'exec: "x": executable file not found in $PATH',
        ),
        ("plain failure\n\n", "plain failure"),
        ("", "no error message"),
    ],
)
def test_runtime_messages(stderr: str, message: str) -> None:
    assert runtime_message(stderr) == message


def test_command_lines(tmp_path: Path) -> None:
    oci = OciRuntime("/usr/sbin/runc", tmp_path / "state")
    assert oci.name == "runc"
    assert oci.run_argv("c1", tmp_path / "b", log=tmp_path / "log") == [
        "/usr/sbin/runc",
        "--log",
        str(tmp_path / "log"),
        "--log-format",
        "json",
        "--root",
        str(tmp_path / "state"),
        "run",
        "--bundle",
        str(tmp_path / "b"),
        "c1",
    ]
    argv = oci.exec_argv("c1", tmp_path / "p.json", tty=True, detach=True)
    assert argv[-6:] == ["exec", "--process", str(tmp_path / "p.json"), "--tty", "--detach", "c1"]


def test_explicit_choice(tmp_path: Path) -> None:
    binary = runc_binary()
    chosen = find_runtime(tmp_path, {"ALPENGLOW_OCI_RUNTIME": binary})
    assert chosen == OciRuntime(binary, tmp_path / "runc")
    with pytest.raises(ContainerError, match="no such executable"):
        find_runtime(tmp_path, {"ALPENGLOW_OCI_RUNTIME": "no-such-runtime", "PATH": "/nowhere"})


@needs_root
def test_crun_is_used_only_where_it_works(tmp_path: Path) -> None:
    runc_binary()
    crun = shutil.which("crun")
    if crun is None:
        pytest.skip("crun is not installed (apt-get install crun)")
    chosen = find_runtime(tmp_path, os.environ)
    verdicts = json.loads((tmp_path / "oci-runtime.json").read_text())
    [(key, problem)] = verdicts.items()
    assert key.startswith(os.path.realpath(crun) + ":")
    if problem is None:
        assert chosen.name == "crun"
    else:
        assert chosen.name == "runc"  # e.g. "cgroups in hybrid mode not supported"
        assert problem
    before = (tmp_path / "oci-runtime.json").stat().st_mtime_ns
    assert find_runtime(tmp_path, os.environ) == chosen  # remembered, not tried again
    assert (tmp_path / "oci-runtime.json").stat().st_mtime_ns == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith("trial-")]


@needs_root
def test_state_of_unknown_containers(tmp_path: Path) -> None:
    oci = OciRuntime(runc_binary(), tmp_path / "state")
    assert oci.list() == []
    assert oci.state("nope") is None
    oci.delete("nope", force=True)  # deleting what does not exist is fine
    with pytest.raises(ContainerError, match="runc kill"):
        oci.kill("nope", 15)
