"""The OCI image configuration of a built image: what ``docker inspect`` shows as Config.

Pure: from the build configuration, the base image's configuration (if any), the platform,
the layers' diff_ids and the build epoch to the config JSON document. Rules:

- ``Env`` starts from the base image's (or from ``PATH`` as the official image sets it); the
  configuration's ``environment`` overrides by name, in the configuration's order.
- ``Entrypoint``/``Cmd``: the configuration's when given; otherwise the base's; otherwise
  ``Cmd ["/bin/sh"]`` like the official ``alpine`` image. An entrypoint without a ``cmd`` drops
  an inherited ``Cmd`` (docker's rule for ``ENTRYPOINT`` in a Dockerfile).
- ``User``, ``WorkingDir``, ``StopSignal`` from the configuration, else inherited.
- ``Volumes``: inherited, plus the configuration's ``volumes``.
- ``Labels``: inherited labels, then the configuration's annotations (so
  ``org.opencontainers.image.*`` are visible to ``docker inspect`` too).
- ``created`` and every history entry carry the build epoch, so the same inputs give the
  same bytes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_PATH",
    "ConfigInputs",
    "image_config",
    "rfc3339",
]


def __dir__() -> list[str]:
    return __all__


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def rfc3339(epoch: int) -> str:
    """``2024-01-02T03:04:05Z`` for an epoch (UTC, whole seconds).

    >>> rfc3339(0)
    '1970-01-01T00:00:00Z'
    """
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(frozen=True, slots=True)
class ConfigInputs:
    """Everything that decides an image configuration."""

    architecture: str
    os: str
    variant: str
    diff_ids: tuple[str, ...]
    """All layers' diff_ids, base layers first."""
    epoch: int
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    work_dir: str | None = None
    stop_signal: str | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    volumes: tuple[str, ...] = ()
    history_comment: str = ""
    """What the new layer holds, e.g. ``alpine-base, busybox, musl``."""
    base: Mapping[str, Any] | None = None
    """The base image's parsed configuration document."""


def _env(base: Sequence[str], overrides: Sequence[tuple[str, str]]) -> list[str]:
    env: dict[str, str] = {}
    for item in base:
        key, _, value = item.partition("=")
        env[key] = value
    if "PATH" not in env:
        env = {"PATH": DEFAULT_PATH, **env}
    for key, value in overrides:
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]


def image_config(inputs: ConfigInputs) -> bytes:
    """The config document (canonical JSON: sorted keys, no spaces)."""
    base = inputs.base or {}
    base_cfg: Mapping[str, Any] = base.get("config") or {}
    cfg: dict[str, Any] = {
        "Env": _env(base_cfg.get("Env") or [], inputs.environment),
    }
    entrypoint: list[str] | None = list(base_cfg.get("Entrypoint") or []) or None
    cmd: list[str] | None = list(base_cfg.get("Cmd") or []) or None
    if inputs.entrypoint:
        entrypoint = list(inputs.entrypoint)
        cmd = None
    if inputs.cmd is not None:
        cmd = list(inputs.cmd)
    if entrypoint is None and cmd is None:
        cmd = ["/bin/sh"]
    if entrypoint:
        cfg["Entrypoint"] = entrypoint
    if cmd:
        cfg["Cmd"] = cmd
    for key, value in (
        ("User", inputs.user),
        ("WorkingDir", inputs.work_dir),
        ("StopSignal", inputs.stop_signal),
    ):
        chosen = value if value is not None else base_cfg.get(key)
        if chosen:
            cfg[key] = chosen
    volumes = {**dict(base_cfg.get("Volumes") or {}), **{v: {} for v in inputs.volumes}}
    if volumes:
        cfg["Volumes"] = volumes
    labels = dict(base_cfg.get("Labels") or {})
    labels.update(inputs.annotations)
    if labels:
        cfg["Labels"] = labels
    created = rfc3339(inputs.epoch)
    history = list(base.get("history") or [])
    history.append(
        {
            "created": created,
            "created_by": "alpenglow build",
            "comment": inputs.history_comment,
        }
    )
    doc: dict[str, Any] = {
        "architecture": inputs.architecture,
        "os": inputs.os,
        "created": created,
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": list(inputs.diff_ids)},
        "history": history,
    }
    if inputs.variant:
        doc["variant"] = inputs.variant
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
