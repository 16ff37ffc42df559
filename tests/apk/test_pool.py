"""Pool internals that exist for speed must agree with the plain definitions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alpenglow.apk.index import Package
from alpenglow.apk.pool import _PLAIN_VERSION, _CandidateShell, _Entry
from alpenglow.apk.solver import Candidate
from alpenglow.apk.version import is_valid

_PIECES = [*"0123456789.abpr_-~zx", "_alpha", "_beta", "_rc", "_git", "_p", "-r", "~ab"]


@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=10).map("".join))
def test_plain_version_shape_is_only_ever_valid(text: str) -> None:
    if _PLAIN_VERSION(text) is not None:
        assert is_valid(text)


def test_plain_version_shape_covers_common_versions() -> None:
    for text in ("1.2.3-r0", "2.0_rc1-r2", "1.1.1q-r0", "0.9_git20220101~abc1-r3", "5"):
        assert _PLAIN_VERSION(text) is not None
    for text in ("1..2", "1.2a3", "a1", "1.2_foo", "1.2-r", "1.2~"):
        assert _PLAIN_VERSION(text) is None


def test_candidate_shell_builds_a_candidate() -> None:
    entry = _Entry(Package("a", "1.0-r0"), b"\x01" * 20, True)
    entry.repos = 5
    entry.installed = True
    cand: object = _CandidateShell(entry)
    assert type(cand) is Candidate
    assert (cand.package, cand.identity, cand.repos, cand.installed) == (
        entry.package,
        b"\x01" * 20,
        5,
        True,
    )
    assert cand.uninstallable
    assert not cand.cached
