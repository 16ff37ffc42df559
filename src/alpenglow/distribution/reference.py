"""Image references in a registry, by Docker's rules.

A reference names a repository in a registry and, optionally, a tag and/or a digest:
``[REGISTRY/]PATH[:TAG][@DIGEST]``. The first path component is a registry only when it
looks like a host (it has a ``.`` or a ``:`` port, is ``localhost``, an IPv6 address in
brackets, or has upper-case letters); otherwise the image lives on Docker Hub, whose
one-component names are under ``library/``. A reference with neither tag nor digest means
the tag ``latest``.

>>> ref = parse_reference("alpine")
>>> str(ref), ref.api_host, ref.familiar
('docker.io/library/alpine:latest', 'registry-1.docker.io', 'alpine:latest')
>>> parse_reference("localhost:5000/x/y@sha256:" + "a" * 64).tag
''
>>> is_insecure_default("127.0.0.1:5000"), is_insecure_default("ghcr.io")
(True, False)

Pure: strings in, values out.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from dataclasses import dataclass

from alpenglow.errors import InvalidReference, caret_line

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API",
    "Reference",
    "host_of",
    "is_insecure",
    "is_insecure_default",
    "normalize_registry",
    "parse_reference",
]


def __dir__() -> list[str]:
    return __all__


DOCKER_HUB = "docker.io"
"""The registry name of Docker Hub as references spell it."""

DOCKER_HUB_API = "registry-1.docker.io"
"""The host that serves Docker Hub's distribution API."""

_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")
_MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class Reference:
    """A repository in a registry, with a tag and/or a digest.

    ``registry`` is the host (and port) as written, Docker Hub being ``docker.io``;
    ``repository`` is the full path (``library/alpine``). ``tag`` and ``digest`` are ""
    when absent; :func:`parse_reference` gives ``latest`` when both are missing.
    """

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        return self.name + self._suffix()

    def _suffix(self) -> str:
        text = f":{self.tag}" if self.tag else ""
        return text + (f"@{self.digest}" if self.digest else "")

    @property
    def name(self) -> str:
        """``REGISTRY/REPOSITORY`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host (and port) that serves the API: ``registry-1.docker.io`` for Docker Hub."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def familiar_name(self) -> str:
        """The repository as Docker shows it: ``alpine``, ``user/app``, ``ghcr.io/o/r``."""
        if self.registry == DOCKER_HUB:
            return self.repository.removeprefix("library/")
        return self.name

    @property
    def familiar(self) -> str:
        """The name the local image store uses: ``alpine:latest``, ``ghcr.io/o/r:1.2``,
        ``localhost:5000/x@sha256:...``."""
        return self.familiar_name + self._suffix()

    @property
    def ref(self) -> str:
        """What the manifest endpoint is asked for: the digest when there is one, else the
        tag."""
        return self.digest or self.tag

    def with_tag(self, tag: str) -> Reference:
        """The same repository with ``tag`` and no digest."""
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid tag {tag!r}")
        return Reference(self.registry, self.repository, tag, "")

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (no tag)."""
        _check_digest(digest, digest, 0)
        return Reference(self.registry, self.repository, "", digest)

    def in_repository(self, repository: str) -> Reference:
        """Another repository of the same registry (no tag or digest)."""
        for part in repository.split("/"):
            if not _COMPONENT.fullmatch(part):
                raise InvalidReference(f"invalid repository name {repository!r}")
        return Reference(self.registry, repository)


def _fail(text: str, problem: str, start: int, end: int | None = None) -> InvalidReference:
    return InvalidReference(
        f"invalid reference {text!r}: {problem}",
        hint=caret_line(text, start, end) if text else None,
    )


def _check_digest(text: str, digest: str, offset: int) -> None:
    algorithm, sep, hexpart = digest.partition(":")
    length = _DIGEST_LENGTHS.get(algorithm)
    if not sep or length is None:
        raise _fail(text, f"bad digest {digest!r} (expected sha256:<64 hex digits>)", offset)
    if len(hexpart) != length or not _HEX.fullmatch(hexpart):
        raise _fail(
            text,
            f"bad digest {digest!r} ({algorithm} takes {length} lower-case hex digits)",
            offset,
            offset + len(digest),
        )


def normalize_registry(registry: str) -> str:
    """The canonical name of a registry host: Docker Hub's aliases become ``docker.io``,
    a scheme or path (as in Docker's ``https://index.docker.io/v1/``) is dropped.

    >>> normalize_registry("https://index.docker.io/v1/"), normalize_registry("ghcr.io/")
    ('docker.io', 'ghcr.io')
    """
    host = registry.strip()
    if "://" in host:
        host = host.partition("://")[2]
    host = host.partition("/")[0]
    return DOCKER_HUB if host.lower() in _HUB_ALIASES else host


def _is_host(first: str) -> bool:
    return (
        "." in first
        or ":" in first
        or first == "localhost"
        or first.startswith("[")
        or first.lower() != first
    )


def parse_reference(text: str, *, default_tag: str = "latest") -> Reference:
    """Parse ``[REGISTRY/]PATH[:TAG][@DIGEST]`` (an optional ``docker://`` prefix is
    accepted, as skopeo writes it); :class:`InvalidReference` naming the problem, with the
    input and a caret as its hint.

    The tag defaults to ``default_tag`` when neither a tag nor a digest is given.
    """
    body = text.removeprefix("docker://")
    base = len(text) - len(body)
    if not body:
        raise _fail(text, "empty reference", 0)
    if "://" in body:
        raise _fail(text, "a reference has no URL scheme (write HOST/PATH:TAG)", 0)
    rest, at, digest = body.partition("@")
    if at:
        _check_digest(text, digest, base + len(rest) + 1)
    name, tag = rest, ""
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        name, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise _fail(
                text,
                f"bad tag {tag!r} (letters, digits, '_', '.', '-'; at most 128)",
                base + colon + 1,
                base + len(rest),
            )
    if not name:
        raise _fail(text, "no repository name", base)
    first, sep, remainder = name.partition("/")
    if sep and _is_host(first):
        if not _HOST.fullmatch(first):
            raise _fail(text, f"bad registry host {first!r}", base, base + len(first))
        if first.startswith("["):
            _check_ipv6(text, first, base)
        registry, path, path_start = normalize_registry(first), remainder, len(first) + 1
    else:
        registry, path, path_start = DOCKER_HUB, name, 0
    position = base + path_start
    for part in path.split("/"):
        if not _COMPONENT.fullmatch(part):
            problem = f"bad name component {part!r}"
            if part and part.lower() != part and _COMPONENT.fullmatch(part.lower()):
                problem = "repository names must be lower case"
            elif not part:
                problem = "empty name component"
            raise _fail(text, problem, position, position + max(len(part), 1))
        position += len(part) + 1
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if len(f"{registry}/{path}") > _MAX_NAME:
        raise _fail(text, f"name longer than {_MAX_NAME} characters", base, base + len(name))
    if not tag and not digest:
        tag = default_tag
    return Reference(registry, path, tag, digest)


def _check_ipv6(text: str, host: str, base: int) -> None:
    address = host[1:].partition("]")[0]
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise _fail(text, f"bad IPv6 address {address!r}", base, base + len(host)) from None


def host_of(registry: str) -> str:
    """The host part of ``HOST[:PORT]`` (brackets of an IPv6 address removed).

    >>> host_of("localhost:5000"), host_of("[::1]:5000"), host_of("ghcr.io")
    ('localhost', '::1', 'ghcr.io')
    """
    if registry.startswith("["):
        return registry[1:].partition("]")[0]
    if registry.count(":") != 1:
        return registry  # no port, or a bare IPv6 address
    return registry.rpartition(":")[0]


def is_insecure_default(registry: str) -> bool:
    """Whether docker speaks plain HTTP to ``registry`` without being told: ``localhost``,
    ``127.0.0.0/8`` and ``::1``, with any port."""
    host = host_of(registry).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_insecure(registry: str, insecure: Collection[str] = ()) -> bool:
    """Whether plain HTTP (or unverified TLS) is allowed for ``registry``: a loopback
    registry, or one named in ``insecure`` (``HOST`` or ``HOST:PORT``)."""
    if is_insecure_default(registry):
        return True
    names = {normalize_registry(name) for name in insecure}
    return registry in names or host_of(registry) in names
