"""What the container commands share: the engine made from the environment, Docker's
human durations, and running a command whose errors carry their own exit status."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from alpenglow.oci.image import Platform
    from alpenglow.runtime.containers import Container, State
    from alpenglow.runtime.engine import Engine

__all__ = [
    "container_errors",
    "container_json",
    "describe_status",
    "human_duration",
    "make_engine",
    "start_detached",
    "store_path",
    "store_puller",
]


def human_duration(seconds: float) -> str:
    """Docker's approximate durations (``Up 3 seconds``, ``2 minutes ago``).

    >>> human_duration(0.5), human_duration(1), human_duration(75), human_duration(3000)
    ('Less than a second', '1 second', 'About a minute', '50 minutes')
    >>> human_duration(3600), human_duration(30 * 3600), human_duration(3 * 86400)
    ('About an hour', '30 hours', '3 days')
    """
    if seconds < 1:
        return "Less than a second"
    if int(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def describe_status(state: State, now: float) -> str:
    """``Up 3 seconds``, ``Exited (3) 2 minutes ago``, ``Created`` (Docker's STATUS)."""
    from alpenglow.runtime.containers import CREATED, RUNNING, parse_time

    if state.status == RUNNING:
        return f"Up {human_duration(now - parse_time(state.started_at))}"
    if state.status == CREATED:
        return "Created"
    code = "unknown" if state.exit_code is None else str(state.exit_code)
    when = parse_time(state.finished_at)
    return f"Exited ({code}) {human_duration(now - when)} ago" if when else f"Exited ({code})"


def store_puller(store_path: Path) -> Callable[[str, Platform | None], None]:
    """Pull a missing image from its registry into the store at ``store_path`` (as
    Docker's ``run`` does), with ``alpenglow pull``'s progress display."""

    def pull_into_store(reference: str, platform: Platform | None) -> None:
        from alpenglow.cli._registry import (
            Location,
            TransferDisplay,
            read_location,
            registry_reference,
        )
        from alpenglow.errors import AlpenglowError, ImageNotFound
        from alpenglow.oci.store import ImageStore

        store = ImageStore(store_path)
        ref = registry_reference(reference)
        sys.stderr.write(f"Unable to find image '{ref.familiar}' locally\n")
        try:
            bundle = read_location(
                Location(reference, remote=ref),
                store=store,
                insecure=(),
                platform=platform,
                progress=TransferDisplay(),
            )
            store.add(bundle, [ref.familiar])
        except AlpenglowError as exc:
            raise ImageNotFound(
                f"no such image: {ref.familiar} (not in the store, and pulling it failed: {exc})",
                hint="see `alpenglow images`",
            ) from None
        sys.stderr.write(f"Pulled {ref.familiar} ({bundle.root.digest})\n")

    return pull_into_store


def store_path(environ: Mapping[str, str]) -> Path:
    """The image store's directory: the rule of
    :func:`alpenglow.oci.store.default_store_path`, repeated here so that a run with a
    cached image need not import the image store."""
    explicit = environ.get("ALPENGLOW_STORE")
    if explicit:
        return Path(explicit)
    data_home = environ.get("XDG_DATA_HOME", "")
    if data_home and Path(data_home).is_absolute():
        return Path(data_home) / "alpenglow" / "images"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "alpenglow" / "images"


def make_engine(*, pull: bool = True) -> Engine:
    """The engine over the environment's image store and runtime directory."""
    from alpenglow.runtime.containers import default_runtime_dir
    from alpenglow.runtime.engine import Engine

    images = store_path(os.environ)
    return Engine(
        default_runtime_dir(os.environ),
        images,
        environ=os.environ,
        puller=store_puller(images) if pull else None,
    )


@contextmanager
def container_errors() -> Iterator[None]:
    """Print a :class:`~alpenglow.errors.ContainerError` as one line and exit with its
    status (125, 126, 127, Docker's codes); other errors go to the usual handler."""
    from alpenglow.errors import ContainerError

    try:
        yield
    except ContainerError as exc:
        from alpenglow.cli._errors import report

        report(exc)
        sys.exit(exc.exit_status)


def container_json(text: str) -> str | None:
    """``container inspect``'s JSON for the container ``text`` names, or None when no
    container has that name or id."""
    import json

    from alpenglow.errors import ContainerNotFound

    engine = make_engine(pull=False)
    try:
        record = engine.containers.find(text)
    except ContainerNotFound:
        return None
    return json.dumps([engine.inspect(record)], indent=2)


def start_detached(engine: Engine, record: Container) -> None:
    """Hand ``record`` to a supervisor process that runs it in the background."""
    from alpenglow.runtime.supervisor import supervise

    supervise(engine, record)
