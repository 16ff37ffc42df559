"""Containers from images: create, run, observe, stop, remove, prune. [edge]

:class:`Engine` ties the image store, the unpacked layers, the container records and the
OCI runtime together; the CLI commands are thin calls into it. The life of a container:

* :meth:`Engine.create` picks the image for the platform (pulling it when a puller is given
  and the store lacks it), unpacks its missing layers, writes the record, mounts the root
  file system (:meth:`Engine.mount`) and writes the bundle: ``config.json``, ``hosts``,
  ``hostname`` and ``resolv.conf``. The root stays mounted for the start that follows.
* :meth:`Engine.run_attached` runs it in the foreground (``runc run`` with our stdio) and
  records its exit; the detached supervisor (:mod:`alpenglow.runtime.supervisor`) does the
  same for ``run -d``, calling :meth:`Engine.prepare_start` and :meth:`Engine.finish`.
* :meth:`Engine.observe` is the truth for ``ps``: the recorded state, checked against the
  runtime when the process that should record the exit is gone.
* :meth:`Engine.stop`, :meth:`Engine.remove` and :meth:`Engine.prune` end containers and
  remove what they made: mounts first, then the runtime's state, then the directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from alpenglow.errors import AlpenglowError, ContainerError, FormatError
from alpenglow.runtime import binfmt
from alpenglow.runtime.containers import (
    RUNNING,
    Container,
    ContainerPaths,
    ContainerStore,
    State,
    new_id,
    now,
)
from alpenglow.runtime.image import ImageFacts, Puller, image_facts
from alpenglow.runtime.runc import OciRuntime, find_runtime, runtime_for, runtime_message
from alpenglow.runtime.spec import (
    RunOptions,
    container_env,
    hosts_file,
    parse_signal,
    process_args,
    resolve_user,
    runtime_config,
)
from alpenglow.runtime.storage import (
    LayerStore,
    copy_layers,
    mount_overlay,
    overlay_supported,
    unmount,
    unmount_all,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from typing import IO, Any

    from alpenglow.oci.store import ImageStore

__all__ = ["Engine", "PruneResult"]


def __dir__() -> list[str]:
    return __all__


# layer media types that unpack (tar, gzip-compressed or not)
_UNPACKABLE = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    }
)
_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_POLL = 0.02
_UNKNOWN_EXIT = "it exited while nothing watched it; its exit status is unknown"


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What :meth:`Engine.prune` removed: container ids, unpacked layers and bytes freed."""

    containers: tuple[str, ...]
    layers: tuple[str, ...]
    reclaimed: int


def _du(path: Path) -> int:
    """Bytes used below ``path`` (hard links counted once), without crossing mounts."""
    total = 0
    seen: set[tuple[int, int]] = set()
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if st.st_dev != top.st_dev:
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(root, d)).st_dev == top.st_dev]
    return total


def _resolve_in_root(root: Path, path: str, hops: int = 40) -> Path | None:
    """``path`` inside the container root ``root``, its symbolic links followed as they
    would be inside the container (absolute targets from ``root``); None if missing."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        try:
            st = os.lstat(candidate)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            hops -= 1
            if hops < 0:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return root.joinpath(*done)


def _read_in_root(root: Path, path: str) -> str | None:
    found = _resolve_in_root(root, path)
    if found is None:
        return None
    try:
        return found.read_text(errors="replace")
    except OSError:
        return None


def _find_executable(root: Path, name: str, env: Sequence[str], cwd: str) -> tuple[Path, str]:
    """The file ``name`` runs inside the container (looked up in the process's ``PATH``
    when it has no slash), or :class:`ContainerError` worded as runc words it."""
    if "/" in name:
        where = name if name.startswith("/") else f"{cwd.rstrip('/')}/{name}"
        found = _resolve_in_root(root, where)
        if found is None:
            raise ContainerError(
                f'exec: "{name}": stat {name}: no such file or directory', exit_status=127
            )
        return _check_exec(found, name)
    path_value = ""
    for item in env:
        if item.startswith("PATH="):
            path_value = item[5:]
    for entry in path_value.split(":"):
        directory = entry or "."
        base = directory if directory.startswith("/") else f"{cwd.rstrip('/')}/{directory}"
        found = _resolve_in_root(root, f"{base}/{name}")
        if found is None:
            continue
        try:
            st = os.stat(found)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return found, name
    raise ContainerError(f'exec: "{name}": executable file not found in $PATH', exit_status=127)


def _check_exec(found: Path, name: str) -> tuple[Path, str]:
    try:
        st = os.stat(found)
    except OSError:
        raise ContainerError(
            f'exec: "{name}": stat {name}: no such file or directory', exit_status=127
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise ContainerError(f'exec: "{name}": is a directory', exit_status=126)
    if not st.st_mode & 0o111:
        raise ContainerError(f'exec: "{name}": permission denied', exit_status=126)
    return found, name


def _header(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(128)
    except OSError:
        return b""


class Engine:
    """Containers under ``runtime_dir`` made from images in the store at ``store_path``.

    ``environ`` is consulted only to pick the OCI runtime (``ALPENGLOW_OCI_RUNTIME``,
    ``PATH``); ``puller`` fetches images the store lacks (None: a missing image is an
    error)."""

    def __init__(
        self,
        runtime_dir: Path,
        store_path: Path,
        *,
        environ: Mapping[str, str] | None = None,
        puller: Puller | None = None,
    ) -> None:
        self.dir = Path(runtime_dir)
        self.store_path = Path(store_path)
        self._images: ImageStore | None = None
        self.containers = ContainerStore(self.dir)
        self.layers = LayerStore(self.dir / "layers")
        self._environ = dict(environ or {})
        self._puller = puller
        self._oci: OciRuntime | None = None

    def __repr__(self) -> str:
        return f"Engine({str(self.dir)!r})"

    @property
    def images(self) -> ImageStore:
        """The image store (opened when first needed)."""
        if self._images is None:
            from alpenglow.oci.store import ImageStore

            self._images = ImageStore(self.store_path)
        return self._images

    # -- the runtime and the storage kind --------------------------------------------------

    @property
    def oci(self) -> OciRuntime:
        """The OCI runtime new containers are created with (found once)."""
        if self._oci is None:
            self._oci = find_runtime(self.dir, self._environ)
        return self._oci

    def oci_for(self, record: Container) -> OciRuntime:
        """The runtime ``record`` was created with."""
        return runtime_for(record.runtime, self.dir)

    def storage_kind(self) -> str:
        """``overlay`` when overlayfs mounts work here, else ``copy``; tried once and
        remembered in ``RUNTIME/storage.json``."""
        cache = self.dir / "storage.json"
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(cache.read_text())
            if isinstance(known, dict) and known.get("kind") in ("overlay", "copy"):
                return str(known["kind"])
        self.dir.mkdir(parents=True, exist_ok=True)
        kind = "overlay" if overlay_supported(self.dir) else "copy"
        tmp = cache.with_name(f".tmp-{cache.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"kind": kind}) + "\n")
        os.replace(tmp, cache)
        return kind

    # -- images ----------------------------------------------------------------------------

    def image(self, reference: str, platform: str | None = None) -> ImageFacts:
        """What a container of ``reference`` for ``platform`` (``linux/arm64``; the host's
        by default) needs of it; pulled first when missing and a puller was given."""
        return image_facts(
            self.store_path,
            reference,
            platform,
            cache=self.dir / "images.json",
            puller=self._puller,
            store=self._images,
        )

    def _blob_opener(self, digest: str) -> Iterator[IO[bytes]]:
        algorithm, _, hexpart = digest.partition(":")
        path = self.store_path / "blobs" / algorithm / hexpart
        try:
            yield open(path, "rb")  # noqa: SIM115 (closed by the layer store)
        except FileNotFoundError:
            raise FormatError(f"{path}: layer blob {digest} is missing from the store") from None

    def _unpack(self, image: ImageFacts) -> list[Path]:
        out = []
        for layer in image.layers:
            if layer.media_type not in _UNPACKABLE:
                raise ContainerError(
                    f"layer {layer.digest}: cannot unpack media type {layer.media_type}"
                )
            out.append(
                self.layers.ensure(layer.diff_id, self._blob_opener(layer.digest), layer.digest)
            )
        return out

    # -- creation --------------------------------------------------------------------------

    def create(
        self,
        reference: str,
        options: RunOptions,
        *,
        name: str | None = None,
        platform: str | None = None,
        auto_remove: bool = False,
        stop_timeout: int = 10,
    ) -> Container:
        """Create a container of ``reference`` (see the module docstring); its root file
        system is left mounted."""
        if os.geteuid() != 0:
            raise ContainerError(
                "running containers needs root here (rootless containers are not supported)",
                hint="run alpenglow with sudo",
                exit_status=1,
            )
        image = self.image(reference, platform)
        args = process_args(image.entrypoint, image.cmd, options.entrypoint, options.command)
        kind = self.storage_kind()
        runtime = self.oci
        container_id = new_id()
        hostname = options.hostname or (
            os.uname().nodename if options.network == "host" else container_id[:12]
        )
        stop_signal = image.stop_signal or "SIGTERM"
        parse_signal(stop_signal)
        with self.containers.locked():
            self._unpack(image)
            record = Container(
                id=container_id,
                name=name or "",
                created=now(),
                image=reference,
                image_id=image.image_id,
                manifest=image.manifest,
                platform=image.platform,
                layers=image.diff_ids,
                args=args,
                runtime=runtime.binary,
                storage=kind,
                tty=options.tty,
                interactive=options.interactive,
                auto_remove=auto_remove,
                stop_signal=stop_signal,
                stop_timeout=stop_timeout,
                hostname=hostname,
                network=options.network,
                env=options.env,
                user=options.user or image.user,
                workdir=options.workdir or image.working_dir or "/",
                mounts=tuple(str(m) for m in options.mounts),
            )
            record, paths = self.containers.create(record)
        try:
            self.mount(record)
            self._write_bundle(record, paths, image, options)
        except BaseException:
            self._discard(record)
            raise
        return record

    def _write_bundle(
        self, record: Container, paths: ContainerPaths, image: ImageFacts, options: RunOptions
    ) -> None:
        root = paths.rootfs
        user = resolve_user(
            record.user, _read_in_root(root, "/etc/passwd"), _read_in_root(root, "/etc/group")
        )
        env = container_env(
            image.env, options.env, hostname=record.hostname, home=user.home, tty=options.tty
        )
        host_hosts = None
        if record.network == "host":
            with contextlib.suppress(OSError):
                host_hosts = Path("/etc/hosts").read_text()
        try:
            resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            resolv = ""
        paths.hosts.write_text(hosts_file(record.hostname, record.network, host_hosts))
        paths.hostname.write_text(record.hostname + "\n")
        paths.resolv_conf.write_text(resolv)
        for mount in options.mounts:
            source = Path(mount.source)
            if not source.exists():
                source.mkdir(parents=True)  # as docker -v does
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard = 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
        spec = runtime_config(
            args=record.args,
            env=env,
            cwd=record.workdir,
            user=user,
            hostname=record.hostname,
            network=record.network,
            tty=record.tty,
            mounts=options.mounts,
            etc_files={
                "/etc/hosts": str(paths.hosts),
                "/etc/hostname": str(paths.hostname),
                "/etc/resolv.conf": str(paths.resolv_conf),
            },
            nofile=(min(1024, hard), hard),
        )
        tmp = paths.config.with_name(".tmp-config.json")
        tmp.write_text(json.dumps(spec) + "\n")
        os.replace(tmp, paths.config)

    # -- mounts ----------------------------------------------------------------------------

    def mount(self, record: Container) -> Path:
        """Make the container's root file system available at ``rootfs`` (idempotent)."""
        paths = self.containers.paths(record.id)
        root = paths.rootfs
        lower = [self.layers.dir(diff_id) for diff_id in record.layers]
        for layer in lower:
            if not layer.is_dir():
                raise ContainerError(
                    f"container {record.short_id}: unpacked layer {layer.name} is missing",
                    hint="remove the container and run the image again",
                )
        if record.storage == "copy":
            marker = paths.dir / "rootfs.copied"
            if not marker.exists():
                if root.exists():
                    import shutil

                    shutil.rmtree(root)
                copy_layers(lower, root)
                marker.touch()
            return root
        if os.path.ismount(root):
            return root
        for directory in (paths.upper, paths.work, root):
            directory.mkdir(exist_ok=True)
        if not lower:
            empty = paths.dir / "empty"
            empty.mkdir(exist_ok=True)
            lower = [empty]
        mount_overlay(lower, paths.upper, paths.work, root, volatile=record.auto_remove)
        return root

    def unmount(self, record: Container) -> None:
        """Unmount the container's root file system (nothing when it is not mounted)."""
        if record.storage != "copy":
            unmount(self.containers.paths(record.id).rootfs)

    def _discard(self, record: Container) -> None:
        """Remove a container that never ran (creation failed half-way)."""
        paths = self.containers.paths(record.id)
        with contextlib.suppress(AlpenglowError, OSError):
            unmount_all(paths.dir)
        with contextlib.suppress(AlpenglowError, OSError):
            self.containers.delete(record.id)

    # -- running ---------------------------------------------------------------------------

    def prepare_start(self, record: Container) -> ContainerPaths:
        """Everything before the runtime's ``run``: the root mounted, the command checked
        (found in the image, runnable on this machine). On failure the exit status is
        recorded and the :class:`ContainerError` raised."""
        paths = self.containers.paths(record.id)
        state = self.observe(record)
        if state.status == RUNNING:
            raise ContainerError(f"container {record.short_id} is already running")
        self.mount(record)
        try:
            self._check_command(record, paths)
        except ContainerError as exc:
            self.finish(record, exc.exit_status, error=str(exc))
            raise
        return paths

    def _check_command(self, record: Container, paths: ContainerPaths) -> None:
        try:
            process = json.loads(paths.config.read_text())["process"]
            args, env, cwd = process["args"], process["env"], process["cwd"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ContainerError(f"{paths.config}: missing or damaged") from None
        found, name = _find_executable(paths.rootfs, args[0], env, cwd)
        header = _header(found)
        if header.startswith(b"#!"):
            interpreter = header[2:].split(b"\n")[0].strip().split(b" ")[0].decode(errors="replace")
            if interpreter.startswith("/"):
                resolved = _resolve_in_root(paths.rootfs, interpreter)
                if resolved is None:
                    raise ContainerError(
                        f'exec: "{name}": its interpreter {interpreter} is not in the image',
                        exit_status=127,
                    )
                header = _header(resolved)
        binfmt.check_runnable(header, f'exec "{name}"', record.platform)

    def mark_started(self, record: Container, monitor_pid: int, pid: int = 0) -> bool:
        """Record that ``monitor_pid`` now runs the container; False if it was removed."""
        with self.containers.container_lock(record.id) as exists:
            if not exists:
                return False
            state = self.containers.state(record.id)
            self.containers.write_state(
                record.id,
                replace(
                    state.started(pid, monitor_pid),
                    restart_count=state.restart_count + (1 if state.started_at else 0),
                ),
            )
            return True

    def finish(self, record: Container, exit_code: int | None, error: str = "") -> None:
        """Record the container's exit, unmount its root and forget it in the runtime. A
        container removed meanwhile is left alone."""
        with self.containers.container_lock(record.id) as exists:
            if exists:
                state = self.containers.state(record.id)
                self.containers.write_state(record.id, state.exited(exit_code, error))
        self._forget(record)
        if exists:
            with contextlib.suppress(AlpenglowError):
                self.unmount(record)

    def _forget(self, record: Container) -> None:
        """Delete the container from the runtime, if the runtime still has it (``runc run``
        deletes it itself after the process exits)."""
        oci = self.oci_for(record)
        if (oci.root / record.id).exists():
            with contextlib.suppress(AlpenglowError):
                oci.delete(record.id, force=True)

    def runtime_error(self, paths: ContainerPaths, since: float) -> str:
        """The runtime's own error from its log (``runtime.log``) written after ``since``,
        or ""."""
        try:
            if paths.runtime_log.stat().st_mtime < since:
                return ""
            lines = paths.runtime_log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict) and obj.get("level") in ("error", "fatal"):
                    return runtime_message(line)
        return ""

    def run_attached(self, record: Container, *, stdin: bool) -> int:
        """Run the container in the foreground with this process's stdio (stdin only when
        ``stdin``; a terminal the runtime proxies when the container has one) and return
        its exit status, recorded too. Signals sent to this process are passed on."""
        try:
            return self._run_attached(record, stdin=stdin)
        finally:
            if record.auto_remove:
                with contextlib.suppress(AlpenglowError):
                    self.remove(record, force=True)

    def _run_attached(self, record: Container, *, stdin: bool) -> int:
        if record.tty and not os.isatty(0):
            return self._run_supervised(record, stdin=stdin)
        paths = self.prepare_start(record)
        oci = self.oci_for(record)
        with contextlib.suppress(FileNotFoundError):
            paths.runtime_log.unlink()
        started = time.time()
        if not self.mark_started(record, os.getpid()):
            raise ContainerError(f"container {record.short_id} was removed")
        code: int | None = None
        error = ""
        try:
            argv = oci.run_argv(record.id, paths.bundle, log=paths.runtime_log)
            # a --rm container's log would go with it: only kept containers are logged
            log = None if record.tty or record.auto_remove else paths.log
            code = _run_forwarding(argv, stdin=stdin, log=log)
            if code != 0:
                error = self.runtime_error(paths, started)
        finally:
            self.finish(record, code if not error else 125, error)
        if error:
            raise ContainerError(error, exit_status=125)
        return code

    def _run_supervised(self, record: Container, *, stdin: bool) -> int:
        """A container with a terminal while this process has none for the runtime to use
        (``runc run`` needs one): run it under its supervisor, which owns the pty, and stay
        attached to it until it ends (as ``docker run -t`` does)."""
        from alpenglow.runtime.attach import attach
        from alpenglow.runtime.supervisor import supervise

        supervise(self, record, wait_for_attach=True)
        code = attach(
            self.containers.paths(record.id).dir,
            0 if stdin else None,
            1,
            stderr=2,
            detach_keys=b"",
            close_stdin=True,
            sig_proxy=True,
        )
        return 0 if code is None else code

    # -- observing -------------------------------------------------------------------------

    def observe(self, record: Container) -> State:
        """The container's true state: the recorded one, unless it says running while the
        process that should record its exit is gone; then the runtime is asked, and a
        container the runtime no longer runs is recorded as exited (exit status unknown)."""
        state = self.containers.state(record.id)
        if state.status != RUNNING or state.monitor_alive():
            return state
        oci = self.oci_for(record)
        try:
            seen = oci.state(record.id)
        except ContainerError:
            return state
        if seen is not None and seen.status in ("running", "paused", "created", "creating"):
            return replace(state, pid=seen.pid)
        with self.containers.container_lock(record.id) as exists:
            if not exists:
                return state.exited(None, _UNKNOWN_EXIT)
            current = self.containers.state(record.id)
            if current.status != RUNNING or current.monitor_alive():
                return current
            final = current.exited(None, _UNKNOWN_EXIT)
            self.containers.write_state(record.id, final)
        self._forget(record)
        with contextlib.suppress(AlpenglowError):
            self.unmount(record)
        return final

    def ps(self, *, all_containers: bool = True) -> list[tuple[Container, State]]:
        """Every container (newest first) with its observed state; only running ones unless
        ``all_containers``."""
        out = []
        for record in self.containers.list():
            try:
                state = self.observe(record)
            except AlpenglowError:
                continue  # removed while we looked
            if all_containers or state.status == RUNNING:
                out.append((record, state))
        return out

    def wait_exit(self, record: Container, timeout: float) -> State | None:
        """The state once the container has exited, or None if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.observe(record)
            if state.status != RUNNING:
                return state
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL)

    # -- stopping and removing -------------------------------------------------------------

    def kill(self, record: Container, sig: int | str) -> None:
        """Send ``sig`` to the container's init; :class:`ContainerError` if not running."""
        state = self.observe(record)
        if state.status != RUNNING:
            raise ContainerError(f"container {record.short_id} is not running")
        number = parse_signal(sig) if isinstance(sig, str) else sig
        try:
            self.oci_for(record).kill(record.id, number)
        except ContainerError:
            if self.observe(record).status == RUNNING:
                raise

    def stop(self, record: Container, timeout: float | None = None) -> bool:
        """Send the stop signal, wait ``timeout`` seconds (the record's by default), then
        SIGKILL. False when the container was not running."""
        if self.observe(record).status != RUNNING:
            return False
        grace = record.stop_timeout if timeout is None else timeout
        with contextlib.suppress(ContainerError):
            self.kill(record, parse_signal(record.stop_signal))
        if grace > 0 and self.wait_exit(record, grace) is not None:
            return True
        with contextlib.suppress(ContainerError):
            self.kill(record, signal.SIGKILL)
        if self.wait_exit(record, 10) is None:
            raise ContainerError(f"container {record.short_id} did not stop after SIGKILL")
        return True

    def remove(self, record: Container, *, force: bool = False) -> None:
        """Remove the container: refused while it runs unless ``force`` (then killed).
        Every mount below its directory goes, then the runtime's state, then the files."""
        state = self.observe(record)
        if state.status == RUNNING:
            if not force:
                raise ContainerError(
                    f"cannot remove container {record.short_id} ({record.name}): it is running",
                    hint="stop it first, or force the removal (rm -f)",
                    exit_status=1,
                )
            with contextlib.suppress(ContainerError):
                self.oci_for(record).kill(record.id, signal.SIGKILL)
            self.wait_exit(record, 10)
        self._forget(record)
        paths = self.containers.paths(record.id)
        unmount_all(paths.dir)
        self.containers.delete(record.id)

    def prune(self) -> PruneResult:
        """Remove every container that is not running, then the unpacked layers no
        container uses."""
        removed = []
        reclaimed = 0
        for record, state in self.ps(all_containers=True):
            if state.status == RUNNING:
                continue
            size = _du(self.containers.paths(record.id).dir)
            try:
                self.remove(record)
            except ContainerError:
                continue  # started again meanwhile
            removed.append(record.id)
            reclaimed += size
        layers, freed = self.gc_layers()
        return PruneResult(tuple(removed), tuple(layers), reclaimed + freed)

    def gc_layers(self, keep: set[str] | None = None) -> tuple[list[str], int]:
        """Remove unpacked layers no container uses (and not in ``keep``); returns their
        diff_ids and the bytes freed."""
        with self.containers.locked():
            wanted = self.containers.layers_in_use() | (keep or set())
            doomed = [d for d in self.layers.diff_ids() if d not in wanted]
            freed = sum(_du(self.layers.dir(d)) for d in doomed)
            return self.layers.gc(wanted), freed

    def users_of(self, digests: Sequence[str]) -> list[Container]:
        """The containers made from any of ``digests`` (store entries or manifests)."""
        wanted = set(digests)
        return [c for c in self.containers.list() if c.image_id in wanted or c.manifest in wanted]

    def image_layers(self) -> set[str]:
        """The diff_ids of every image left in the store."""
        out: set[str] = set()
        for row in self.images.list():
            if row.problem:
                continue
            with contextlib.suppress(AlpenglowError):
                for image in self.images.get(row.digest).images():
                    out.update(image.config.diff_ids)
        return out

    def inspect(self, record: Container) -> dict[str, Any]:
        """Docker-like ``inspect`` facts of a container."""
        state = self.observe(record)
        paths = self.containers.paths(record.id)
        try:
            spec = json.loads(paths.config.read_text())
        except (OSError, ValueError):
            spec = {}
        process = spec.get("process", {}) if isinstance(spec, dict) else {}
        return {
            "Id": record.id,
            "Name": record.name,
            "Created": record.created,
            "Image": record.image_id,
            "ImageName": record.image,
            "Manifest": record.manifest,
            "Platform": record.platform,
            "Path": record.args[0] if record.args else "",
            "Args": list(record.args[1:]),
            "State": {
                "Status": state.status,
                "Running": state.status == RUNNING,
                "Pid": state.pid,
                "ExitCode": state.exit_code,
                "Error": state.error,
                "StartedAt": state.started_at,
                "FinishedAt": state.finished_at,
                "RestartCount": state.restart_count,
            },
            "Config": {
                "Hostname": record.hostname,
                "User": record.user,
                "Env": process.get("env", []),
                "Cmd": list(record.args),
                "WorkingDir": record.workdir,
                "Tty": record.tty,
                "OpenStdin": record.interactive,
                "StopSignal": record.stop_signal,
                "StopTimeout": record.stop_timeout,
            },
            "HostConfig": {
                "NetworkMode": record.network,
                "AutoRemove": record.auto_remove,
                "Binds": list(record.mounts),
                "Runtime": record.runtime,
            },
            "GraphDriver": {
                "Name": record.storage,
                "Data": {
                    "LowerDir": ":".join(str(self.layers.dir(d)) for d in reversed(record.layers)),
                    "UpperDir": str(paths.upper),
                    "WorkDir": str(paths.work),
                    "MergedDir": str(paths.rootfs),
                },
            },
            "ResolvConfPath": str(paths.resolv_conf),
            "HostnamePath": str(paths.hostname),
            "HostsPath": str(paths.hosts),
            "LogPath": str(paths.log),
        }


def _copy_output(out_fd: int, err_fd: int, log: Path) -> None:
    """Pass the child's output on to our stdout/stderr and append it to ``log`` until both
    pipes are closed. A reader that went away on our side does not stop the logging, and a
    log that cannot be written (a full disk) does not stop the output."""
    import selectors

    from alpenglow.runtime.logs import encode_entries

    streams = {out_fd: (1, "stdout"), err_fd: (2, "stderr")}
    sink: int | None = None
    with contextlib.suppress(OSError):
        sink = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while streams:
            for key, _ in selector.select():
                fd = int(key.fd)
                data = os.read(fd, 65536)
                if not data:
                    selector.unregister(fd)
                    os.close(fd)
                    del streams[fd]
                    continue
                ours, name = streams[fd]
                with contextlib.suppress(OSError):
                    _write_all(ours, data)
                if sink is not None:
                    try:
                        _write_all(sink, encode_entries(name, data, time.time_ns()))
                    except OSError:  # a full disk stops the log, never the container
                        os.close(sink)
                        sink = None
    if sink is not None:
        os.close(sink)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _run_forwarding(argv: list[str], *, stdin: bool, log: Path | None = None) -> int:
    """Run ``argv`` with this process's stdio (stdin: ``/dev/null`` unless ``stdin``) and
    return its exit status (128 + N when signal N killed it). The usual termination signals
    are passed on to it; SIGINT is ignored here while a terminal delivers it to the child as
    well (same process group), and passed on otherwise.

    With ``log``, the child's stdout and stderr come through pipes: what it writes is passed
    on to ours and appended to ``log`` as Docker's json-file lines, so that ``logs`` shows
    the output of foreground containers too."""
    child = 0

    def forward(signum: int, _frame: object) -> None:
        if child:
            with contextlib.suppress(OSError):
                os.kill(child, signum)

    terminal_sends_sigint = False
    with contextlib.suppress(OSError):
        terminal_sends_sigint = os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    previous: dict[int, Any] = {}
    signum: int
    for signum in (*_FORWARDED, signal.SIGINT):
        action: Any = forward
        if signum == signal.SIGINT and terminal_sends_sigint:
            action = signal.SIG_IGN
        previous[signum] = signal.signal(signum, action)
    try:
        actions: list[tuple[Any, ...]] = (
            [] if stdin else [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
        )
        pipes: list[tuple[int, int]] = []
        if log is not None:
            pipes = [os.pipe(), os.pipe()]
            for target, (read_end, write_end) in zip((1, 2), pipes, strict=True):
                actions.append((os.POSIX_SPAWN_DUP2, write_end, target))
                actions.append((os.POSIX_SPAWN_CLOSE, read_end))
        try:
            child = os.posix_spawn(
                argv[0],
                argv,
                os.environ,
                file_actions=actions,
                setsigdef=(*_FORWARDED, signal.SIGINT, signal.SIGPIPE),
            )
        except OSError as exc:
            for read_end, write_end in pipes:
                os.close(read_end)
                os.close(write_end)
            raise ContainerError(f"{argv[0]}: cannot run: {exc.strerror}") from None
        if log is not None:
            for _, write_end in pipes:
                os.close(write_end)
            _copy_output(pipes[0][0], pipes[1][0], log)
        _, status = os.waitpid(child, 0)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.waitstatus_to_exitcode(status)
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
