"""Images to and from registries: ``push``, ``pull``, ``copy``, ``tag``, ``ls``, ``digest``,
``manifest``.

Each command is a thin call into :mod:`alpenglow.distribution` and
:mod:`alpenglow.oci.transport` (shared plumbing in :mod:`alpenglow.cli._registry`). A
registry reference follows Docker's rules (``alpine`` is ``docker.io/library/alpine:latest``)
and may be written with skopeo's ``docker://`` in front; ``localhost`` and ``127.0.0.0/8`` are
spoken to over plain HTTP, other registries over verified HTTPS unless named with
``--insecure``. Results go to stdout, progress and commentary to stderr.

The transfer commands (``push``, ``pull``, ``copy``) start without click: :mod:`alpenglow.cli.main`
sends them straight to :func:`main`, which parses their options here (click's syntax and
messages: ``--jobs 4``, ``--jobs=4``, ``-j4``, options anywhere, ``--`` ends them) from the one
definition of each command in :data:`TRANSFERS`. The click commands of this module (the
transfer commands' faces for ``alpenglow --help``, and ``tag``, ``ls``, ``digest``,
``manifest``) are built when the click application first asks for them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alpenglow.cli._registry import (
    INSECURE,
    JOBS,
    NO_REFERRERS,
    PLATFORM,
    REGISTRY_PREFIX,
    Location,
    Option,
    TransferDisplay,
    client_for,
    parse_location,
    read_location,
    read_referrers,
    registry_reference,
    say,
    write_location,
)

if TYPE_CHECKING:
    from alpenglow.oci.layout import Layout

# and the click commands copy, digest, ls, manifest, pull, push, tag (built on first use)
__all__ = [
    "TRANSFERS",
    "Transfer",
    "copy_image",
    "help_text",
    "main",
    "parse_args",
    "pull_image",
    "push_image",
]


def __dir__() -> list[str]:
    return sorted({*__all__, *_CLICK_COMMANDS})


def _out(line: str) -> None:
    """A line of the result, on stdout."""
    sys.stdout.write(f"{line}\n")


# --------------------------------------------------------------------------------------------
# What push, pull and copy do


def push_image(
    source: str, target: str, *, insecure: Sequence[str], jobs: int, no_referrers: bool = False
) -> None:
    """``alpenglow push SRC REF``: the image, and the artifacts about it kept with it (its
    SBOMs) unless ``no_referrers``."""
    from alpenglow.oci.store import ImageStore

    store = ImageStore.from_environment(os.environ)
    src = parse_location(source)
    dst = Location(target, remote=registry_reference(target))
    bundle = read_location(src, store=store, insecure=insecure, jobs=jobs)
    referrers = () if no_referrers else read_referrers(src, bundle, store=store)
    write_location(
        bundle,
        dst,
        store=store,
        insecure=insecure,
        jobs=jobs,
        progress=TransferDisplay(),
        referrers=referrers,
    )
    assert dst.remote is not None
    label = dst.remote.tag or dst.remote.digest
    _out(f"{label}: digest: {bundle.root.digest} size: {bundle.root.size}")


def pull_image(reference: str, *, platform: str | None, insecure: Sequence[str], jobs: int) -> None:
    """``alpenglow pull REF``."""
    from alpenglow.errors import AlpenglowError
    from alpenglow.oci.platform import parse_platform
    from alpenglow.oci.store import ImageStore

    store = ImageStore.from_environment(os.environ)
    ref = registry_reference(reference)
    wanted = parse_platform(platform) if platform else None
    name = ref.familiar
    with _removed_on_failure(store.path):  # a store made for this pull goes if it fails
        bundle = read_location(
            Location(reference, remote=ref),
            store=store,
            insecure=insecure,
            platform=wanted,
            jobs=jobs,
            progress=TransferDisplay(),
            layout=store.layout,  # written straight into the store, all or nothing
        )
        try:
            before: str | None = store.resolve(name).digest
        except AlpenglowError:  # not there before (or unreadable: replaced now)
            before = None
        store.add(bundle, [name], verified=True)  # every blob was checked as it arrived
    _out(f"Digest: {bundle.root.digest}")
    if before == bundle.root.digest:
        _out(f"Status: Image is up to date for {name}")
    else:
        _out(f"Status: Downloaded newer image for {name}")
    _out(name)


def copy_image(
    source: str,
    target: str,
    *,
    platform: str | None,
    insecure: Sequence[str],
    jobs: int,
    no_referrers: bool = False,
) -> None:
    """``alpenglow copy SRC DST``. From the store or an ``oci:`` layout, the artifacts
    about the image kept there (its SBOMs) go too, to a registry, the store or an ``oci:``
    layout, unless ``no_referrers``."""
    from alpenglow.oci.platform import parse_platform
    from alpenglow.oci.store import ImageStore

    store = ImageStore.from_environment(os.environ)
    src = parse_location(source)
    dst = parse_location(target)
    wanted = parse_platform(platform) if platform else None
    with _straight_into(src, dst) as layout:
        bundle = read_location(
            src,
            store=store,
            insecure=insecure,
            platform=wanted,
            jobs=jobs,
            progress=TransferDisplay() if src.remote is not None else None,
            layout=layout,
        )
    mount_from = None
    if (
        src.remote is not None
        and dst.remote is not None
        and src.remote.registry == dst.remote.registry
        and src.remote.repository != dst.remote.repository
    ):
        mount_from = src.remote.repository
    names = [src.name] if src.name and (dst.remote is None) else []
    referrers = () if no_referrers else read_referrers(src, bundle, store=store)
    written = write_location(
        bundle,
        dst,
        store=store,
        insecure=insecure,
        names=names,
        jobs=jobs,
        progress=TransferDisplay() if dst.remote is not None else None,
        mount_from=mount_from,
        verified=src.remote is not None,  # a pull checked every blob as it arrived
        referrers=referrers,
    )
    for item in written:
        say(f"wrote {item}")
    _out(bundle.root.digest)


@contextmanager
def _straight_into(src: Location, dst: Location) -> Iterator[Layout | None]:
    """The layout a pull from a registry is written straight into: the destination's, when
    it is an ``oci:`` layout (created here, and removed again if the pull fails and it did
    not exist before), else None (the pull is held in memory)."""
    if src.remote is None or dst.remote is not None:
        yield None
        return
    from alpenglow.oci.layout import Layout
    from alpenglow.oci.transport import parse_reference

    local = parse_reference(dst.local)
    if local.transport != "oci":
        yield None
        return
    path = Path(local.path)
    with _removed_on_failure(path):
        yield Layout.create(path)


@contextmanager
def _removed_on_failure(path: Path) -> Iterator[None]:
    """Remove ``path`` again if the body fails and it did not exist before (a layout or
    store made for a transfer that did not happen)."""
    existed = path.exists()
    try:
        yield
    except BaseException:
        if not existed:
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------------------
# The transfer commands' one definition, their parser and their help


class Transfer:
    """One transfer command: its positional arguments (the parameter each fills, and how
    ``--help`` names it), its options, its help (the first line is its summary) and the
    function that does it. A plain slotted class, as :class:`alpenglow.cli._registry.Option`."""

    __slots__ = ("arguments", "help", "name", "options", "run")

    def __init__(
        self,
        name: str,
        arguments: tuple[tuple[str, str], ...],
        options: tuple[Option, ...],
        help: str,
        run: Callable[..., None],
    ) -> None:
        self.name = name
        self.arguments = arguments
        self.options = options
        self.help = help
        self.run = run

    def __repr__(self) -> str:
        return f"Transfer({self.name!r})"

    @property
    def usage(self) -> str:
        """``alpenglow pull [OPTIONS] REF``."""
        return " ".join(["alpenglow", self.name, "[OPTIONS]", *(m for _, m in self.arguments)])


TRANSFERS: dict[str, Transfer] = {
    "push": Transfer(
        "push",
        (("source", "SRC"), ("target", "REF")),
        (INSECURE, JOBS, NO_REFERRERS),
        "Push an image to a registry.\n\n"
        "SRC is a store name, oci:DIR[:NAME], oci-archive:FILE or docker-archive:FILE; REF a "
        "registry reference (docker:// optional).\n\n"
        "The image's SBOMs (kept with it in the store or an oci: layout) go too, listed "
        "under the tag sha256-<hex of the manifest they describe> where the registry has no "
        "referrers API.",
        push_image,
    ),
    "pull": Transfer(
        "pull",
        (("reference", "REF"),),
        (PLATFORM, INSECURE, JOBS),
        "Pull an image from a registry into the local store.\n\n"
        "Every platform of REF, or the one named with --platform; stored under REF's name as "
        "docker names it.",
        pull_image,
    ),
    "copy": Transfer(
        "copy",
        (("source", "SRC"), ("target", "DST")),
        (PLATFORM, INSECURE, JOBS, NO_REFERRERS),
        "Copy an image between registries, the store, layouts and archives.\n\n"
        "SRC and DST are each docker://REF (a registry), a store name, oci:DIR[:NAME], "
        "oci-archive:FILE[:NAME] or docker-archive:FILE[:NAME:TAG].",
        copy_image,
    ),
}

_HELP_NAMES = ("-h", "--help")


def parse_args(command: Transfer, argv: Sequence[str]) -> dict[str, Any] | None:
    """The keyword arguments of ``command.run`` from ``argv``, or None when help was asked
    for. Click's syntax and messages; :class:`UsageError` when ``argv`` is wrong.

    >>> parse_args(TRANSFERS["pull"], ["-j3", "--insecure=h", "img"])
    {'platform': None, 'insecure': ('h',), 'jobs': 3, 'reference': 'img'}
    >>> parse_args(TRANSFERS["push"], ["a", "--jobs", "2", "b", "--no-referrers"])
    {'insecure': (), 'jobs': 2, 'no_referrers': True, 'source': 'a', 'target': 'b'}
    """
    from alpenglow.errors import UsageError

    def fail(message: str) -> UsageError:
        return UsageError(
            message,
            hint=f"usage: {command.usage} (see `alpenglow {command.name} --help`)",
        )

    by_name = {name: option for option in command.options for name in option.names}
    values: dict[str, Any] = {}
    for option in command.options:
        values[option.dest] = [] if option.multiple else option.default
    positionals: list[str] = []

    def take(option: Option, value: str) -> None:
        try:
            converted = option.convert(value)
        except UsageError as exc:
            raise fail(exc.message) from None
        if option.multiple:
            values[option.dest].append(converted)
        else:
            values[option.dest] = converted

    i = 0
    while i < len(argv):
        item = argv[i]
        i += 1
        if item == "--":
            positionals.extend(argv[i:])
            break
        if item.startswith("--"):
            name, eq, value = item.partition("=")
            if name in _HELP_NAMES:
                if eq:
                    raise fail(f"Option {name!r} does not take a value.")
                return None
            found = by_name.get(name)
            if found is None:
                raise fail(_no_such_option(name, [*by_name, *_HELP_NAMES]))
            if found.flag:
                if eq:
                    raise fail(f"Option {name!r} does not take a value.")
                values[found.dest] = True
                continue
            if not eq:
                if i >= len(argv):
                    raise fail(f"Option {name!r} requires an argument.")
                value = argv[i]
                i += 1
            take(found, value)
        elif item.startswith("-") and item != "-":
            j = 1  # a cluster of short options: -h, -j4, -j 4
            while j < len(item):
                name = f"-{item[j]}"
                j += 1
                if name in _HELP_NAMES:
                    return None
                found = by_name.get(name)
                if found is None:
                    raise fail(_no_such_option(name, [*by_name, *_HELP_NAMES]))
                if found.flag:
                    values[found.dest] = True
                    continue
                value = item[j:]
                if not value:
                    if i >= len(argv):
                        raise fail(f"Option {name!r} requires an argument.")
                    value = argv[i]
                    i += 1
                take(found, value)
                break
        else:
            positionals.append(item)
    for option in command.options:
        if option.multiple:
            values[option.dest] = tuple(values[option.dest])
    if len(positionals) < len(command.arguments):
        missing = command.arguments[len(positionals)][1]
        raise fail(f"Missing argument {missing!r}.")
    extra = positionals[len(command.arguments) :]
    if extra:
        noun = "argument" if len(extra) == 1 else "arguments"
        raise fail(f"Got unexpected extra {noun} ({' '.join(extra)})")
    for (param, _), value in zip(command.arguments, positionals, strict=False):
        values[param] = value
    return values


def _no_such_option(name: str, known: Sequence[str]) -> str:
    """Click's message for an unknown option: long ones get the close matches."""
    message = f"No such option {name!r}."
    if not name.startswith("--"):
        return message
    import difflib

    close = sorted(difflib.get_close_matches(name, [k for k in known if k.startswith("--")]))
    if len(close) == 1:
        message += f" Did you mean {close[0]!r}?"
    elif close:
        message += f" (Did you mean one of: {', '.join(repr(c) for c in close)}?)"
    return message


def help_text(command: Transfer, width: int = 78) -> str:
    """``alpenglow NAME --help``, laid out as click lays out the other commands' help."""
    import textwrap

    lines = [f"Usage: {command.usage}", ""]
    for paragraph in command.help.split("\n\n"):
        lines.extend(
            textwrap.wrap(
                paragraph,
                width,
                initial_indent="  ",
                subsequent_indent="  ",
                break_on_hyphens=False,
            )
        )
        lines.append("")
    rows: list[tuple[str, str]] = []
    for option in command.options:
        names = ", ".join(sorted(option.names, key=len))
        shown = option.shown_default
        text = f"{option.help}  {shown}" if shown else option.help
        rows.append((f"{names} {option.shown_metavar}".rstrip(), text))
    rows.append((", ".join(_HELP_NAMES), "Show this message and exit."))
    first = max(len(left) for left, _ in rows) + 2
    lines.append("Options:")
    for left, text in rows:
        wrapped = textwrap.wrap(text, max(width - 2 - first, 20)) or [""]
        lines.append(f"  {left:<{first}}{wrapped[0]}".rstrip())
        lines.extend(f"  {'':<{first}}{more}" for more in wrapped[1:])
    return "\n".join(lines) + "\n"


def main(name: str, argv: Sequence[str]) -> int:
    """``alpenglow push|pull|copy ARGS``: parse ``argv``, do it, return the exit status. An
    error is one ``ERROR:`` line (and maybe a ``hint:``) on stderr: exit status 2 for a
    wrong command line, 1 for any other failure."""
    from alpenglow.cli._errors import guarded

    command = TRANSFERS[name]

    def transfer() -> int:
        values = parse_args(command, argv)
        if values is None:
            sys.stdout.write(help_text(command))
        else:
            command.run(**values)
        return 0

    return guarded(transfer)


# --------------------------------------------------------------------------------------------
# The click commands, built on first use


def _click_transfer(command: Transfer) -> Any:
    """The click face of a transfer command, for ``alpenglow --help`` and the click group."""
    from alpenglow.cli.app import passthrough

    return passthrough(command.name, command.help, lambda args: main(command.name, args))


def _click_commands() -> dict[str, Any]:
    """``tag``, ``ls``, ``digest`` and ``manifest``, parsed by click."""
    import click

    from alpenglow.cli._registry import insecure_option, platform_option

    @click.command("tag")
    @click.argument("source", metavar="SRC")
    @click.argument("target", metavar="NEW")
    @insecure_option
    def tag(source: str, target: str, insecure: tuple[str, ...]) -> None:
        """Give an image another name, in the store or in a registry.

        In the local store by default; for SRC docker://REF the registry's manifest is tagged
        (NEW is then a tag, or a reference in the same registry)."""
        if source.startswith(REGISTRY_PREFIX):
            src = registry_reference(source)
            if ":" in target or "/" in target:
                dst = registry_reference(target)
            else:
                dst = src.with_tag(target)
            if dst.registry != src.registry:
                raise click.UsageError(f"{target}: a tag must be in the same registry as {source}")
            if not dst.tag:
                raise click.UsageError(f"{target}: name a tag")
            with client_for(src, insecure) as client:
                raw = client.get_manifest(src.repository, src.ref)
                client.put_manifest(dst.repository, dst.tag, raw.data, raw.media_type)
            click.echo(f"{dst.name}:{dst.tag}")
            return
        from alpenglow.oci.store import ImageStore

        store = ImageStore.from_environment(os.environ)
        click.echo(store.tag(source, target))

    @click.command("ls")
    @click.argument("reference", metavar="REPOSITORY")
    @insecure_option
    def ls(reference: str, insecure: tuple[str, ...]) -> None:
        """List the tags of a repository in a registry, sorted."""
        ref = registry_reference(reference, default_tag="")
        with client_for(ref, insecure) as client:
            tags = client.list_tags(ref.repository)
        for name in sorted(tags):  # registries disagree on the order; the spec says lexical
            click.echo(name)

    def _raw_manifest(reference: str, platform: str | None, insecure: tuple[str, ...]) -> bytes:
        """The raw manifest of ``reference`` (or of its ``platform`` entry)."""
        from alpenglow.errors import ImageNotFound
        from alpenglow.oci.image import INDEX_TYPES, parse_index
        from alpenglow.oci.platform import matches, parse_platform

        ref = registry_reference(reference)
        with client_for(ref, insecure) as client:
            raw = client.get_manifest(ref.repository, ref.ref)
            if platform is None or raw.media_type not in INDEX_TYPES:
                return raw.data
            wanted = parse_platform(platform)
            index = parse_index(raw.data, str(ref))
            for entry in index.manifests:
                if entry.platform is not None and matches(wanted, entry.platform):
                    return client.get_manifest(ref.repository, entry.digest).data
            have = ", ".join(str(e.platform) for e in index.manifests if e.platform is not None)
            raise ImageNotFound(f"{ref}: no image for {wanted} (it has {have})")

    @click.command("digest")
    @click.argument("reference", metavar="REF")
    @platform_option
    @insecure_option
    def digest(reference: str, platform: str | None, insecure: tuple[str, ...]) -> None:
        """Print the digest of an image in a registry."""
        if platform is None:
            from alpenglow.errors import RegistryError

            ref = registry_reference(reference)
            with client_for(ref, insecure) as client:
                desc = client.head_manifest(ref.repository, ref.ref)
            if desc is None:
                raise RegistryError(
                    f"{ref.name}: manifest {ref.ref}: not found",
                    registry=ref.registry,
                    repository=ref.repository,
                    status=404,
                )
            click.echo(desc.digest)
            return
        from alpenglow.oci.image import digest_of

        click.echo(digest_of(_raw_manifest(reference, platform, insecure)))

    @click.command("manifest")
    @click.argument("reference", metavar="REF")
    @platform_option
    @insecure_option
    def manifest(reference: str, platform: str | None, insecure: tuple[str, ...]) -> None:
        """Print an image's manifest, byte for byte.

        The index or manifest REF names, exactly as the registry stores it."""
        data = _raw_manifest(reference, platform, insecure)
        out = sys.stdout.buffer
        out.write(data)
        if sys.stdout.isatty():
            out.write(b"\n")
        out.flush()

    return {"tag": tag, "ls": ls, "digest": digest, "manifest": manifest}


_CLICK_COMMANDS = ("copy", "digest", "ls", "manifest", "pull", "push", "tag")


def __getattr__(name: str) -> Any:
    # The click commands are built on first use, so that push, pull and copy (through
    # :func:`main`) never import click.
    if name in TRANSFERS:
        command = _click_transfer(TRANSFERS[name])
        globals()[name] = command
        return command
    if name in _CLICK_COMMANDS:
        commands = _click_commands()
        globals().update(commands)
        return commands[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
