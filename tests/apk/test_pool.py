"""Pool internals that exist for speed must agree with the plain definitions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alpenglow.apk.index import Package
from alpenglow.apk.pool import _Entry, _freeze, _plain_version
from alpenglow.apk.solver import Candidate
from alpenglow.apk.version import is_valid

_PIECES = [*"0123456789.abpr_-~zx", "_alpha", "_beta", "_rc", "_git", "_p", "-r", "~ab"]


@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=10).map("".join))
def test_plain_version_shape_is_only_ever_valid(text: str) -> None:
    if _plain_version()(text) is not None:
        assert is_valid(text)


def test_plain_version_shape_covers_common_versions() -> None:
    for text in ("1.2.3-r0", "2.0_rc1-r2", "1.1.1q-r0", "0.9_git20220101~abc1-r3", "5"):
        assert _plain_version()(text) is not None
    for text in ("1..2", "1.2a3", "a1", "1.2_foo", "1.2-r", "1.2~"):
        assert _plain_version()(text) is None


def test_entry_freezes_into_a_candidate() -> None:
    entry = _Entry(Package("a", "1.0-r0"), b"\x01" * 20, True)
    entry.repos = 5
    entry.installed = True
    cand: object = _freeze(entry)
    assert type(cand) is Candidate
    assert id(cand) == id(entry)  # the same object, re-labelled
    assert (cand.package, cand.identity, cand.repos, cand.installed) == (
        Package("a", "1.0-r0"),
        b"\x01" * 20,
        5,
        True,
    )
    assert cand.uninstallable
    assert not cand.cached
    assert _freeze(entry) is cand  # once
    with pytest.raises(AttributeError):  # frozen now (FrozenInstanceError)
        cand.repos = 1  # type: ignore[misc]


def test_reverse_lists_follow_the_name_table_whatever_buckets_are_known() -> None:
    """Names get their hash bucket when first sorted unless the index cache gave it: the
    order is apk's either way (by bucket, the most recently created name first within a
    bucket, which 1,000 names in 20,000 buckets are sure to need)."""
    from alpenglow.apk import pool as pool_module
    from alpenglow.apk.dependency import Dependency
    from alpenglow.apk.pool import Pool, name_hash, remember_buckets

    names = [f"rev-order-{i}" for i in range(1000)]
    buckets = [name_hash(n) % 20000 for n in names]
    assert len(set(buckets)) < len(names)  # some share a bucket
    listed = [
        Package(n, "1.0-r0", "X1" + i.to_bytes(20, "big").hex(), depends=(Dependency("common"),))
        for i, n in enumerate(names, start=1)
    ]
    creation = {n: i for i, n in enumerate(names)}  # the order apk creates them in
    bucket = dict(zip(names, buckets, strict=True))  # not bucket_of: it remembers them
    expected = sorted(names, key=lambda n: (bucket[n], -creation[n]))
    # half of the buckets remembered (as the index cache does for its names)
    for n in names:
        pool_module._BUCKETS.pop(n, None)
    remember_buckets(names[::2], buckets[::2])
    pool = Pool(["x86_64"])
    pool.note_world([])
    pool.add_installed([])
    pool.add_repository("r", listed)
    pool.finish()
    assert pool.rdepends("common") == expected
    assert pool.rdepends("common") == expected  # keys kept from the first sort
