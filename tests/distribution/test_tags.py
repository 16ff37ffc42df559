"""alpenglow.distribution.tags: which tags a release sets, by Alpine's scheme."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

import alpenglow.distribution.tags as tags_module
from alpenglow.apk.version import compare
from alpenglow.distribution.tags import (
    TagMove,
    alias_tags,
    is_prerelease,
    plan_release,
    release_parts,
)
from alpenglow.errors import AlpenglowError, InvalidVersion


def test_exports() -> None:
    assert sorted(dir(tags_module)) == sorted(tags_module.__all__)


def apply(repo: dict[str, str], plan: tuple[TagMove, ...]) -> dict[str, str]:
    for move in plan:
        repo[move.tag] = move.new
    return repo


def targets(plan: tuple[TagMove, ...]) -> dict[str, tuple[str | None, str]]:
    return {m.tag: (m.current, m.new) for m in plan}


def test_alpine_release_sequence() -> None:
    """3.22.4, then a late 3.22.3, then 3.21.9, then 3.23.0_rc1, then an edge build."""
    repo: dict[str, str] = {}
    plan = plan_release(repo, "3.22.4", "sha256:a")
    assert targets(plan) == {
        "3.22.4": (None, "sha256:a"),
        "3.22": (None, "sha256:a"),
        "3": (None, "sha256:a"),
        "latest": (None, "sha256:a"),
    }
    assert [m.action for m in plan] == ["create"] * 4
    apply(repo, plan)

    plan = plan_release(repo, "3.22.3", "sha256:b")
    assert targets(plan) == {
        "3.22.3": (None, "sha256:b"),
        "3.22": ("sha256:a", "sha256:a"),
        "3": ("sha256:a", "sha256:a"),
        "latest": ("sha256:a", "sha256:a"),
    }
    assert {m.tag: m.reason for m in plan if not m.changes} == {
        "3.22": "stays: 3.22.4 is newer",
        "3": "stays: 3.22.4 is newer",
        "latest": "stays: 3.22.4 is newer",
    }
    apply(repo, plan)

    plan = plan_release(repo, "3.21.9", "sha256:c")
    assert targets(plan) == {
        "3.21.9": (None, "sha256:c"),
        "3.21": (None, "sha256:c"),
        "3": ("sha256:a", "sha256:a"),
        "latest": ("sha256:a", "sha256:a"),
    }
    apply(repo, plan)

    plan = plan_release(repo, "3.23.0_rc1", "sha256:d")
    assert targets(plan) == {"3.23.0_rc1": (None, "sha256:d")}
    assert plan[0].reason == "pre-release: only its own tag"
    apply(repo, plan)

    plan = plan_release(repo, "3.23.0_rc1", "sha256:d", edge=True)
    assert targets(plan) == {"3.23.0_rc1": ("sha256:d", "sha256:d"), "edge": (None, "sha256:d")}
    apply(repo, plan)

    assert repo == {
        "3.22.4": "sha256:a",
        "3.22": "sha256:a",
        "3": "sha256:a",
        "latest": "sha256:a",
        "3.22.3": "sha256:b",
        "3.21.9": "sha256:c",
        "3.21": "sha256:c",
        "3.23.0_rc1": "sha256:d",
        "edge": "sha256:d",
    }

    # the final 3.23.0 is newer than everything stable: every alias moves, the rc stays
    plan = plan_release(repo, "3.23.0", "sha256:e")
    assert targets(plan) == {
        "3.23.0": (None, "sha256:e"),
        "3.23": (None, "sha256:e"),
        "3": ("sha256:a", "sha256:e"),
        "latest": ("sha256:a", "sha256:e"),
    }


def test_rerun_is_idempotent() -> None:
    repo = apply({"3.21.9": "sha256:c", "3.21": "sha256:c"}, ())
    first = plan_release(repo, "3.22.0", "sha256:a", edge=True)
    apply(repo, first)
    again = plan_release(repo, "3.22.0", "sha256:a", edge=True)
    assert [m.tag for m in again] == [m.tag for m in first]
    assert not any(m.changes for m in again)
    assert {m.action for m in again} == {"keep"}


def test_a_released_version_is_immutable() -> None:
    with pytest.raises(AlpenglowError, match=r"tag 3\.22\.4 already points at sha256:a"):
        plan_release({"3.22.4": "sha256:a"}, "3.22.4", "sha256:b")


@pytest.mark.parametrize(
    ("existing", "version", "expected"),
    [
        # newest of its minor line but not of its major
        (["3.22.4", "3.21.1"], "3.21.2", {"3.21.2", "3.21"}),
        # a new major below the newest one: 4 is created, latest stays
        (["5.0.0"], "4.1.0", {"4.1.0", "4.1", "4"}),
        # versions compare by apk's rules: 3.10 is newer than 3.9
        (["3.9.9"], "3.10.0", {"3.10.0", "3.10", "3", "latest"}),
        # a post-release suffix is a stable release, and newer than its base
        (["1.2.3"], "1.2.3_p1", {"1.2.3_p1", "1.2", "1", "latest"}),
        # a revision is newer than the plain version
        (["1.2.3"], "1.2.3-r1", {"1.2.3-r1", "1.2", "1", "latest"}),
        # alias tags and foreign tags are not releases
        (
            ["3.22", "3", "latest", "edge", "nightly", "9"],
            "3.21.0",
            {"3.21.0", "3.21", "3", "latest"},
        ),
        # a pre-release never holds back a stable release
        (["3.23.0_rc2", "3.23.0_beta1"], "3.22.9", {"3.22.9", "3.22", "3", "latest"}),
        # every kind of pre-release gets its own tag only
        ([], "1.0_alpha", {"1.0_alpha"}),
        ([], "1.0_beta2", {"1.0_beta2"}),
        ([], "1.0_pre", {"1.0_pre"}),
        ([], "2.0.0_rc1-r1", {"2.0.0_rc1-r1"}),
        # one number: no aliases
        (["7"], "8", {"8", "latest"}),
        # two numbers: one alias
        (["1.1"], "1.2", {"1.2", "1", "latest"}),
    ],
)
def test_which_tags_move(existing: list[str], version: str, expected: set[str]) -> None:
    repo = {tag: f"sha256:old-{tag}" for tag in existing}
    plan = plan_release(repo, version, "sha256:new")
    assert {m.tag for m in plan if m.new == "sha256:new"} == expected
    assert plan[0].tag == version


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ("v3.22", "invalid version 'v3.22'"),
        ("3..22", "invalid version"),
        ("1.0_foo", "invalid version"),
        ("1.0~abc", "cannot be an image tag"),
        ("", "invalid version"),
    ],
)
def test_bad_versions(version: str, problem: str) -> None:
    with pytest.raises(InvalidVersion, match=problem):
        plan_release({}, version, "sha256:x")


def test_helpers() -> None:
    assert release_parts("3.22.4-r1") == ("3", "22", "4")
    assert alias_tags("3.22.4") == ("3.22", "3")
    assert alias_tags("1.2.3a") == ("1.2", "1")
    assert alias_tags("2024") == ()
    assert is_prerelease("1.0_rc")
    assert is_prerelease("1.0_alpha3_p1")
    assert not is_prerelease("1.0_p1")
    assert not is_prerelease("1.0_git20240101")


class CountingTags(Mapping[str, str]):
    """Tags whose digests are looked up one by one (as a registry would, with HEAD)."""

    def __init__(self, digests: dict[str, str]) -> None:
        self._digests = digests
        self.looked_up: list[str] = []

    def __getitem__(self, tag: str) -> str:
        self.looked_up.append(tag)
        return self._digests[tag]

    def __iter__(self) -> Iterator[str]:
        return iter(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def __contains__(self, tag: object) -> bool:
        return tag in self._digests


def test_only_the_planned_tags_are_looked_up() -> None:
    many = {
        f"3.{minor}.{patch}": f"sha256:{minor}-{patch}" for minor in range(20) for patch in range(9)
    }
    many.update({"3.19": "sha256:19-8", "3": "sha256:19-8", "latest": "sha256:19-8"})
    lazy = CountingTags(many)
    plan = plan_release(lazy, "3.19.9", "sha256:new")
    assert sorted(set(lazy.looked_up)) == ["3", "3.19", "latest"]
    assert {m.tag for m in plan if m.changes} == {"3.19.9", "3.19", "3", "latest"}


# --------------------------------------------------------------------------------------------
# Laws

versions = st.builds(
    lambda major, minor, patch, pre: f"{major}.{minor}.{patch}{pre}",
    st.integers(0, 4),
    st.integers(0, 12),
    st.integers(0, 12),
    st.sampled_from(["", "", "", "_rc1", "_alpha", "_p1", "-r1"]),
)


@given(st.lists(versions, max_size=12, unique=True))
def test_release_history_laws(history: list[str]) -> None:
    """Whatever the order of releases: each version tag names its own image, and every alias
    names the newest stable release of its line (latest: of all)."""
    repo: dict[str, str] = {}
    for version in history:
        apply(repo, plan_release(repo, version, f"sha256:{version}"))
    for version in history:
        assert repo[version] == f"sha256:{version}"
    stable = [v for v in history if not is_prerelease(v)]

    def newest(candidates: list[str]) -> str | None:
        best: str | None = None
        for candidate in candidates:
            if best is None or compare(candidate, best) > 0:
                best = candidate
        return best

    expected_latest = newest(stable)
    assert repo.get("latest") == (f"sha256:{expected_latest}" if expected_latest else None)
    for version in stable:
        for alias in alias_tags(version):
            line = tuple(alias.split("."))
            best = newest([v for v in stable if release_parts(v)[: len(line)] == line])
            assert repo[alias] == f"sha256:{best}"
