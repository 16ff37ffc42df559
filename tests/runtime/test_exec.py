"""The process ``exec`` gives ``runc exec --process`` (real runs: tests/cli/test_attach.py)."""

from __future__ import annotations

from typing import Any

import pytest

from alpenglow.errors import ContainerError, UsageError
from alpenglow.runtime import exec as exec_module
from alpenglow.runtime.exec import exec_process

CONFIG: dict[str, Any] = {
    "process": {
        "terminal": True,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["/bin/sh"],
        "env": ["PATH=/usr/bin:/bin", "HOME=/home/app", "TERM=xterm-256color"],
        "cwd": "/srv",
        "capabilities": {"bounding": ["CAP_KILL"]},
        "noNewPrivileges": True,
        "consoleSize": {"height": 1, "width": 1},
    }
}


def test_exports() -> None:
    assert set(exec_module.__all__) == {"exec_in", "exec_process"}
    assert sorted(dir(exec_module)) == sorted(exec_module.__all__)


def test_the_containers_process_with_the_new_command() -> None:
    process = exec_process(CONFIG, ["ls", "-l"], tty=False)
    assert process == {
        "terminal": False,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["ls", "-l"],
        "env": ["PATH=/usr/bin:/bin", "HOME=/home/app", "TERM=xterm-256color"],
        "cwd": "/srv",
        "capabilities": {"bounding": ["CAP_KILL"]},
        "noNewPrivileges": True,
    }
    assert CONFIG["process"]["args"] == ["/bin/sh"]  # the config is not changed


def test_environment_user_workdir_and_terminal() -> None:
    process = exec_process(
        CONFIG,
        ["id"],
        tty=True,
        env=["HOME=/root", "NEW=1"],
        user=(0, 0, (10, 11)),
        workdir="/tmp",
        size=(50, 132),
    )
    assert process["env"] == ["PATH=/usr/bin:/bin", "HOME=/root", "TERM=xterm-256color", "NEW=1"]
    assert process["user"] == {"uid": 0, "gid": 0, "additionalGids": [10, 11]}
    assert process["cwd"] == "/tmp"
    assert process["terminal"] is True
    assert process["consoleSize"] == {"height": 50, "width": 132}
    bare = {"process": {"args": ["sh"], "cwd": "/"}}
    assert exec_process(bare, ["sh"], tty=True)["env"] == ["TERM=xterm"]
    assert exec_process(bare, ["sh"], tty=False)["env"] == []


@pytest.mark.parametrize(
    ("config", "args", "workdir", "error", "match"),
    [
        (CONFIG, [], "", UsageError, "needs a command"),
        (CONFIG, ["ls"], "tmp", UsageError, "not absolute"),
        ({}, ["ls"], "", ContainerError, "has no process"),
        ({"process": []}, ["ls"], "", ContainerError, "has no process"),
    ],
)
def test_bad_requests(
    config: dict[str, Any], args: list[str], workdir: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        exec_process(config, args, tty=False, workdir=workdir)
