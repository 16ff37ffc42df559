"""Container records: what was created from which image, and what became of it. [edge]

Everything lives under the runtime directory (:func:`default_runtime_dir`)::

    RUNTIME/
      lock                       flock: container creation and layer garbage collection
      layers/sha256/<hex>/       unpacked image layers (alpenglow.runtime.storage)
      runc/                      the OCI runtime's own state (``runc --root``)
      containers/<id>/           one directory per container (:class:`ContainerPaths`)
        container.json           the record (:class:`Container`), written once at creation
        state.json               what became of it (:class:`State`), rewritten on each change
        config.json              the OCI bundle's runtime configuration
        rootfs/ upper/ work/     the overlay mount and its upper and work directories
        hosts hostname resolv.conf   bind-mounted into the container

A record never changes after creation; the state is written by whoever runs the container
(the foreground ``alpenglow run`` or the detached container's supervisor), always atomically
(temporary file and ``os.replace``) and under the container's lock (an ``flock`` on its
directory), so a reader sees the old state or the new one, never half of one.

Ids are 64 hex digits (never all-digit in their first 12, so a short id is never read as a
number); any unique prefix finds a container, and so does its name. Names are unique and
generated Docker-style (``adjective_noun``) when not given.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from alpenglow.errors import AlpenglowError, ContainerNotFound, FormatError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CREATED",
    "EXITED",
    "RUNNING",
    "Container",
    "ContainerPaths",
    "ContainerStore",
    "State",
    "check_name",
    "default_runtime_dir",
    "format_time",
    "new_id",
    "now",
    "parse_time",
    "process_start_time",
    "random_name",
    "valid_name",
]


def __dir__() -> list[str]:
    return __all__


CREATED = "created"
RUNNING = "running"
EXITED = "exited"
_STATUSES = (CREATED, RUNNING, EXITED)
_HEX = frozenset("0123456789abcdef")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _ALNUM | frozenset("_.-")
_TMP = ".tmp-"


def _is_id(text: str) -> bool:
    return len(text) == 64 and _HEX.issuperset(text)


def default_runtime_dir(environ: Mapping[str, str]) -> Path:
    """``$ALPENGLOW_RUNTIME_DIR``, else ``$XDG_DATA_HOME/alpenglow/runtime``, else
    ``$HOME/.local/share/alpenglow/runtime``."""
    explicit = environ.get("ALPENGLOW_RUNTIME_DIR")
    if explicit:
        return Path(explicit)
    data_home = environ.get("XDG_DATA_HOME", "")
    if data_home and Path(data_home).is_absolute():
        return Path(data_home) / "alpenglow" / "runtime"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "alpenglow" / "runtime"


# --------------------------------------------------------------------------------------------
# Times, ids and names


def now() -> str:
    """The current time as RFC 3339 UTC with microseconds (``2024-05-01T10:00:00.123456Z``)."""
    return format_time(time.time())


def format_time(seconds: float) -> str:
    whole = int(seconds)
    micros = round((seconds - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time; 0.0 for an empty string."""
    if not text:
        return 0.0
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def new_id() -> str:
    """A random 64-hex container id whose 12-digit short form is not all digits."""
    while True:
        candidate = os.urandom(32).hex()
        if not candidate[:12].isdigit():
            return candidate


_ADJECTIVES = [
    "brave",
    "bold",
    "calm",
    "clever",
    "cool",
    "crisp",
    "eager",
    "fancy",
    "gentle",
    "happy",
    "jolly",
    "keen",
    "kind",
    "lucid",
    "merry",
    "misty",
    "nimble",
    "noble",
    "quiet",
    "quick",
    "rapid",
    "serene",
    "sharp",
    "shy",
    "silent",
    "snowy",
    "steady",
    "sunny",
    "swift",
    "tender",
    "vivid",
    "wise",
    "witty",
    "zealous",
]
_NOUNS = [
    "alder",
    "aspen",
    "birch",
    "cedar",
    "cirque",
    "col",
    "cornice",
    "couloir",
    "crag",
    "crest",
    "fir",
    "gentian",
    "glacier",
    "larch",
    "ibex",
    "marmot",
    "moraine",
    "peak",
    "pika",
    "pine",
    "ridge",
    "saddle",
    "scree",
    "serac",
    "snowfield",
    "spruce",
    "summit",
    "tarn",
    "edelweiss",
    "chamois",
    "ptarmigan",
]


def random_name() -> str:
    """A Docker-style name: ``adjective_noun`` (a digit is appended by the store on a clash)."""
    pick = int.from_bytes(os.urandom(8), "big")
    return f"{_ADJECTIVES[pick % len(_ADJECTIVES)]}_{_NOUNS[(pick >> 32) % len(_NOUNS)]}"


def valid_name(name: str) -> bool:
    """Docker's rule for container names: ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``, at most 128."""
    return 0 < len(name) <= 128 and name[0] in _ALNUM and _NAME_CHARS.issuperset(name)


def process_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of process ``pid``, or None when it does not
    exist. Together with the pid it names one process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces and parentheses
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        state = fields[0]
        if state in (b"Z", b"X"):
            return None
        return int(fields[19])
    except (IndexError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class Container:
    """A container as created: its identity, its image and how to run it. Never changes."""

    id: str
    name: str
    created: str
    image: str
    """The image as the user named it (``alpine-base``, ``alpine-base:latest``, an id)."""
    image_id: str
    """The store entry's digest (index or manifest) at creation time."""
    manifest: str
    """The digest of the platform manifest the container runs."""
    platform: str
    layers: tuple[str, ...]
    """The image's ``diff_id``s, lowest first: what the root file system is made of."""
    args: tuple[str, ...]
    """The process's command line (entrypoint and command)."""
    runtime: str = "runc"
    """The OCI runtime binary (path) the container was created with."""
    storage: str = "overlay"
    """``overlay`` (an overlay mount over the unpacked layers) or ``copy``."""
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    hostname: str = ""
    network: str = "host"
    env: tuple[str, ...] = ()
    user: str = ""
    workdir: str = "/"
    mounts: tuple[str, ...] = ()
    """The bind mounts as given (``HOST:CTR[:ro]``), for display."""

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("layers", "args", "env", "mounts"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_json(cls, obj: Any, source: str) -> Container:
        if not isinstance(obj, dict):
            raise FormatError(f"{source}: not a container record (expected a JSON object)")
        try:
            values: dict[str, Any] = {}
            for name in cls.__dataclass_fields__:
                if name in obj:
                    value = obj[name]
                    values[name] = tuple(value) if isinstance(value, list) else value
            record = cls(**values)
        except TypeError as exc:
            raise FormatError(f"{source}: not a container record ({exc})") from None
        if not _is_id(str(record.id)):
            raise FormatError(f"{source}: bad container id {record.id!r}")
        return record


@dataclass(frozen=True, slots=True)
class State:
    """What became of a container. ``exit_code`` is None while it has not exited, and also
    when it exited unobserved (its supervisor was gone); ``error`` then says why."""

    status: str = CREATED
    pid: int = 0
    """The container's init process on the host (0 when not running)."""
    exit_code: int | None = None
    started_at: str = ""
    finished_at: str = ""
    monitor_pid: int = 0
    """The process that waits for the container and records its exit (the foreground
    ``alpenglow run``, or the supervisor)."""
    monitor_start: int = 0
    """``monitor_pid``'s start time (:func:`process_start_time`), to tell it from a reuse."""
    error: str = ""
    restart_count: int = 0
    extra: tuple[tuple[str, Any], ...] = field(default=())
    """Keys written by newer or other writers, kept as they are."""

    def __post_init__(self) -> None:
        if self.status not in _STATUSES:
            raise ValueError(f"bad container status {self.status!r}")

    def monitor_alive(self) -> bool:
        """Whether the recorded monitor process still exists (the same process)."""
        if self.monitor_pid <= 0:
            return False
        return process_start_time(self.monitor_pid) == self.monitor_start

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for name in self.__dataclass_fields__:
            if name != "extra":
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, obj: Any, source: str) -> State:
        if not isinstance(obj, dict):
            raise FormatError(f"{source}: not a container state (expected a JSON object)")
        known = {k: v for k, v in obj.items() if k in cls.__dataclass_fields__ and k != "extra"}
        extra = tuple(sorted((k, v) for k, v in obj.items() if k not in known))
        try:
            return cls(**known, extra=extra)
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{source}: not a container state ({exc})") from None

    def started(self, pid: int, monitor_pid: int) -> State:
        """This state, now running (exit code and finish time cleared)."""
        return replace(
            self,
            status=RUNNING,
            pid=pid,
            exit_code=None,
            started_at=now(),
            finished_at="",
            monitor_pid=monitor_pid,
            monitor_start=process_start_time(monitor_pid) or 0,
            error="",
        )

    def exited(self, exit_code: int | None, error: str = "") -> State:
        """This state, now exited with ``exit_code`` (None: unknown)."""
        return replace(
            self,
            status=EXITED,
            pid=0,
            exit_code=exit_code,
            finished_at=now(),
            monitor_pid=0,
            monitor_start=0,
            error=error,
        )


@dataclass(frozen=True, slots=True)
class ContainerPaths:
    """The files of one container, all inside :attr:`dir` (which is also the OCI bundle)."""

    dir: Path

    @property
    def record(self) -> Path:
        return self.dir / "container.json"

    @property
    def state(self) -> Path:
        return self.dir / "state.json"

    @property
    def bundle(self) -> Path:
        return self.dir

    @property
    def config(self) -> Path:
        return self.dir / "config.json"

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def hosts(self) -> Path:
        return self.dir / "hosts"

    @property
    def hostname(self) -> Path:
        return self.dir / "hostname"

    @property
    def resolv_conf(self) -> Path:
        return self.dir / "resolv.conf"

    @property
    def log(self) -> Path:
        """The container's output log (written by the supervisor of a detached container)."""
        return self.dir / "container.log"

    @property
    def runtime_log(self) -> Path:
        """The OCI runtime's own log (``runc --log``), in JSON lines."""
        return self.dir / "runtime.log"

    @property
    def pid_file(self) -> Path:
        """Where the OCI runtime writes the container's init pid (``--pid-file``)."""
        return self.dir / "init.pid"


def _rmtree(path: Path) -> None:
    """Remove the directory ``path`` and all it holds; symbolic links are removed, never
    followed (``os.fwalk`` works on directory descriptors)."""
    for _root, dirs, files, rootfd in os.fwalk(path, topdown=False, follow_symlinks=False):
        for name in files:
            os.unlink(name, dir_fd=rootfd)
        for name in dirs:
            try:
                os.rmdir(name, dir_fd=rootfd)
            except NotADirectoryError:  # a symbolic link to a directory
                os.unlink(name, dir_fd=rootfd)
    os.rmdir(path)


def _write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file in the same directory)."""
    data = json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"
    tmp = path.with_name(f"{_TMP}{path.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _read_json(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FormatError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FormatError(f"{path}: not valid JSON") from None


# --------------------------------------------------------------------------------------------
# The store


class ContainerStore:
    """The containers under ``RUNTIME/containers`` (created on the first write)."""

    def __init__(self, runtime_dir: Path | str) -> None:
        self.runtime_dir = Path(runtime_dir)
        self.path = self.runtime_dir / "containers"
        self._lock_fd = -1
        self._lock_depth = 0

    def __repr__(self) -> str:
        return f"ContainerStore({str(self.runtime_dir)!r})"

    # -- locks -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the runtime directory's exclusive lock (container creation, name changes,
        layer unpacking and garbage collection); re-entrant within this object."""
        if self._lock_depth == 0:
            self.runtime_dir.mkdir(parents=True, exist_ok=True)
            path = self.runtime_dir / "lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._lock_fd = fd
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    @contextlib.contextmanager
    def container_lock(self, container_id: str) -> Iterator[bool]:
        """Hold the lock of one container (an ``flock`` on its directory). Yields False when
        the container's directory no longer exists (it was removed): write nothing then."""
        try:
            fd = os.open(self.paths(container_id).dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self.paths(container_id).record.exists()
        finally:
            os.close(fd)

    # -- paths -----------------------------------------------------------------------------

    def paths(self, container_id: str) -> ContainerPaths:
        if not _is_id(container_id):
            raise ValueError(f"bad container id {container_id!r}")
        return ContainerPaths(self.path / container_id)

    # -- creation and removal --------------------------------------------------------------

    def create(self, record: Container) -> tuple[Container, ContainerPaths]:
        """Make the container's directory and write its record and a ``created`` state;
        returns the record as written and its paths.

        The name must be free (:class:`UsageError` otherwise); an empty name is replaced by
        a generated free one. The check and the creation happen under :meth:`locked`."""
        with self.locked():
            taken = {c.name: c.id for c in self._records()}
            if not record.name:
                record = replace(record, name=self.free_name(taken))
            if record.name in taken:
                raise UsageError(
                    f'the container name "/{record.name}" is already in use by container '
                    f'"{taken[record.name]}"',
                    hint="remove (or rename) that container to reuse the name",
                )
            paths = self.paths(record.id)
            self.path.mkdir(parents=True, exist_ok=True)
            paths.dir.mkdir(mode=0o700)
            _write_json(paths.state, State().to_json())
            _write_json(paths.record, record.to_json())
        return record, paths

    def free_name(self, taken: Collection[str] | None = None) -> str:
        """A generated name no container has (none of ``taken``, when given)."""
        if taken is None:
            taken = {c.name for c in self._records()}
        name = random_name()
        if name not in taken:
            return name
        for i in range(2, 10_000):
            if f"{name}{i}" not in taken:
                return f"{name}{i}"
        return f"{name}_{os.urandom(3).hex()}"

    def delete(self, container_id: str) -> None:
        """Remove the container's directory (nothing may still be mounted in it)."""
        paths = self.paths(container_id)
        for attempt in range(5):
            try:
                _rmtree(paths.dir)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                # a monitor writing its final state at the same moment: try again
                if exc.errno != errno.ENOTEMPTY or attempt == 4:
                    raise AlpenglowError(
                        f"{paths.dir}: cannot remove: {exc.strerror}",
                        hint="is something still mounted in it? (see /proc/self/mountinfo)",
                    ) from None
                time.sleep(0.05)

    # -- reading ---------------------------------------------------------------------------

    def _ids(self) -> list[str]:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return [n for n in names if _is_id(n)]

    def _records(self) -> list[Container]:
        out = []
        for container_id in self._ids():
            try:
                out.append(self.record(container_id))
            except (FileNotFoundError, FormatError):
                continue  # being created or removed right now, or damaged
        return out

    def record(self, container_id: str) -> Container:
        path = self.paths(container_id).record
        return Container.from_json(_read_json(path), str(path))

    def list(self) -> list[Container]:
        """Every container, newest first."""
        return sorted(self._records(), key=lambda c: (c.created, c.id), reverse=True)

    def find(self, text: str) -> Container:
        """The container named ``text``: a full id, a name, or a unique id prefix (Docker's
        order). :class:`ContainerNotFound` or an ambiguity error otherwise."""
        query = text.strip().removeprefix("/")
        if not query:
            raise ContainerNotFound("no container given")
        records = self._records()
        for record in records:
            if record.id == query:
                return record
        for record in records:
            if record.name == query:
                return record
        if _HEX.issuperset(query):
            matches = [r for r in records if r.id.startswith(query)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise AlpenglowError(
                    f"container id prefix {query!r} is ambiguous "
                    f"({len(matches)} containers start with it)"
                )
        raise ContainerNotFound(f"no such container: {text}", hint="see `alpenglow ps -a`")

    def state(self, container_id: str) -> State:
        """The recorded state (not checked against the runtime; see the lifecycle module)."""
        path = self.paths(container_id).state
        try:
            return State.from_json(_read_json(path), str(path))
        except FileNotFoundError:
            raise ContainerNotFound(f"no such container: {container_id}") from None

    def set_state(self, container_id: str, state: State) -> bool:
        """Write ``state`` under the container's lock; False (nothing written) when the
        container was removed meanwhile."""
        with self.container_lock(container_id) as exists:
            if not exists:
                return False
            self.write_state(container_id, state)
            return True

    def write_state(self, container_id: str, state: State) -> None:
        """Write ``state`` atomically (the caller holds the container's lock)."""
        _write_json(self.paths(container_id).state, state.to_json())

    def layers_in_use(self) -> set[str]:
        """The diff_ids of every container's image (what layer gc must keep)."""
        used: set[str] = set()
        for record in self._records():
            used.update(record.layers)
        return used


def check_name(name: str) -> str:
    """``name`` if Docker would accept it as a container name, else :class:`UsageError`."""
    if not valid_name(name):
        raise UsageError(
            f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name
