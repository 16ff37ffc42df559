"""Running another process in a running container (``docker exec``) with ``runc exec``. [edge]

The process is described in a ``process.json`` made from the container's own (its
environment, capabilities, limits, user and working directory) with the new command, the
extra environment, and the user and working directory when given; ``runc exec --process``
runs it.

Without a terminal, ``runc exec`` runs in the foreground with this process's stdio (stdin
only when ``interactive``) and its exit status is the process's. With a terminal (``-t``) it
runs detached, handing the pty's master over ``--console-socket``; this process, a child
subreaper, is then the exec'd process's parent: it copies between its own stdio and the
pty (its terminal in raw mode meanwhile, its window size passed on), and waits for the
process's exit status. Either way a process that cannot be started raises
:class:`~alpenglow.errors.ContainerError` with the runtime's message and Docker's status
(127 not found, 126 not runnable); the command is looked for in the container's root
first, as the runtime would, so that this is the common case. (Should the runtime still
fail to start a process without a terminal, its message is on stderr, where the runtime
writes it, and the status is returned.)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from alpenglow.errors import ContainerError, UsageError
from alpenglow.runtime.console import (
    ConsoleSocket,
    Signals,
    become_subreaper,
    raw_terminal,
    set_window_size,
    window_size,
    write_all,
)
from alpenglow.runtime.runc import OciRuntime, runtime_message
from alpenglow.runtime.supervisor import exit_status_of

__all__ = ["exec_in", "exec_process"]


def __dir__() -> list[str]:
    return __all__


_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_DRAIN = 1.0


def _merge_env(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """``base`` with each ``K=V`` of ``extra`` replacing ``K``'s value or appended."""
    merged: dict[str, str] = {}
    for item in (*base, *extra):
        key = item.split("=", 1)[0]
        merged[key] = item
    return list(merged.values())


def exec_process(
    config: Mapping[str, Any],
    args: Sequence[str],
    *,
    tty: bool,
    env: Sequence[str] = (),
    user: tuple[int, int, tuple[int, ...]] | None = None,
    workdir: str = "",
    size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The OCI ``process`` for ``runc exec --process``: the container's (from its
    ``config.json``, ``config``) with ``args``, a terminal or not, ``env`` added (replacing
    variables of the same name), and ``user`` (uid, gid, additional gids), ``workdir`` and
    the terminal's ``size`` (rows, columns) when given.

    >>> p = exec_process({"process": {"args": ["sh"], "env": ["A=1", "B=2"], "cwd": "/"}},
    ...                  ["ls"], tty=True, env=["B=3"], workdir="/tmp", size=(24, 80))
    >>> p["args"], p["env"], p["cwd"], p["terminal"], p["consoleSize"]
    (['ls'], ['A=1', 'B=3', 'TERM=xterm'], '/tmp', True, {'height': 24, 'width': 80})
    """
    if not args:
        raise UsageError("exec needs a command")
    base = config.get("process")
    if not isinstance(base, dict):
        raise ContainerError("the container's config.json has no process")
    process = dict(base)
    process["args"] = list(args)
    process["terminal"] = tty
    variables = _merge_env(list(process.get("env", [])), env)
    if tty and not any(v.startswith("TERM=") for v in variables):
        variables.append("TERM=xterm")
    process["env"] = variables
    if workdir:
        if not workdir.startswith("/"):
            raise UsageError(f"the working directory {workdir!r} is invalid: not absolute")
        process["cwd"] = workdir
    if user is not None:
        uid, gid, additional = user
        process["user"] = {"uid": uid, "gid": gid, "additionalGids": list(additional)}
    process.pop("consoleSize", None)
    if tty and size is not None:
        process["consoleSize"] = {"height": size[0], "width": size[1]}
    return process


def _root_of(config: Mapping[str, Any], bundle: Path) -> Path:
    root = config.get("root")
    path = str(root.get("path", "rootfs")) if isinstance(root, dict) else "rootfs"
    return Path(path) if path.startswith("/") else bundle / path


def _user_of(root: Path, spec: str) -> tuple[int, int, tuple[int, ...]]:
    """``NAME|UID[:GROUP|GID]`` looked up in the container's root."""
    from alpenglow.runtime.engine import _read_in_root
    from alpenglow.runtime.spec import resolve_user

    found = resolve_user(
        spec, _read_in_root(root, "/etc/passwd"), _read_in_root(root, "/etc/group")
    )
    return found.uid, found.gid, tuple(found.additional_gids)


@contextlib.contextmanager
def _scratch(container_dir: Path, suffix: str) -> Iterator[Path]:
    path = container_dir / f"exec-{secrets.token_hex(6)}{suffix}"
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _failure(log: Path, stderr: str) -> ContainerError:
    text = ""
    with contextlib.suppress(OSError):
        text = log.read_text(errors="replace")
    for line in reversed(text.splitlines()):
        with contextlib.suppress(ValueError):
            obj = json.loads(line)
            if isinstance(obj, dict) and obj.get("level") in ("error", "fatal"):
                message = runtime_message(line)
                break
    else:
        message = runtime_message(stderr) if stderr.strip() else "the OCI runtime failed"
    return ContainerError(message, exit_status=exit_status_of(message))


def exec_in(
    container_dir: Path,
    args: Sequence[str],
    *,
    oci: OciRuntime,
    container_id: str,
    tty: bool = False,
    interactive: bool = False,
    env: Sequence[str] = (),
    user: str = "",
    workdir: str = "",
    bundle: Path | None = None,
    stdin: int = 0,
    stdout: int = 1,
    stderr: int = 2,
) -> int:
    """Run ``args`` in the running container ``container_id`` (whose bundle, by default
    ``container_dir``, holds its ``config.json``) and return its exit status (128 + the
    signal that killed it). Input comes from ``stdin`` only when ``interactive``."""
    container_dir = Path(container_dir)
    bundle = container_dir if bundle is None else Path(bundle)
    try:
        config = json.loads((bundle / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ContainerError(f"{bundle / 'config.json'}: cannot read: {exc}") from None
    root = _root_of(config, bundle)
    resolved = _user_of(root, user) if user else None
    size = window_size(stdin) if tty else None
    if tty and size is None:
        size = window_size(stdout)
    process = exec_process(
        config, args, tty=tty, env=env, user=resolved, workdir=workdir, size=size
    )
    # runc would say the same, but on the process's own stderr, and then its status 255
    from alpenglow.runtime.engine import _find_executable

    _find_executable(root, process["args"][0], process["env"], str(process.get("cwd", "/")))
    with _scratch(container_dir, ".json") as spec_path, _scratch(container_dir, ".log") as log:
        spec_path.write_text(json.dumps(process))
        if tty:
            return _exec_tty(
                container_dir, oci, container_id, spec_path, log, interactive, stdin, stdout
            )
        argv = oci.exec_argv(container_id, spec_path, log=log)
        with _passing_signals() as children:
            try:
                child = subprocess.Popen(
                    argv,
                    stdin=stdin if interactive else subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                )
            except OSError as exc:
                raise ContainerError(f"{oci.binary}: cannot run: {exc.strerror}") from None
            children.append(child.pid)
            returncode = child.wait()
        code = 128 - returncode if returncode < 0 else returncode
        if code == 255 and "exec failed" in _failure(log, "").message:
            # the runtime could not start it, and said why on stderr (the process's too)
            return _failure(log, "").exit_status
        return code


@contextlib.contextmanager
def _passing_signals() -> Iterator[list[int]]:
    """Pass termination signals to the pids put in the yielded list; SIGINT too, unless
    a terminal sends it to them as well (same process group)."""
    pids: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signum)

    from_terminal = False
    with contextlib.suppress(OSError):
        from_terminal = os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    previous: dict[int, Any] = {}
    for number in (*_FORWARDED, signal.SIGINT):
        action: Any = signal.SIG_IGN if number == signal.SIGINT and from_terminal else forward
        previous[number] = signal.signal(number, action)
    try:
        yield pids
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _exec_tty(
    container_dir: Path,
    oci: OciRuntime,
    container_id: str,
    spec_path: Path,
    log: Path,
    interactive: bool,
    stdin: int,
    stdout: int,
) -> int:
    become_subreaper()
    with (
        _scratch(container_dir, ".pid") as pid_file,
        ConsoleSocket(container_dir, f"exec-{secrets.token_hex(6)}.sock") as console,
    ):
        argv = oci.exec_argv(
            container_id,
            spec_path,
            tty=True,
            detach=True,
            pid_file=pid_file,
            console_socket=Path(console.path),
            log=log,
        )
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ContainerError(f"{oci.binary} exec: {exc}") from None
        if done.returncode != 0:
            raise _failure(log, done.stderr)
        try:
            master = console.receive(timeout=10)
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError) as exc:
            raise ContainerError(f"{oci.name} exec: no terminal or pid came back: {exc}") from None
    try:
        return _pump(master, pid, stdin if interactive else None, stdout)
    finally:
        os.close(master)


def _pump(master: int, pid: int, stdin: int | None, stdout: int) -> int:
    """Copy ``stdin`` to the pty and the pty to ``stdout`` until the process ``pid`` ends;
    its exit status."""
    os.set_blocking(master, False)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = -1
    watched: tuple[int, ...] = (*_FORWARDED, signal.SIGINT)
    if stdin is not None and os.isatty(stdin):
        watched = (*watched, signal.SIGWINCH)
    status: int | None = None
    reading = stdin is not None
    master_open = True
    deadline = 0.0
    try:
        with raw_terminal(stdin), Signals(watched) as signals:
            while True:
                if status is None:
                    status = _reaped(pid)
                    if status is not None:
                        deadline = time.monotonic() + _DRAIN
                if status is not None and (not master_open or time.monotonic() > deadline):
                    return status
                poller = select.poll()
                poller.register(signals.read_fd, select.POLLIN)
                if master_open:
                    poller.register(master, select.POLLIN)
                if reading and stdin is not None and status is None:
                    poller.register(stdin, select.POLLIN)
                if pidfd >= 0 and status is None:
                    poller.register(pidfd, select.POLLIN)
                if status is not None:
                    wait = max(0, int((deadline - time.monotonic()) * 1000) + 1)
                else:
                    wait = 200 if pidfd < 0 or not master_open else -1
                events = dict(poller.poll(wait))
                if signals.read_fd in events:
                    for number in signals.take():
                        if number == signal.SIGWINCH:
                            size = window_size(stdin) if stdin is not None else None
                            if size:
                                set_window_size(master, *size)
                        else:
                            with contextlib.suppress(OSError):
                                os.kill(pid, number)
                if master_open and master in events:
                    try:
                        data = os.read(master, 65536)
                    except BlockingIOError:
                        data = None
                    except OSError:
                        data = b""
                    if data == b"":
                        master_open = False
                    elif data:
                        write_all(stdout, data)
                if stdin is not None and reading and stdin in events:
                    try:
                        data = os.read(stdin, 65536)
                    except BlockingIOError:
                        data = None
                    except OSError:
                        data = b""
                    if data == b"" or (data and not write_all(master, data, timeout=10)):
                        reading = False
    finally:
        if pidfd >= 0:
            os.close(pidfd)
        if status is None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGHUP)


def _reaped(pid: int) -> int | None:
    """The exit status of the child ``pid`` if it has ended."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None if os.path.exists(f"/proc/{pid}") else 255
    if done == 0:
        return None
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
