"""The OCI runtime binary (runc, or crun where it works): finding it and talking to it. [edge]

:func:`find_runtime` picks the runtime: ``$ALPENGLOW_OCI_RUNTIME`` (``runc``, ``crun`` or a
path) when set, else crun when it is installed *and* a trivial container runs with it on this
machine, else runc. The verdict on crun is tried once and remembered in
``RUNTIME/oci-runtime.json`` (keyed by the binary's path, size and time, so an upgrade tries
again). crun fails on some machines with hybrid cgroups, so it is never assumed to work.

Every call passes ``--root RUNTIME/runc`` so alpenglow's containers live apart from anyone
else's. A failing call raises :class:`~alpenglow.errors.ContainerError` with the runtime's own
message.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from alpenglow.errors import ContainerError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "OciRuntime",
    "RuntimeState",
    "find_runtime",
    "runtime_for",
    "runtime_message",
]


def __dir__() -> list[str]:
    return __all__


_CANDIDATE_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def runtime_message(stderr: str) -> str:
    """The last meaningful line of a runtime's error output, without logrus decoration.

    >>> runtime_message('time="x" level=error msg="container does not exist"\\n')
    'container does not exist'
    >>> runtime_message('{"level":"error","msg":"exec: \\\\"x\\\\": not found"}')
    'exec: "x": not found'
    """
    for raw in reversed(stderr.strip().splitlines()):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict) and isinstance(obj.get("msg"), str):
                    return str(obj["msg"])
        marker = 'msg="'
        if marker in line:
            text = line[line.index(marker) + len(marker) :]
            end = text.rfind('"')
            text = text[:end] if end >= 0 else text
            return text.replace('\\"', '"')
        return line
    return "no error message"


@dataclass(frozen=True, slots=True)
class RuntimeState:
    """``runc state``: ``status`` is ``creating``, ``created``, ``running``, ``paused`` or
    ``stopped``; ``pid`` the container's init on the host."""

    id: str
    status: str
    pid: int
    bundle: str = ""
    created: str = ""

    @classmethod
    def from_json(cls, obj: Any) -> RuntimeState:
        if not isinstance(obj, dict):
            raise ContainerError("the OCI runtime's state is not a JSON object")
        return cls(
            id=str(obj.get("id", "")),
            status=str(obj.get("status", "")),
            pid=int(obj.get("pid") or 0),
            bundle=str(obj.get("bundle", "")),
            created=str(obj.get("created", "")),
        )


@dataclass(frozen=True, slots=True)
class OciRuntime:
    """One OCI runtime binary with alpenglow's state directory."""

    binary: str
    root: Path

    @property
    def name(self) -> str:
        return os.path.basename(self.binary)

    def argv(self, *args: str, log: Path | None = None) -> list[str]:
        """The command line for ``RUNTIME [--log LOG --log-format json] --root ROOT ARGS``."""
        out = [self.binary]
        if log is not None:
            out += ["--log", str(log), "--log-format", "json"]
        return [*out, "--root", str(self.root), *args]

    def run_argv(
        self,
        container_id: str,
        bundle: Path,
        *,
        pid_file: Path | None = None,
        log: Path | None = None,
        detach: bool = False,
        console_socket: Path | None = None,
    ) -> list[str]:
        """``run`` (create, start and wait; the runtime deletes the container after it
        exits). Its stdio become the container's (a pty it proxies when the bundle's
        process asks for a terminal and ``console_socket`` is not given)."""
        args = ["run", "--bundle", str(bundle)]
        if pid_file is not None:
            args += ["--pid-file", str(pid_file)]
        if detach:
            args.append("--detach")
        if console_socket is not None:
            args += ["--console-socket", str(console_socket)]
        return self.argv(*args, container_id, log=log)

    def exec_argv(
        self,
        container_id: str,
        process: Path,
        *,
        tty: bool = False,
        detach: bool = False,
        pid_file: Path | None = None,
        console_socket: Path | None = None,
        log: Path | None = None,
    ) -> list[str]:
        """``exec --process PROCESS.json`` (a process of the OCI spec's ``process`` form)."""
        args = ["exec", "--process", str(process)]
        if tty:
            args.append("--tty")
        if detach:
            args.append("--detach")
        if pid_file is not None:
            args += ["--pid-file", str(pid_file)]
        if console_socket is not None:
            args += ["--console-socket", str(console_socket)]
        return self.argv(*args, container_id, log=log)

    def _call(self, *args: str, timeout: float = 60) -> str:
        import subprocess

        try:
            done = subprocess.run(
                self.argv(*args),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise ContainerError(f"{self.binary}: not found") from None
        except subprocess.TimeoutExpired:
            raise ContainerError(
                f"{self.name} {args[0]} did not finish within {timeout:.0f} s"
            ) from None
        if done.returncode != 0:
            raise ContainerError(f"{self.name} {args[0]}: {runtime_message(done.stderr)}")
        return done.stdout

    def state(self, container_id: str) -> RuntimeState | None:
        """The runtime's view of the container; None when it does not know it."""
        try:
            out = self._call("state", container_id)
        except ContainerError as exc:
            if "does not exist" in str(exc) or "not found" in str(exc).lower():
                return None
            raise
        try:
            return RuntimeState.from_json(json.loads(out))
        except ValueError:
            raise ContainerError(f"{self.name} state: not JSON: {out[:80]!r}") from None

    def list(self) -> list[RuntimeState]:
        """Every container the runtime knows under alpenglow's root."""
        if not self.root.is_dir():
            return []
        out = self._call("list", "--format", "json").strip()
        if not out or out == "null":
            return []
        try:
            items = json.loads(out)
        except ValueError:
            raise ContainerError(f"{self.name} list: not JSON: {out[:80]!r}") from None
        return [RuntimeState.from_json(item) for item in items or []]

    def create(self, container_id: str, bundle: Path, *, pid_file: Path | None = None) -> None:
        args = ["create", "--bundle", str(bundle)]
        if pid_file is not None:
            args += ["--pid-file", str(pid_file)]
        self._call(*args, container_id)

    def start(self, container_id: str) -> None:
        self._call("start", container_id)

    def kill(self, container_id: str, signal: int | str, *, all_processes: bool = False) -> None:
        args = ["kill"]
        if all_processes:
            args.append("--all")
        self._call(*args, container_id, str(signal))

    def delete(self, container_id: str, *, force: bool = False) -> None:
        """Delete the container from the runtime; a container it does not know is fine."""
        try:
            self._call("delete", *(["--force"] if force else []), container_id)
        except ContainerError as exc:
            if "does not exist" not in str(exc) and "not found" not in str(exc).lower():
                raise


def _which(name: str, environ: Mapping[str, str]) -> str | None:
    """``name`` on ``$PATH``, else in the usual system directories (Debian puts runc in
    /usr/sbin, not always on a user's PATH)."""
    path = environ.get("PATH", "")
    for directory in (*path.split(":"), *_CANDIDATE_DIRS):
        if not directory:
            continue
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _identity(binary: str) -> str:
    st = os.stat(binary)
    return f"{os.path.realpath(binary)}:{st.st_size}:{st.st_mtime_ns}"


def _trial(binary: str, work: Path) -> str | None:
    """None when ``binary`` runs a trivial container (the host's root, read only, running
    ``true``); else why not."""
    import shutil
    import subprocess
    import tempfile

    true = shutil.which("true") or "/bin/true"
    bundle = Path(tempfile.mkdtemp(prefix="trial-", dir=work))
    try:
        config = {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False,
                "user": {"uid": 0, "gid": 0},
                "args": [true],
                "env": ["PATH=/usr/bin:/bin"],
                "cwd": "/",
            },
            "root": {"path": "/", "readonly": True},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts")]},
        }
        (bundle / "config.json").write_text(json.dumps(config))
        state = bundle / "state"
        name = f"alpenglow-trial-{os.getpid()}"
        try:
            done = subprocess.run(
                [binary, "--root", str(state), "run", "--bundle", str(bundle), name],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        finally:
            subprocess.run(
                [binary, "--root", str(state), "delete", "--force", name],
                capture_output=True,
                timeout=30,
                check=False,
            )
        if done.returncode != 0:
            return runtime_message(done.stderr + done.stdout)
        return None
    finally:
        shutil.rmtree(bundle, ignore_errors=True)


def _verdict(binary: str, runtime_dir: Path) -> str | None:
    """Whether ``binary`` works here (None) or why not, tried once and remembered."""
    cache = runtime_dir / "oci-runtime.json"
    key = _identity(binary)
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if key in known:
        problem = known[key]
        return None if problem is None else str(problem)
    runtime_dir.mkdir(parents=True, exist_ok=True)
    problem = _trial(binary, runtime_dir)
    known[key] = problem
    tmp = cache.with_name(f".tmp-{cache.name}.{os.getpid()}")
    tmp.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, cache)
    return problem


def find_runtime(
    runtime_dir: Path, environ: Mapping[str, str], *, prefer: Sequence[str] = ("crun", "runc")
) -> OciRuntime:
    """The OCI runtime to use, with its state under ``runtime_dir/runc``.

    ``$ALPENGLOW_OCI_RUNTIME`` names one explicitly; otherwise the first of ``prefer`` that
    is installed and (for crun) runs a trial container here."""
    root = runtime_dir / "runc"
    wanted = environ.get("ALPENGLOW_OCI_RUNTIME", "")
    if wanted:
        binary = wanted if "/" in wanted else _which(wanted, environ)
        if binary is None or not os.access(binary, os.X_OK):
            raise ContainerError(
                f"ALPENGLOW_OCI_RUNTIME={wanted}: no such executable",
                hint="install runc (apt-get install runc) or unset ALPENGLOW_OCI_RUNTIME",
            )
        return OciRuntime(binary, root)
    for name in prefer:
        binary = _which(name, environ)
        if binary is None:
            continue
        if name == "runc" or _verdict(binary, runtime_dir) is None:
            return OciRuntime(binary, root)
    raise ContainerError(
        "no OCI runtime found (runc or crun)",
        hint="install one: apt-get install runc (Debian), apk add runc (Alpine)",
    )


def runtime_for(binary: str, runtime_dir: Path) -> OciRuntime:
    """The runtime a container was created with (its record names the binary)."""
    return OciRuntime(binary, runtime_dir / "runc")
