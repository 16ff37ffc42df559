"""alpenglow.runtime.binfmt: ELF machines, binfmt_misc entries and whether a binary runs."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from alpenglow.errors import ContainerError
from alpenglow.runtime import binfmt
from alpenglow.runtime.binfmt import (
    BinfmtEntry,
    check_runnable,
    elf_machine,
    entries,
    handler_for,
    qemu_name,
)

# The first bytes of ELF executables (64-bit little-endian unless noted).
X86_64 = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(44)
AARCH64 = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\xb7\x00" + bytes(44)
AARCH64_PIE = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x03\x00\xb7\x00" + bytes(44)
S390X = b"\x7fELF\x02\x02\x01\x00" + bytes(8) + b"\x00\x02\x00\x16" + bytes(44)  # big-endian

# Debian's qemu-aarch64 rule, as /proc/sys/fs/binfmt_misc shows it
AARCH64_MAGIC = bytes.fromhex("7f454c460201010000000000000000000200b700")
AARCH64_MASK = bytes.fromhex("ffffffffffffff00fffffffffffffffffeffffff")


def entry(flags: str = "F", enabled: bool = True) -> BinfmtEntry:
    return BinfmtEntry(
        "qemu-aarch64",
        enabled,
        "/usr/bin/qemu-aarch64-static",
        flags,
        0,
        AARCH64_MAGIC,
        AARCH64_MASK,
    )


def test_exports() -> None:
    assert sorted(binfmt.__all__) == sorted(dir(binfmt))


def test_elf_machines() -> None:
    assert elf_machine(X86_64) == 62
    assert elf_machine(AARCH64) == 183
    assert elf_machine(S390X) == 22
    assert elf_machine(b"#!/bin/sh\n") is None
    assert elf_machine(b"\x7fELF") is None


@pytest.mark.parametrize(
    ("platform_text", "name"),
    [
        ("linux/amd64", "x86_64"),
        ("linux/arm64/v8", "aarch64"),
        ("linux/arm/v7", "arm"),
        ("linux/arm/v6", "arm"),
        ("linux/riscv64", "riscv64"),
        ("linux/loong64", "loongarch64"),
        ("linux/sparc", None),
    ],
)
def test_qemu_names(platform_text: str, name: str | None) -> None:
    assert qemu_name(platform_text) == name


def test_magic_and_mask() -> None:
    handler = entry()
    assert handler.matches(AARCH64)
    assert handler.matches(AARCH64_PIE)  # the mask lets ET_DYN through
    assert not handler.matches(X86_64)
    assert not handler.matches(AARCH64[:10])
    assert not entry(enabled=False).matches(AARCH64)
    assert handler_for(AARCH64, [entry(enabled=False), handler]) == handler
    assert handler_for(X86_64, [handler]) is None


def test_entries_are_read_as_the_kernel_writes_them(tmp_path: Path) -> None:
    (tmp_path / "register").write_text("")
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OCF\noffset 0\n"
        f"magic {AARCH64_MAGIC.hex()}\nmask {AARCH64_MASK.hex()}\n"
    )
    (tmp_path / "python3.11").write_text(
        "disabled\ninterpreter /usr/bin/python3.11\nflags: \noffset 0\nmagic a70d0d0a\n"
    )
    (tmp_path / "broken").write_text("enabled\nmagic zz\n")
    found = entries(tmp_path)
    assert [e.name for e in found] == ["python3.11", "qemu-aarch64"]
    aarch64 = found[1]
    assert aarch64.flags == "OCF"
    assert aarch64.enabled
    assert aarch64.matches(AARCH64)
    assert not found[0].enabled
    assert entries(tmp_path / "missing") == []


def test_runnable_natively_or_through_a_handler() -> None:
    check_runnable(X86_64, "exec", "linux/amd64", registered=[], native=(62, 3))
    check_runnable(b"#!/bin/sh\n", "exec", "linux/arm64", registered=[], native=(62,))
    check_runnable(AARCH64, "exec", "linux/arm64/v8", registered=[entry()], native=(62,))
    with pytest.raises(ContainerError, match="no binfmt_misc handler") as info:
        check_runnable(AARCH64, 'exec "sh"', "linux/arm64/v8", registered=[], native=(62,))
    assert info.value.exit_status == 126
    assert info.value.hint is not None
    assert "alpenglow system binfmt" in info.value.hint
    assert "qemu-aarch64-static" in info.value.hint
    with pytest.raises(ContainerError, match="lacks the F flag"):
        check_runnable(AARCH64, "exec", "linux/arm64", registered=[entry("OC")], native=(62,))


def test_this_machine_runs_its_own_binaries() -> None:
    own = {"x86_64": X86_64, "aarch64": AARCH64}.get(platform.machine())
    if own is None:
        pytest.skip(f"no sample header for {platform.machine()}")
    check_runnable(own, "exec", "native")
