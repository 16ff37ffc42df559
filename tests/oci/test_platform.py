"""Alpine architectures <-> OCI platforms."""

from __future__ import annotations

import pytest

import alpenglow.oci.platform as platform_module
from alpenglow.errors import InvalidReference
from alpenglow.oci.image import Platform
from alpenglow.oci.platform import (
    ALL_ARCHES,
    arch_for_platform,
    matches,
    normalize,
    parse_platform,
    platform_for_arch,
    platform_suffix,
)

# The official alpine image index's platforms, plus loongarch64 (Go's loong64).
TABLE = [
    ("x86_64", "linux/amd64"),
    ("x86", "linux/386"),
    ("aarch64", "linux/arm64/v8"),
    ("armhf", "linux/arm/v6"),
    ("armv7", "linux/arm/v7"),
    ("ppc64le", "linux/ppc64le"),
    ("s390x", "linux/s390x"),
    ("riscv64", "linux/riscv64"),
    ("loongarch64", "linux/loong64"),
]


def test_exports() -> None:
    assert sorted(dir(platform_module)) == sorted(platform_module.__all__)


def test_all_arches() -> None:
    assert [arch for arch, _ in TABLE] == list(ALL_ARCHES)


@pytest.mark.parametrize(("arch", "text"), TABLE)
def test_arch_to_platform_and_back(arch: str, text: str) -> None:
    platform = platform_for_arch(arch)
    assert str(platform) == text
    assert parse_platform(text) == platform
    assert parse_platform(arch) == platform
    assert arch_for_platform(platform) == arch


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/arm64", Platform("linux", "arm64")),
        ("arm64", Platform("linux", "arm64")),
        ("amd64", Platform("linux", "amd64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("LINUX/AMD64", Platform("linux", "amd64")),
        ("linux/i386", Platform("linux", "386")),
        ("linux/armv6l", Platform("linux", "arm", "v6")),
        ("linux/arm", Platform("linux", "arm")),
        ("windows/amd64", Platform("windows", "amd64")),
        ("aarch64", Platform("linux", "arm64", "v8")),
    ],
)
def test_parse_platform(text: str, expected: Platform) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["", "linux/", "a/b/c/d", "/amd64", "linux//v7"])
def test_bad_platforms(text: str) -> None:
    with pytest.raises(InvalidReference, match="invalid platform"):
        parse_platform(text)


def test_unknown_arch() -> None:
    with pytest.raises(InvalidReference, match=r"unknown architecture 'mips'.*x86_64"):
        platform_for_arch("mips")
    with pytest.raises(InvalidReference, match="no Alpine architecture for platform"):
        arch_for_platform(Platform("windows", "amd64"))
    with pytest.raises(InvalidReference, match="linux/mips64"):
        arch_for_platform(Platform("linux", "mips64"))


def test_default_variants() -> None:
    assert arch_for_platform(Platform("linux", "arm64")) == "aarch64"
    assert arch_for_platform(Platform("linux", "arm")) == "armv7"
    assert normalize(Platform("linux", "arm64")) == Platform("linux", "arm64", "v8")
    assert normalize(Platform("linux", "amd64")) == Platform("linux", "amd64")
    assert matches(Platform("linux", "arm64"), platform_for_arch("aarch64"))
    assert matches(parse_platform("linux/arm"), platform_for_arch("armv7"))
    assert not matches(parse_platform("linux/arm"), platform_for_arch("armhf"))
    assert not matches(parse_platform("linux/amd64"), Platform("windows", "amd64"))


@pytest.mark.parametrize(
    ("arch", "suffix"),
    [("x86_64", "amd64"), ("armv7", "arm-v7"), ("aarch64", "arm64-v8"), ("x86", "386")],
)
def test_platform_suffix(arch: str, suffix: str) -> None:
    assert platform_suffix(platform_for_arch(arch)) == suffix


def test_platform_suffix_names_a_foreign_os() -> None:
    assert platform_suffix(Platform("windows", "amd64")) == "windows-amd64"
