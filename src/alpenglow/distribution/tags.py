"""Release tags as the official Alpine images carry them. Pure: tags and digests in, a plan out.

Releasing version ``3.22.4`` with digest ``D`` gives:

* ``3.22.4``: always (it is immutable: already pointing elsewhere is an error);
* ``3.22``: only if ``3.22.4`` is the newest release of 3.22 in the repository;
* ``3``: only if it is the newest release of 3;
* ``latest``: only if it is the newest stable release of all;
* ``edge``: only when asked for (the development branch), whatever the version.

A pre-release (``_alpha``, ``_beta``, ``_pre``, ``_rc``, with or without a number) gets its
own tag only. Versions compare by apk's rules (:func:`alpenglow.apk.version.compare`).
The releases already in the repository are its tags that are apk versions with at least as
many dotted numbers as the version being released (so ``3.22`` and ``3`` are aliases, not
releases) and are not pre-releases.

>>> plan = plan_release({"3.22.3": "sha256:a", "3.22": "sha256:a", "latest": "sha256:a"},
...                     "3.22.4", "sha256:b")
>>> [(m.tag, m.current, m.new) for m in plan]
[('3.22.4', None, 'sha256:b'), ('3.22', 'sha256:a', 'sha256:b'), ('3', None, 'sha256:b'), \
('latest', 'sha256:a', 'sha256:b')]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from alpenglow.apk.version import compare, is_valid
from alpenglow.errors import AlpenglowError, InvalidVersion

__all__ = [
    "EDGE",
    "LATEST",
    "TagMove",
    "alias_tags",
    "is_prerelease",
    "plan_release",
    "release_parts",
]


def __dir__() -> list[str]:
    return __all__


LATEST = "latest"
EDGE = "edge"

_NUMBERS = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_PRERELEASE = re.compile(r"_(?:alpha|beta|pre|rc)[0-9]*(?=$|[_~-])")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True, slots=True)
class TagMove:
    """One tag of a release: where it points now (``current``, None when it does not exist)
    and where it will point (``new``; equal to ``current`` when the release leaves it or it
    is already there). ``reason`` says why, for the user."""

    tag: str
    current: str | None
    new: str
    reason: str

    @property
    def changes(self) -> bool:
        """Whether the tag has to be written."""
        return self.current != self.new

    @property
    def action(self) -> str:
        """``create``, ``move``, or ``keep`` (nothing to do)."""
        if not self.changes:
            return "keep"
        return "create" if self.current is None else "move"


def is_prerelease(version: str) -> bool:
    """Whether an apk version is a pre-release (``_alpha``, ``_beta``, ``_pre``, ``_rc``).

    >>> is_prerelease("3.23.0_rc1"), is_prerelease("3.22.4"), is_prerelease("1.0_p2")
    (True, False, False)
    """
    return _PRERELEASE.search(version) is not None


def release_parts(version: str) -> tuple[str, ...]:
    """The dotted numbers a version starts with.

    >>> release_parts("3.22.4-r1"), release_parts("3.23.0_rc1"), release_parts("2024")
    (('3', '22', '4'), ('3', '23', '0'), ('2024',))
    """
    match = _NUMBERS.match(version)
    return tuple(match.group().split(".")) if match else ()


def alias_tags(version: str) -> tuple[str, ...]:
    """The shorter tags a stable release may move, longest first.

    >>> alias_tags("3.22.4"), alias_tags("3.22.4-r1"), alias_tags("7")
    (('3.22', '3'), ('3.22', '3'), ())
    """
    parts = release_parts(version)
    return tuple(".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1))


def _check(version: str) -> None:
    if not is_valid(version):
        raise InvalidVersion(f"invalid version {version!r} (it must follow apk's version rules)")
    if not _TAG.fullmatch(version):
        raise InvalidVersion(
            f"version {version!r} cannot be an image tag "
            "(tags take letters, digits, '_', '.' and '-', at most 128)"
        )


def _releases(tags: Mapping[str, str] | list[str], depth: int) -> list[str]:
    """The stable releases among ``tags``: apk versions with ``depth`` or more numbers."""
    return [
        tag
        for tag in tags
        if is_valid(tag) and len(release_parts(tag)) >= depth and not is_prerelease(tag)
    ]


def _newest(version: str, others: list[str]) -> str | None:
    """The newest of ``others`` when it is newer than ``version``, else None."""
    best: str | None = None
    for other in others:
        if compare(other, version) > 0 and (best is None or compare(other, best) > 0):
            best = other
    return best


def plan_release(
    existing: Mapping[str, str], version: str, digest: str, *, edge: bool = False
) -> tuple[TagMove, ...]:
    """The tags a release of ``version`` (image ``digest``) sets, in the order to write them
    (the version's own tag first, then the aliases from the most to the least specific,
    ``latest``, ``edge``).

    ``existing`` maps the repository's tags to their digests; only the values of the tags
    in the plan are looked up, so it may fetch them lazily. Aliases that stay where they are
    are part of the plan (``current == new``) with the reason they stay; an alias that does
    not exist and is not created is left out.

    Raises :class:`InvalidVersion` for a version that is not an apk version or cannot be a
    tag, and :class:`AlpenglowError` when the version's tag already names another image.
    """
    _check(version)
    moves: list[TagMove] = []
    current = existing.get(version) if version in existing else None
    if current is not None and current != digest:
        raise AlpenglowError(
            f"tag {version} already points at {current}; a released version is immutable",
            hint="release a new version (for example with a revision: -r1)",
        )
    prerelease = is_prerelease(version)
    moves.append(
        TagMove(
            version,
            current,
            digest,
            "pre-release: only its own tag" if prerelease else "the release itself",
        )
    )
    if not prerelease:
        depth = len(release_parts(version))
        releases = _releases(list(existing), depth)
        for alias in alias_tags(version):
            line = tuple(alias.split("."))
            same_line = [r for r in releases if release_parts(r)[: len(line)] == line]
            newer = _newest(version, same_line)
            moves.extend(_alias_move(existing, alias, digest, newer, f"newest release of {alias}"))
        newer = _newest(version, releases)
        moves.extend(_alias_move(existing, LATEST, digest, newer, "newest stable release"))
    if edge:
        moves.append(TagMove(EDGE, existing.get(EDGE), digest, "--edge: the development branch"))
    return tuple(moves)


def _alias_move(
    existing: Mapping[str, str], tag: str, digest: str, newer: str | None, why: str
) -> list[TagMove]:
    current = existing.get(tag) if tag in existing else None
    if newer is None:
        return [TagMove(tag, current, digest, why)]
    if current is None:
        return []
    return [TagMove(tag, current, current, f"stays: {newer} is newer")]
