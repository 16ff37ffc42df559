"""Run a command in a root file system with runc, natively or through qemu-user.

:func:`oci_config` makes a minimal OCI runtime ``config.json`` (pid, ipc, uts, mount and
network namespaces; ``/proc``, ``/dev``, ``/dev/pts``, ``/dev/shm``, ``/sys``; the root read
only, so a run never changes it). :func:`run_in_root` writes a bundle in a temporary
directory, runs ``runc run`` with a private state directory and always ``runc delete -f``
afterwards.

:func:`qemu_binfmt` registers ``qemu-<name>-static`` with binfmt_misc for the duration of a
``with`` block (mounting ``/proc/sys/fs/binfmt_misc`` if needed), with the ``F`` flag so the
kernel opens the emulator at registration and it works inside the container's root; the
magic and mask come from the system's ``/usr/lib/binfmt.d/qemu-<name>.conf``. Only the entry
registered here is removed afterwards (and the mount, when it was made here and is empty).
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BINFMT",
    "BinfmtError",
    "emulator_problem",
    "is_native",
    "oci_config",
    "qemu_binfmt",
    "qemu_emulator",
    "run_in_root",
    "runc_path",
]

BINFMT = Path("/proc/sys/fs/binfmt_misc")
_BINFMT_CONF_DIRS = (Path("/usr/lib/binfmt.d"), Path("/etc/binfmt.d"))
_counter = itertools.count()
_NATIVE = {"x86_64": ("x86_64", "x86"), "aarch64": ("aarch64",)}


class BinfmtError(Exception):
    """binfmt_misc cannot be used here (not mountable, not writable, no magic known)."""


def runc_path() -> str | None:
    """runc on PATH, or in /usr/sbin where Debian puts it (not always on a user's PATH)."""
    found = shutil.which("runc")
    if found is None and os.access("/usr/sbin/runc", os.X_OK):
        return "/usr/sbin/runc"
    return found


def is_native(alpine_arch: str) -> bool:
    """Whether binaries of ``alpine_arch`` run on this machine without an emulator."""
    return alpine_arch in _NATIVE.get(platform.machine(), (platform.machine(),))


def qemu_emulator(qemu_name: str) -> Path | None:
    """The static qemu-user emulator for ``qemu_name`` (e.g. ``aarch64``), if installed."""
    found = shutil.which(f"qemu-{qemu_name}-static")
    return Path(found) if found else None


def emulator_problem(emulator: Path, binary: Path) -> str | None:
    """None when ``emulator`` runs ``binary true``; otherwise why not (e.g. QEMU too old for
    the instructions the binary uses)."""
    try:
        done = subprocess.run(
            [str(emulator), str(binary), "true"], capture_output=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return f"{emulator.name} did not finish running {binary.name} within 30 s"
    if done.returncode == 0:
        return None
    version = subprocess.run(
        [str(emulator), "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.splitlines()[:1]
    detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
    return (
        f"{emulator.name} ({version[0] if version else 'unknown version'}) cannot run this "
        f"{binary.name}: exit status {done.returncode}" + (f" ({detail[0]})" if detail else "")
    )


def oci_config(
    args: Sequence[str], *, root: Path, hostname: str = "alpenglow"
) -> dict[str, object]:
    """A minimal OCI runtime configuration running ``args`` as root in ``root``."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root",
            ],
            "cwd": "/",
            "capabilities": dict.fromkeys(("bounding", "effective", "permitted"), caps),
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(root), "readonly": True},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
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
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/tmp",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777"],
            },
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


def run_in_root(
    root: Path, args: Sequence[str], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in ``root`` with runc; stdout and stderr captured as text.

    The bundle and runc's state live in a temporary directory; the container is always
    deleted (``runc delete -f``) and the directory removed, whatever happened.
    """
    runc = runc_path()
    if runc is None:
        raise FileNotFoundError("runc is not installed")
    work = Path(tempfile.mkdtemp(prefix="alpenglow-runc-"))
    state = work / "state"
    bundle = work / "bundle"
    bundle.mkdir()
    container = f"alpenglow-test-{os.getpid()}-{next(_counter)}"
    (bundle / "config.json").write_text(json.dumps(oci_config(args, root=root.resolve())))
    try:
        return subprocess.run(
            [runc, "--root", str(state), "run", "--bundle", str(bundle), container],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        subprocess.run(
            [runc, "--root", str(state), "delete", "-f", container],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class _Rule:
    magic: str
    mask: str


def _rule(qemu_name: str) -> _Rule:
    for directory in _BINFMT_CONF_DIRS:
        path = directory / f"qemu-{qemu_name}.conf"
        if path.is_file():
            line = path.read_text().strip().splitlines()[0]
            fields = line.split(":")
            # :name:type:offset:magic:mask:interpreter:flags
            if len(fields) >= 8 and fields[2] == "M":
                return _Rule(fields[4], fields[5])
    raise BinfmtError(f"no binfmt magic known for qemu-{qemu_name} (no qemu-{qemu_name}.conf)")


def _mount_binfmt() -> bool:
    """Mount binfmt_misc if it is not; True when mounted here."""
    if (BINFMT / "register").exists():
        return False
    done = subprocess.run(
        ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not (BINFMT / "register").exists():
        raise BinfmtError(f"cannot mount binfmt_misc: {done.stderr.strip()}")
    return True


@contextmanager
def qemu_binfmt(qemu_name: str, emulator: Path) -> Iterator[str]:
    """Register ``emulator`` for ``qemu_name``'s ELF magic (flag ``F``) until the block
    ends; yields the entry's name. Raises :class:`BinfmtError` when that is impossible."""
    rule = _rule(qemu_name)
    mounted = _mount_binfmt()
    name = f"alpenglow-{qemu_name}-{os.getpid()}"
    entry = BINFMT / name
    try:
        try:
            (BINFMT / "register").write_text(f":{name}:M::{rule.magic}:{rule.mask}:{emulator}:F\n")
        except OSError as exc:
            raise BinfmtError(f"cannot register {name} with binfmt_misc: {exc}") from None
        yield name
    finally:
        if entry.exists():
            entry.write_text("-1\n")
        if mounted and not [p for p in BINFMT.iterdir() if p.name not in ("register", "status")]:
            subprocess.run(["umount", str(BINFMT)], capture_output=True, check=False)
