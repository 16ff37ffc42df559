"""The OCI runtime configuration (``config.json``) of a container, from its image and flags.

Pure: the image config, the parsed flags and a few facts about the host come in; a JSON-ready
dict comes out. What it makes follows Docker's defaults for a container that is not
privileged: new pid, ipc, uts and mount namespaces (and a network namespace holding only
``lo`` for ``--network none``; none for ``--network host``), ``/proc``, ``/dev`` (a tmpfs with a
minimal device list), ``/dev/pts``, ``/dev/shm``, ``/dev/mqueue`` and a read-only ``/sys``,
Docker's default capability set, its masked and read-only paths, and ``/etc/hosts``,
``/etc/hostname`` and ``/etc/resolv.conf`` bind-mounted from files of the container.

>>> parse_volume("/srv/data:/data:ro", "/")
BindMount(source='/srv/data', destination='/data', readonly=True)
>>> resolve_user("app", "root:x:0:0:root:/root:/bin/sh\\napp:x:1000:1000::/home/app:/bin/sh\\n",
...              "app:x:1000:\\nwheel:x:10:root,app\\n")
ProcessUser(uid=1000, gid=1000, additional_gids=(10,), home='/home/app', name='app')
>>> process_args((), ("/bin/sh",), None, ("echo", "hi"))
('echo', 'hi')
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alpenglow.errors import ContainerError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_PATH",
    "MASKED_PATHS",
    "READONLY_PATHS",
    "BindMount",
    "ProcessUser",
    "RunOptions",
    "container_env",
    "hosts_file",
    "parse_env",
    "parse_env_file",
    "parse_signal",
    "parse_volume",
    "process_args",
    "resolve_user",
    "runtime_config",
]


def __dir__() -> list[str]:
    return __all__


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
"""Docker's default capabilities for a container that is not privileged."""

MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# (path, type, major, minor): what a container's /dev holds besides pts, shm and mqueue.
_DEVICES = (
    ("/dev/null", "c", 1, 3),
    ("/dev/zero", "c", 1, 5),
    ("/dev/full", "c", 1, 7),
    ("/dev/random", "c", 1, 8),
    ("/dev/urandom", "c", 1, 9),
    ("/dev/tty", "c", 5, 0),
)
# Device cgroup rules: everything denied, then these allowed (Docker's list).
_ALLOWED_DEVICES = (
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    *((kind, major, minor, "rwm") for _, kind, major, minor in _DEVICES),
    ("c", 5, 1, "rwm"),  # /dev/console
    ("c", 5, 2, "rwm"),  # /dev/ptmx
    ("c", 136, None, "rwm"),  # /dev/pts/*
    ("c", 10, 200, "rwm"),  # /dev/net/tun
)

NETWORKS = ("host", "none")
_SPACE = frozenset(" \t\n\r\v\f")


def _env_name(key: str) -> bool:
    return bool(key) and "=" not in key and _SPACE.isdisjoint(key)


@dataclass(frozen=True, slots=True)
class BindMount:
    """``-v HOST:CTR[:ro]``: a host path bind-mounted into the container."""

    source: str
    destination: str
    readonly: bool = False

    def __str__(self) -> str:
        return f"{self.source}:{self.destination}{':ro' if self.readonly else ''}"


@dataclass(frozen=True, slots=True)
class ProcessUser:
    """Who the container's process runs as."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"
    name: str = ""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The flags of ``run`` that shape the container (the CLI parses them into this)."""

    command: tuple[str, ...] = ()
    entrypoint: str | None = None
    """``--entrypoint``: None keeps the image's; "" clears it."""
    env: tuple[str, ...] = ()
    """``KEY=VALUE`` in the order given (``--env-file`` first, then ``-e``)."""
    workdir: str = ""
    user: str = ""
    mounts: tuple[BindMount, ...] = ()
    network: str = "host"
    hostname: str = ""
    tty: bool = False
    interactive: bool = False


def parse_volume(text: str, cwd: str) -> BindMount:
    """``HOST:CTR[:OPTIONS]`` with OPTIONS ``ro`` or ``rw``; a relative host path (starting
    with ``.``) is taken from ``cwd``. Named volumes are not supported."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError(f"invalid volume {text!r}: expected HOST:CONTAINER[:ro]")
    source, destination = parts[0], parts[1]
    readonly = False
    if len(parts) == 3:
        options = parts[2].split(",")
        for option in options:
            if option not in ("ro", "rw", "z", "Z", ""):
                raise UsageError(f"invalid volume {text!r}: unknown option {option!r}")
        readonly = "ro" in options
    if source.startswith("."):
        source = _join(cwd, source)
    if not source.startswith("/"):
        raise UsageError(
            f"invalid volume {text!r}: named volumes are not supported; give an absolute "
            "host path (or one starting with ./)"
        )
    if not destination.startswith("/"):
        raise UsageError(f"invalid volume {text!r}: the container path must be absolute")
    if _normal(destination) == "/":
        raise UsageError(f"invalid volume {text!r}: cannot mount over the container's /")
    return BindMount(_normal(source), _normal(destination), readonly)


def _join(base: str, path: str) -> str:
    return _normal(f"{base.rstrip('/')}/{path}")


def _normal(path: str) -> str:
    """Collapse ``.``, ``..`` and repeated slashes of an absolute path, lexically."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def parse_env(items: Sequence[str], environ: Mapping[str, str]) -> tuple[str, ...]:
    """``-e`` values: ``KEY=VALUE`` as given; a bare ``KEY`` takes the host's value (and is
    dropped when the host has none), as Docker does."""
    out = []
    for item in items:
        key, sep, _ = item.partition("=")
        if not _env_name(key):
            raise UsageError(f"invalid environment variable {item!r}")
        if sep:
            out.append(item)
        elif key in environ:
            out.append(f"{key}={environ[key]}")
    return tuple(out)


def parse_env_file(text: str, source: str, environ: Mapping[str, str]) -> tuple[str, ...]:
    """A Docker env file: one ``KEY=VALUE`` (or bare ``KEY``) per line; blank lines and lines
    starting with ``#`` are skipped, values are taken literally (no quotes removed)."""
    items = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key = line.partition("=")[0]
        if not _env_name(key):
            raise UsageError(f"{source}:{number}: invalid environment variable {raw!r}")
        items.append(line if "=" in line else line.rstrip())
    return parse_env(items, environ)


def parse_signal(text: str) -> int:
    """A signal by name (``SIGTERM``, ``TERM``, ``term``) or number.

    >>> parse_signal("SIGQUIT"), parse_signal("hup"), parse_signal("9")
    (3, 1, 9)
    """
    cleaned = text.strip().upper()
    if cleaned.isdigit():
        number = int(cleaned)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = cleaned if cleaned.startswith("SIG") else f"SIG{cleaned}"
        value = getattr(signal.Signals, name, None) if name.isidentifier() else None
        if isinstance(value, signal.Signals):
            return int(value)
        if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
            base = signal.SIGRTMIN if name.startswith("SIGRTMIN") else signal.SIGRTMAX
            rest = name[8:]
            try:
                offset = int(rest) if rest else 0
            except ValueError:
                offset = None
            if offset is not None and signal.SIGRTMIN <= base + offset <= signal.SIGRTMAX:
                return int(base + offset)
    raise UsageError(f"invalid signal {text!r}")


def _entries(text: str | None) -> list[list[str]]:
    if not text:
        return []
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.split(":"))
    return out


def resolve_user(spec: str, passwd: str | None, group: str | None) -> ProcessUser:
    """Docker's ``USER``/``-u``: ``NAME|UID[:GROUP|GID]``, looked up in the image's
    ``/etc/passwd`` and ``/etc/group`` texts (None when the image has no such file).

    A numeric uid need not exist (its group is then 0 and its home ``/``); a name must.
    Without an explicit group, the additional groups are those of ``/etc/group`` listing
    the user as a member (runc's rule); with one, there are none."""
    user_part, _, group_part = (spec or "0").partition(":")
    users = _entries(passwd)
    entry: list[str] | None = None
    for fields in users:
        if len(fields) >= 7 and (
            fields[0] == user_part or (user_part.isdigit() and fields[2] == user_part)
        ):
            entry = fields
            break
    if entry is None:
        if not user_part.isdigit():
            raise ContainerError(
                f"unable to find user {user_part}: no matching entries in passwd file"
            )
        uid, gid, home, name = int(user_part), 0, "/", ""
    else:
        try:
            uid, gid = int(entry[2]), int(entry[3])
        except ValueError:
            raise ContainerError(f"/etc/passwd: bad entry for user {entry[0]!r}") from None
        home, name = entry[5] or "/", entry[0]
    groups = _entries(group)
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            for fields in groups:
                if len(fields) >= 3 and fields[0] == group_part and fields[2].isdigit():
                    gid = int(fields[2])
                    break
            else:
                raise ContainerError(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
    additional: list[int] = []
    if name and not group_part:
        for fields in groups:
            if len(fields) >= 4 and fields[2].isdigit() and name in fields[3].split(","):
                number = int(fields[2])
                if number != gid and number not in additional:
                    additional.append(number)
    return ProcessUser(uid, gid, tuple(additional), home, name)


def process_args(
    entrypoint: Sequence[str] | None,
    cmd: Sequence[str] | None,
    entrypoint_flag: str | None,
    command: Sequence[str],
) -> tuple[str, ...]:
    """The process's command line, by Docker's rules: ``--entrypoint`` replaces the image's
    entrypoint and drops its command; a command given on the line replaces the image's."""
    if entrypoint_flag is not None:
        base: tuple[str, ...] = (entrypoint_flag,) if entrypoint_flag else ()
        rest = tuple(command)
    else:
        base = tuple(entrypoint or ())
        rest = tuple(command) if command else tuple(cmd or ())
    args = base + rest
    if not args:
        raise UsageError("no command specified (the image has neither Entrypoint nor Cmd)")
    return args


def container_env(
    image_env: Sequence[str],
    flags: Sequence[str],
    *,
    hostname: str,
    home: str,
    tty: bool,
) -> tuple[str, ...]:
    """The process environment: ``PATH`` and ``HOSTNAME``, the image's ``Env``, then the
    flags (later wins, order of first appearance kept), ``TERM`` for a terminal and
    ``HOME`` from the user's passwd entry unless set."""
    merged: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    for item in (*image_env, *flags):
        key, _, value = item.partition("=")
        merged[key] = value
    if tty:
        merged.setdefault("TERM", "xterm")
    merged.setdefault("HOME", home)
    return tuple(f"{k}={v}" for k, v in merged.items())


def hosts_file(hostname: str, network: str, host_hosts: str | None = None) -> str:
    """``/etc/hosts``: the host's for ``--network host`` (as Docker does), else loopback
    names and the container's hostname."""
    if network == "host" and host_hosts is not None:
        return host_hosts if host_hosts.endswith("\n") or not host_hosts else host_hosts + "\n"
    return (
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "ff00::0\tip6-mcastprefix\n"
        "ff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
        f"127.0.1.1\t{hostname}\n"
    )


def _device_rule(kind: str, major: int | None, minor: int | None, access: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


def _bind(source: str, destination: str, readonly: bool) -> dict[str, Any]:
    options = ["rbind", "rprivate"]
    if readonly:
        options.append("ro")
    return {"destination": destination, "type": "bind", "source": source, "options": options}


def runtime_config(
    *,
    args: Sequence[str],
    env: Sequence[str],
    cwd: str,
    user: ProcessUser,
    hostname: str,
    network: str,
    tty: bool,
    mounts: Sequence[BindMount] = (),
    etc_files: Mapping[str, str] | None = None,
    nofile: tuple[int, int] = (1024, 1024),
    rootfs: str = "rootfs",
) -> dict[str, Any]:
    """The OCI runtime ``config.json`` (spec 1.0.2).

    ``etc_files`` maps ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf`` to the host
    files bind-mounted there; ``nofile`` is ``RLIMIT_NOFILE`` (soft, hard), which must not
    exceed the host's hard limit."""
    if network not in NETWORKS:
        raise UsageError(f"unknown network {network!r} (use host or none)")
    if not cwd.startswith("/"):
        raise UsageError(f"the working directory must be absolute, not {cwd!r}")
    caps = list(DEFAULT_CAPABILITIES)
    namespaces = ["pid", "ipc", "uts", "mount"]
    if network != "host":
        namespaces.append("network")
    spec_mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": []},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
    ]
    for destination, source in sorted((etc_files or {}).items()):
        spec_mounts.append(_bind(source, destination, readonly=False))
    for mount in mounts:
        spec_mounts.append(_bind(mount.source, mount.destination, mount.readonly))
    user_json: dict[str, Any] = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        user_json["additionalGids"] = list(user.additional_gids)
    soft, hard = nofile
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": tty,
            "user": user_json,
            "args": list(args),
            "env": list(env),
            "cwd": cwd,
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}],
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": spec_mounts,
        "linux": {
            "namespaces": [{"type": t} for t in namespaces],
            "devices": [
                {
                    "path": path,
                    "type": kind,
                    "major": major,
                    "minor": minor,
                    "fileMode": 0o666,
                    "uid": 0,
                    "gid": 0,
                }
                for path, kind, major, minor in _DEVICES
            ],
            "resources": {
                "devices": [
                    {"allow": False, "access": "rwm"},
                    *(_device_rule(*rule) for rule in _ALLOWED_DEVICES),
                ]
            },
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
