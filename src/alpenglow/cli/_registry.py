"""What the registry commands share: references, clients, progress, and where images come
from and go to.

Locations, as skopeo spells them: ``docker://REF`` is a registry; anything else is the local
image store (``NAME[:TAG]``, an image id) or a local transport (``oci:DIR[:NAME]``,
``oci-archive:FILE[:NAME]``, ``docker-archive:FILE[:NAME:TAG]``; see
:mod:`alpenglow.oci.transport`). An image pushed from the store or an ``oci:`` layout takes
its referrers with it (the artifacts about it kept there: the SBOMs of a build).

Progress goes to stderr: a rich bar per blob when stderr is a terminal, else one plain line
per blob when it is done (``a1b2c3d4e5f6: pushed (1.46MB)``, sizes as docker prints them).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from alpenglow.cli._table import human_size

if TYPE_CHECKING:
    from alpenglow.distribution.auth import Credential
    from alpenglow.distribution.client import RegistryClient
    from alpenglow.distribution.reference import Reference
    from alpenglow.oci.image import ImageBundle, Platform
    from alpenglow.oci.layout import Layout
    from alpenglow.oci.store import ImageStore

__all__ = [
    "INSECURE",
    "JOBS",
    "NO_REFERRERS",
    "PLATFORM",
    "REGISTRY_PREFIX",
    "Location",
    "Option",
    "TransferDisplay",
    "click_option",
    "client_for",
    "insecure_option",
    "jobs_option",
    "parse_location",
    "platform_option",
    "read_location",
    "read_referrers",
    "registry_reference",
    "say",
    "write_location",
]


def __dir__() -> list[str]:
    return __all__


REGISTRY_PREFIX = "docker://"

# --------------------------------------------------------------------------------------------
# Options


class Option:
    """One option of the registry commands, defined once: ``push``, ``pull`` and ``copy``
    parse it by hand (:mod:`alpenglow.cli.distribution`, a start-up without click), the
    other commands through click (:func:`click_option`). ``names`` as declared (``--jobs``,
    ``-j``); a value option unless ``flag``; ``low``..``high`` make it an integer in that
    range. A plain slotted class rather than a dataclass: it is built at the start-up of
    every transfer, and a dataclass costs more to generate than the parsing costs."""

    __slots__ = (
        "default",
        "dest",
        "flag",
        "help",
        "high",
        "low",
        "metavar",
        "multiple",
        "names",
    )

    def __init__(
        self,
        names: tuple[str, ...],
        dest: str,
        *,
        help: str,
        metavar: str = "",
        multiple: bool = False,
        default: Any = None,
        low: int | None = None,
        high: int | None = None,
        flag: bool = False,
    ) -> None:
        self.names = names
        self.flag = flag
        self.dest = dest
        self.help = help
        self.metavar = metavar
        self.multiple = multiple
        self.default = default
        self.low = low
        self.high = high

    def __repr__(self) -> str:
        return f"Option({self.names!r}, {self.dest!r})"

    def convert(self, value: str) -> Any:
        """``value`` as this option holds it; :class:`UsageError` (click's wording) when it
        is not a valid one."""
        if self.low is None or self.high is None:
            return value
        from alpenglow.errors import UsageError

        where = " / ".join(f"'{name}'" for name in self.names)
        try:
            number = int(value)
        except ValueError:
            raise UsageError(
                f"Invalid value for {where}: {value!r} is not a valid integer range."
            ) from None
        if not self.low <= number <= self.high:
            raise UsageError(
                f"Invalid value for {where}: {number} is not in the range "
                f"{self.low}<=x<={self.high}."
            )
        return number

    @property
    def shown_default(self) -> str:
        """What ``--help`` adds after the help text (``[default: 8; 1<=x<=64]``), or ""."""
        parts = []
        if self.default is not None and not self.multiple and not self.flag:
            parts.append(f"default: {self.default}")
        if self.low is not None and self.high is not None:
            parts.append(f"{self.low}<=x<={self.high}")
        return f"[{'; '.join(parts)}]" if parts else ""

    @property
    def shown_metavar(self) -> str:
        if self.flag:
            return ""
        if self.metavar:
            return self.metavar
        return "INTEGER RANGE" if self.low is not None else "TEXT"


INSECURE = Option(
    ("--insecure",),
    "insecure",
    multiple=True,
    metavar="HOST",
    help="allow plain HTTP or unverified TLS for this registry (repeatable); "
    "localhost and 127.0.0.0/8 use plain HTTP anyway",
)
JOBS = Option(("--jobs", "-j"), "jobs", default=8, low=1, high=64, help="blobs transferred at once")
NO_REFERRERS = Option(
    ("--no-referrers",),
    "no_referrers",
    flag=True,
    default=False,
    help="the image alone, without the artifacts kept with it about it (its SBOMs)",
)
PLATFORM = Option(
    ("--platform",),
    "platform",
    metavar="OS/ARCH[/VARIANT]",
    help="only this platform of a multi-platform image (or an Alpine arch: aarch64)",
)

_F = TypeVar("_F", bound=Callable[..., Any])


def click_option(option: Option) -> Callable[[_F], _F]:
    """``option`` as a click option decorator (click is imported here, not at start-up)."""
    import click

    if option.flag:
        return click.option(*option.names, option.dest, is_flag=True, help=option.help)
    if option.low is not None:
        return click.option(
            *option.names,
            option.dest,
            type=click.IntRange(option.low, option.high),
            default=option.default,
            show_default=True,
            help=option.help,
        )
    return click.option(
        *option.names,
        option.dest,
        multiple=option.multiple,
        default=option.default,
        metavar=option.metavar or None,
        help=option.help,
    )


def insecure_option(command: _F) -> _F:
    """The ``--insecure HOST`` click option (see :data:`INSECURE`)."""
    return click_option(INSECURE)(command)


def jobs_option(command: _F) -> _F:
    """The ``-j, --jobs N`` click option (see :data:`JOBS`)."""
    return click_option(JOBS)(command)


def platform_option(command: _F) -> _F:
    """The ``--platform OS/ARCH[/VARIANT]`` click option (see :data:`PLATFORM`)."""
    return click_option(PLATFORM)(command)


_OUTCOMES = {
    "uploaded": "pushed",
    "mounted": "mounted",
    "exists": "already exists",
    "downloaded": "downloaded",
    "cached": "already present",
    "failed": "failed",
}


def say(text: str) -> None:
    """A line of commentary on stderr (stdout keeps the result)."""
    sys.stderr.write(f"{text}\n")
    sys.stderr.flush()


def registry_reference(text: str, *, default_tag: str = "latest") -> Reference:
    """A registry reference, with or without ``docker://``."""
    from alpenglow.distribution.reference import parse_reference

    return parse_reference(text, default_tag=default_tag)


def client_for(
    registry: str | Reference,
    insecure: Sequence[str],
    credentials: Credential | None = None,
) -> RegistryClient:
    """A client for ``registry`` with ``credentials``, else the user's (environment,
    ``alpenglow login``, Docker's config)."""
    from alpenglow.distribution.auth import default_credentials
    from alpenglow.distribution.client import RegistryClient

    return RegistryClient(
        registry,
        credentials=credentials or default_credentials(os.environ),
        insecure=tuple(insecure),
    )


# --------------------------------------------------------------------------------------------
# Progress


class _Blob:
    """A blob on the display: its size and its bar (a rich task id, when drawn)."""

    __slots__ = ("task", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self.task: Any = None


class TransferDisplay:
    """A :class:`alpenglow.distribution.transfer.Progress` that shows blob transfers on
    stderr. Use it as a context manager around the transfer."""

    def __init__(self, *, tty: bool | None = None) -> None:
        self.tty = sys.stderr.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._blobs: dict[str, _Blob] = {}
        self._progress: Any = None
        self.outcomes: dict[str, str] = {}

    def __enter__(self) -> TransferDisplay:
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def started(self, digest: str, total: int) -> None:
        with self._lock:
            blob = self._blobs[digest] = _Blob(total)
            if self._progress is not None:
                blob.task = self._progress.add_task(_short(digest), total=total or None)

    def advanced(self, digest: str, done: int) -> None:
        with self._lock:
            blob = self._blobs.get(digest)
            if blob is not None and blob.task is not None and self._progress is not None:
                self._progress.update(blob.task, completed=done)

    def finished(self, digest: str, outcome: str) -> None:
        with self._lock:
            self.outcomes[digest] = outcome
            blob = self._blobs.get(digest)
            words = _OUTCOMES.get(outcome, outcome)
            if self._progress is not None:
                if blob is not None and blob.task is not None:
                    self._progress.update(
                        blob.task,
                        completed=blob.total,
                        description=f"{_short(digest)} {words}",
                    )
                return
            size = f" ({human_size(blob.total)})" if blob is not None else ""
            say(f"{_short(digest)}: {words}{size}")


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12]


@contextmanager
def _display(progress: TransferDisplay | None) -> Iterator[TransferDisplay | None]:
    if progress is None:
        yield None
        return
    with progress:
        yield progress


# --------------------------------------------------------------------------------------------
# Locations


@dataclass(frozen=True, slots=True)
class Location:
    """Where an image is: a registry reference (``remote``), or a local reference string
    (the store or a transport, ``local``)."""

    text: str
    remote: Reference | None = None
    local: str = ""

    @property
    def name(self) -> str:
        """The image's familiar name when the location has one (``alpine:3.22``), else ""."""
        if self.remote is not None:
            return self.remote.familiar
        from alpenglow.oci.transport import parse_reference

        ref = parse_reference(self.local)
        return ref.name if not ref.name.startswith("@") else ""


def parse_location(text: str) -> Location:
    """``docker://REF`` is a registry; anything else a local reference (checked here)."""
    if text.startswith(REGISTRY_PREFIX):
        return Location(text, remote=registry_reference(text))
    from alpenglow.oci.transport import parse_reference

    parse_reference(text)
    return Location(text, local=text)


def read_location(
    location: Location,
    *,
    store: ImageStore,
    insecure: Sequence[str],
    platform: Platform | None = None,
    jobs: int = 8,
    progress: TransferDisplay | None = None,
    layout: Layout | None = None,
) -> ImageBundle:
    """The image at ``location``, every blob verified (pulled from a registry into memory,
    or with ``layout`` straight into that layout, all or nothing)."""
    if location.remote is not None:
        from alpenglow.distribution.transfer import pull

        with client_for(location.remote, insecure) as client, _display(progress) as shown:
            return pull(
                location.remote,
                client,
                platform=platform,
                jobs=jobs,
                progress=shown,
                layout=layout,
            )
    from alpenglow.oci.transport import read_image

    bundle = read_image(location.local, store=store)
    if platform is not None:
        bundle = _one_platform(bundle, platform)
    return bundle


def read_referrers(
    location: Location, bundle: ImageBundle, *, store: ImageStore
) -> tuple[ImageBundle, ...]:
    """The artifacts kept at ``location`` about ``bundle`` (read from there): the unnamed
    entries of the store or of an ``oci:`` layout whose ``subject`` is one of the bundle's
    manifests or indexes, such as the SBOMs ``alpenglow build`` attaches. Registries (a pull
    fetches the image alone) and archives give none."""
    if location.remote is not None:
        return ()
    from alpenglow.oci.image import INDEX_TYPES, MANIFEST_TYPES
    from alpenglow.oci.transport import parse_reference

    local = parse_reference(location.local)
    if local.transport == "store":
        layout = store.layout
    elif local.transport == "oci":
        from alpenglow.oci.layout import Layout

        layout = Layout.open(local.path)
    else:
        return ()
    subjects = {
        d.digest
        for d in bundle.descriptors()
        if d.media_type in MANIFEST_TYPES or d.media_type in INDEX_TYPES
    }
    return tuple(
        layout.bundle_for(entry, f"{location.text}: referrer {entry.digest}")
        for entry in layout.referrers(subjects)
    )


def _one_platform(bundle: ImageBundle, platform: Platform) -> ImageBundle:
    from alpenglow.errors import ImageNotFound
    from alpenglow.oci.platform import matches

    images = bundle.images()
    for image in images:
        if matches(platform, image.platform):
            return bundle.select(image)
    have = ", ".join(str(i.platform) for i in images)
    raise ImageNotFound(f"{bundle.source}: no image for {platform} (it has {have})")


def write_location(
    bundle: ImageBundle,
    location: Location,
    *,
    store: ImageStore,
    insecure: Sequence[str],
    names: Sequence[str] = (),
    jobs: int = 8,
    progress: TransferDisplay | None = None,
    mount_from: str | None = None,
    on_pushed: Callable[[str], None] | None = None,
    verified: bool = False,
    referrers: Sequence[ImageBundle] = (),
) -> tuple[str, ...]:
    """Write ``bundle`` to ``location``; returns what was written (the pushed reference with
    its digest, store names, or files). ``names`` name it in the store or an archive when
    the location has no name of its own. ``verified`` says every blob of ``bundle`` was
    checked as it arrived (a pull): the store and OCI layouts then do not hash them again.
    ``referrers`` (see :func:`read_referrers`) go with the image to a registry, the store or
    an ``oci:`` layout (kept there as unnamed entries); archives do not take them."""
    if location.remote is not None:
        from alpenglow.distribution.transfer import push

        ref = location.remote
        with client_for(ref, insecure) as client, _display(progress) as shown:
            root = push(
                bundle,
                ref,
                client,
                jobs=jobs,
                progress=shown,
                mount_from=mount_from,
                referrers=referrers,
            )
        pushed = f"{ref.name}@{root.digest}"
        if on_pushed is not None:
            on_pushed(pushed)
        return (pushed,)
    if verified:
        from alpenglow.oci.layout import Layout
        from alpenglow.oci.store import check_structure, parse_name
        from alpenglow.oci.transport import parse_reference

        local = parse_reference(location.local)
        wanted = [local.name] if local.name else [parse_name(n).ref_name for n in names]
        if local.transport == "store":
            store.add(bundle, wanted, verified=True)
            return tuple(wanted)
        if local.transport == "oci":
            check_structure(bundle)
            Layout.create(local.path).write_bundle(bundle, wanted, verified=True)
            return (local.path,)
    from alpenglow.oci.transport import parse_reference, write_image

    local = parse_reference(location.local)
    keeps_referrers = bool(referrers) and local.transport in ("store", "oci")
    if keeps_referrers:
        for artifact in referrers:  # all checked before anything is written
            artifact.verify()
    written = write_image(bundle, location.local, store=store, names=names)
    if keeps_referrers:
        from alpenglow.oci.layout import Layout

        layout = store.layout if local.transport == "store" else Layout.open(local.path)
        with layout.locked():
            for artifact in referrers:
                layout.write_bundle(artifact, verified=True)
    return written
