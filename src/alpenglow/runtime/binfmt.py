"""Running binaries of other architectures: ELF headers and binfmt_misc handlers. [edge]

The kernel runs a foreign binary through an emulator when a ``binfmt_misc`` entry's magic
matches the binary's first bytes. Inside a container the emulator's path does not exist, so
the entry needs the ``F`` (fix binary) flag: the kernel opens the emulator when the entry is
registered and uses that open file in every mount namespace.

:func:`register` adds ``qemu-<name>`` for a qemu-user-static emulator with the magic and
mask of the system's ``/usr/lib/binfmt.d/qemu-<name>.conf`` (or the built-in table) and the
``F`` flag; registering what is already registered does nothing. :func:`check_runnable`
says whether a binary's header can run here (natively or through a matching handler).

>>> elf_machine(b"\\x7fELF\\x02\\x01\\x01" + bytes(11) + b"\\xb7\\x00")
183
>>> qemu_name("linux/arm64/v8"), qemu_name("linux/386")
('aarch64', 'i386')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alpenglow.errors import AlpenglowError, ContainerError

__all__ = [
    "BINFMT",
    "BinfmtEntry",
    "check_runnable",
    "elf_machine",
    "emulator_for",
    "entries",
    "handler_for",
    "native_machines",
    "qemu_name",
    "register",
]


def __dir__() -> list[str]:
    return __all__


BINFMT = Path("/proc/sys/fs/binfmt_misc")
_CONF_DIRS = (Path("/usr/lib/binfmt.d"), Path("/etc/binfmt.d"))

# OCI architecture -> qemu's name for it
_QEMU = {
    "amd64": "x86_64",
    "386": "i386",
    "arm64": "aarch64",
    "arm": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loong64": "loongarch64",
    "mips64le": "mips64el",
}
# ELF e_machine values
_MACHINES = {
    "x86_64": (62, 3),  # EM_X86_64 runs EM_386 too
    "aarch64": (183,),
    "armv7l": (40,),
    "ppc64le": (21,),
    "s390x": (22,),
    "riscv64": (243,),
    "loongarch64": (258,),
}
# magic and mask of ELF executables per qemu name (as Debian's qemu-user-static has them),
# used when the system has no binfmt.d file for that name
_RULES = {
    "aarch64": (
        r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
        r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
    "arm": (
        r"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00",
        r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
}


@dataclass(frozen=True, slots=True)
class BinfmtEntry:
    """One registered binfmt_misc handler (only magic-type entries are read)."""

    name: str
    enabled: bool
    interpreter: str
    flags: str
    offset: int
    magic: bytes
    mask: bytes

    def matches(self, header: bytes) -> bool:
        if not self.enabled or not self.magic:
            return False
        window = header[self.offset : self.offset + len(self.magic)]
        if len(window) < len(self.magic):
            return False
        mask = self.mask or b"\xff" * len(self.magic)
        return all((h & m) == (g & m) for h, m, g in zip(window, mask, self.magic, strict=True))


def qemu_name(platform: str) -> str | None:
    """qemu's name for an OCI platform (``linux/arm64/v8`` -> ``aarch64``), or None."""
    parts = platform.split("/")
    arch = parts[1] if len(parts) >= 2 else parts[0]
    return _QEMU.get(arch)


def elf_machine(header: bytes) -> int | None:
    """The ``e_machine`` of an ELF header, or None when ``header`` is not ELF."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    if header[5] == 1:
        return int.from_bytes(header[18:20], "little")
    return int.from_bytes(header[18:20], "big")


def native_machines() -> tuple[int, ...]:
    """The ELF machines this host runs without an emulator."""
    return _MACHINES.get(os.uname().machine, ())


def entries(root: Path = BINFMT) -> list[BinfmtEntry]:
    """The registered magic-type handlers (empty when binfmt_misc is not mounted)."""
    out = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    for name in names:
        if name in ("register", "status"):
            continue
        try:
            lines = (root / name).read_text().splitlines()
        except OSError:
            continue
        fields: dict[str, str] = {}
        enabled = False
        for line in lines:
            if line in ("enabled", "disabled"):
                enabled = line == "enabled"
                continue
            key, _, value = line.partition(" ")
            fields[key.rstrip(":")] = value.strip()
        try:
            entry = BinfmtEntry(
                name=name,
                enabled=enabled,
                interpreter=fields.get("interpreter", ""),
                flags=fields.get("flags", ""),
                offset=int(fields.get("offset", "0") or 0),
                magic=bytes.fromhex(fields.get("magic", "")),
                mask=bytes.fromhex(fields.get("mask", "")),
            )
        except ValueError:
            continue
        out.append(entry)
    return out


def handler_for(header: bytes, registered: Sequence[BinfmtEntry]) -> BinfmtEntry | None:
    """The first enabled handler whose magic matches ``header``."""
    for entry in registered:
        if entry.matches(header):
            return entry
    return None


def check_runnable(
    header: bytes,
    what: str,
    platform: str,
    registered: Sequence[BinfmtEntry] | None = None,
    native: Sequence[int] | None = None,
) -> None:
    """Raise :class:`ContainerError` (exit status 126) when the binary starting with
    ``header`` can run neither natively nor through a binfmt_misc handler usable in a
    container; ``what`` names it and ``platform`` its image's platform in the message.
    ``registered`` and ``native`` default to this machine's handlers and machines."""
    machine = elf_machine(header)
    if machine is None or machine in (native_machines() if native is None else native):
        return
    handler = handler_for(header, entries() if registered is None else registered)
    name = qemu_name(platform) or "ARCH"
    if handler is None:
        raise ContainerError(
            f"{what}: cannot run a {platform} binary on this {os.uname().machine} "
            "machine: no binfmt_misc handler (emulator) is registered for it",
            hint=f"install qemu-user-static (qemu-{name}-static) and run "
            "`alpenglow system binfmt` as root",
            exit_status=126,
        )
    if "F" not in handler.flags:
        raise ContainerError(
            f"{what}: the binfmt_misc handler {handler.name!r} for {platform} lacks the F "
            "flag, so its emulator cannot be found inside a container",
            hint=f"remove it (echo -1 > {BINFMT}/{handler.name}) and run "
            "`alpenglow system binfmt` as root",
            exit_status=126,
        )


def emulator_for(name: str) -> Path | None:
    """The qemu-user-static emulator for qemu's architecture ``name``, when installed."""
    import shutil

    found = shutil.which(f"qemu-{name}-static")
    if found is None and os.access(f"/usr/bin/qemu-{name}-static", os.X_OK):
        found = f"/usr/bin/qemu-{name}-static"
    return Path(found) if found else None


def _rule(name: str) -> tuple[str, str]:
    for directory in _CONF_DIRS:
        path = directory / f"qemu-{name}.conf"
        try:
            line = path.read_text().strip().splitlines()[0]
        except (OSError, IndexError):
            continue
        fields = line.split(":")  # :name:type:offset:magic:mask:interpreter:flags
        if len(fields) >= 8 and fields[2] == "M" and fields[4]:
            return fields[4], fields[5]
    if name in _RULES:
        return _RULES[name]
    raise AlpenglowError(
        f"no binfmt magic known for qemu-{name} (no qemu-{name}.conf in "
        f"{' or '.join(map(str, _CONF_DIRS))})",
        hint="install qemu-user-static",
    )


def _mount(root: Path) -> None:
    if (root / "register").exists():
        return
    import subprocess

    done = subprocess.run(
        ["mount", "-t", "binfmt_misc", "binfmt_misc", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not (root / "register").exists():
        raise AlpenglowError(
            f"cannot mount binfmt_misc on {root}: {done.stderr.strip() or 'unknown error'}",
            hint="this needs root (and a kernel with binfmt_misc)",
        )


def _decode(escaped: str) -> bytes:
    return escaped.encode("latin-1").decode("unicode_escape").encode("latin-1")


def register(name: str, emulator: Path, root: Path = BINFMT) -> str:
    """Register ``emulator`` for qemu's architecture ``name`` with the ``F`` flag, mounting
    binfmt_misc first if needed. Returns ``registered`` or ``already registered`` (an
    enabled handler with the F flag already matches that architecture's binaries)."""
    magic, mask = _rule(name)
    _mount(root)
    header = _decode(magic)
    existing = handler_for(header, entries(root))
    if existing is not None and "F" in existing.flags:
        return "already registered"
    if existing is not None:
        raise AlpenglowError(
            f"binfmt_misc handler {existing.name!r} already takes {name} binaries but lacks "
            "the F flag (its emulator would not be found inside containers)",
            hint=f"remove it first: echo -1 > {root}/{existing.name}",
        )
    entry = f"qemu-{name}"
    if (root / entry).exists():
        entry = f"alpenglow-qemu-{name}"
    try:
        (root / "register").write_text(f":{entry}:M::{magic}:{mask}:{emulator}:F\n")
    except OSError as exc:
        raise AlpenglowError(
            f"cannot register {entry} with binfmt_misc: {exc.strerror}",
            hint="this needs root",
        ) from None
    return "registered"
