"""The image configuration document."""

from __future__ import annotations

import json
from typing import Any

from alpenglow.build.imageconfig import DEFAULT_PATH, ConfigInputs, image_config


def doc(**kw: Any) -> dict[str, Any]:
    inputs = ConfigInputs(
        architecture="arm", os="linux", variant="v7", diff_ids=("sha256:aa",), epoch=86400, **kw
    )
    result: dict[str, Any] = json.loads(image_config(inputs))
    return result


def test_defaults_match_the_official_image() -> None:
    d = doc()
    assert d["config"] == {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["/bin/sh"]}
    assert d["created"] == "1970-01-02T00:00:00Z"
    assert d["rootfs"] == {"type": "layers", "diff_ids": ["sha256:aa"]}
    assert d["variant"] == "v7"
    assert d["history"][0]["created"] == "1970-01-02T00:00:00Z"


def test_configuration_values() -> None:
    d = doc(
        entrypoint=("/usr/bin/python3",),
        environment=(("PATH", "/x"), ("LANG", "C.UTF-8")),
        user="65532",
        work_dir="/app",
        stop_signal="SIGQUIT",
        annotations=(("org.opencontainers.image.source", "https://x"),),
        volumes=("/data",),
    )
    cfg = d["config"]
    assert cfg["Entrypoint"] == ["/usr/bin/python3"]
    assert "Cmd" not in cfg
    assert cfg["Env"] == ["PATH=/x", "LANG=C.UTF-8"]
    assert (cfg["User"], cfg["WorkingDir"], cfg["StopSignal"]) == ("65532", "/app", "SIGQUIT")
    assert cfg["Labels"] == {"org.opencontainers.image.source": "https://x"}
    assert cfg["Volumes"] == {"/data": {}}


def test_inherits_from_base_and_overrides() -> None:
    base = {
        "config": {
            "Env": ["PATH=/base", "A=1"],
            "Cmd": ["/bin/sh"],
            "User": "nobody",
            "Labels": {"a": "1"},
        },
        "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "base"}],
    }
    d = doc(base=base, environment=(("A", "2"),), cmd=("nginx",))
    cfg = d["config"]
    assert cfg["Env"] == ["PATH=/base", "A=2"]
    assert cfg["Cmd"] == ["nginx"]
    assert cfg["User"] == "nobody"
    assert cfg["Labels"] == {"a": "1"}
    assert [h["created_by"] for h in d["history"]] == ["base", "alpenglow build"]


def test_same_inputs_same_bytes() -> None:
    a = ConfigInputs("amd64", "linux", "", ("sha256:bb",), 5, cmd=("x",))
    assert image_config(a) == image_config(a)
    assert b'": ' not in image_config(a)
    assert b", " not in image_config(a)
