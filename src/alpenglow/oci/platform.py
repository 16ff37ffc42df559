"""Alpine architectures and OCI platforms.

Alpine names its architectures after the kernel (``x86_64``, ``aarch64``, ``armv7``); OCI
uses Go's names (``amd64``, ``arm64``, ``arm`` + variant). The mapping follows the official
``alpine`` image index: ``aarch64`` is ``linux/arm64/v8``, ``armhf`` is ``linux/arm/v6``.

>>> str(platform_for_arch("armv7"))
'linux/arm/v7'
>>> arch_for_platform(parse_platform("linux/arm64"))
'aarch64'
>>> str(parse_platform("x86"))
'linux/386'
"""

from __future__ import annotations

from alpenglow.errors import InvalidReference
from alpenglow.oci.image import Platform

__all__ = [
    "ALL_ARCHES",
    "arch_for_platform",
    "matches",
    "normalize",
    "parse_platform",
    "platform_for_arch",
    "platform_suffix",
]


def __dir__() -> list[str]:
    return __all__


_ARCH_TO_PLATFORM: dict[str, Platform] = {
    "x86_64": Platform("linux", "amd64"),
    "x86": Platform("linux", "386"),
    "aarch64": Platform("linux", "arm64", "v8"),
    "armhf": Platform("linux", "arm", "v6"),
    "armv7": Platform("linux", "arm", "v7"),
    "ppc64le": Platform("linux", "ppc64le"),
    "s390x": Platform("linux", "s390x"),
    "riscv64": Platform("linux", "riscv64"),
    "loongarch64": Platform("linux", "loong64"),
}

ALL_ARCHES: tuple[str, ...] = tuple(_ARCH_TO_PLATFORM)
"""Every Alpine architecture alpenglow knows, in the order of the official image index."""

# Other spellings people and tools use for the same architecture (Docker's normalisation).
_ARCH_ALIASES = {
    "i386": ("386", ""),
    "i686": ("386", ""),
    "amd64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "arm64": ("arm64", ""),
    "armel": ("arm", "v6"),
    "armv6": ("arm", "v6"),
    "armv6l": ("arm", "v6"),
    "armv7l": ("arm", "v7"),
    "armv8": ("arm64", ""),
    "loong64": ("loong64", ""),
}

# Variants that are the default when none is given (as Docker and containerd treat them).
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


def platform_for_arch(arch: str) -> Platform:
    """The OCI platform of an Alpine architecture; :class:`InvalidReference` when unknown."""
    try:
        return _ARCH_TO_PLATFORM[arch]
    except KeyError:
        raise InvalidReference(
            f"unknown architecture {arch!r} (known: {', '.join(ALL_ARCHES)})"
        ) from None


def normalize(platform: Platform) -> Platform:
    """Fill in the default variant (``arm64`` -> ``v8``, ``arm`` -> ``v7``)."""
    if platform.variant or platform.architecture not in _DEFAULT_VARIANT:
        return platform
    return Platform(
        platform.os,
        platform.architecture,
        _DEFAULT_VARIANT[platform.architecture],
        platform.os_version,
        platform.os_features,
    )


def arch_for_platform(platform: Platform) -> str:
    """The Alpine architecture of a Linux platform; :class:`InvalidReference` when none."""
    if platform.os == "linux":
        wanted = normalize(Platform("linux", platform.architecture, platform.variant))
        for arch, candidate in _ARCH_TO_PLATFORM.items():
            if normalize(candidate) == wanted:
                return arch
    raise InvalidReference(f"no Alpine architecture for platform {platform}")


def parse_platform(text: str) -> Platform:
    """Parse ``OS/ARCH[/VARIANT]``, a bare ``ARCH`` (Linux), or an Alpine architecture name.

    >>> parse_platform("linux/arm/v7")
    Platform(os='linux', architecture='arm', variant='v7', os_version='', os_features=())
    >>> parse_platform("aarch64") == parse_platform("linux/arm64/v8")
    True
    """
    cleaned = text.strip().lower()
    if cleaned in _ARCH_TO_PLATFORM:
        return _ARCH_TO_PLATFORM[cleaned]
    parts = cleaned.split("/")
    if len(parts) == 1:
        parts = ["linux", *parts]
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidReference(
            f"invalid platform {text!r}: expected OS/ARCH[/VARIANT] or an Alpine architecture"
        )
    os_name, arch = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else ""
    if arch in _ARCH_TO_PLATFORM and os_name == "linux" and not variant:
        return _ARCH_TO_PLATFORM[arch]
    if arch in _ARCH_ALIASES:
        arch, implied = _ARCH_ALIASES[arch]
        variant = variant or implied
    return Platform(os_name, arch, variant)


def matches(wanted: Platform, have: Platform) -> bool:
    """True when ``have`` satisfies a request for ``wanted`` (default variants filled in;
    an ``arm64`` request matches ``arm64/v8``)."""
    w, h = normalize(wanted), normalize(have)
    return (w.os, w.architecture, w.variant) == (h.os, h.architecture, h.variant)


def platform_suffix(platform: Platform) -> str:
    """A file-name-safe name of a platform: ``amd64``, ``arm-v7``, ``arm64-v8``; the OS is
    prefixed when it is not Linux (``windows-amd64``)."""
    parts = [platform.architecture, platform.variant]
    if platform.os != "linux":
        parts.insert(0, platform.os)
    return "-".join(p for p in parts if p)
