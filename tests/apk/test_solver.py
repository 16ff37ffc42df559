"""The solver on small hand-made universes (the full apk cases run in tests/cli), and its
discovery closures on the real Alpine index."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpenglow.apk.changeset import Stats, change_lines, human_size, summary_line
from alpenglow.apk.dependency import parse, parse_list
from alpenglow.apk.index import Package, parse_index
from alpenglow.apk.pool import Pool, murmur3_32, name_hash
from alpenglow.apk.problems import report
from alpenglow.apk.solver import (
    Candidate,
    Closure,
    Reporter,
    Solution,
    SolverFlag,
    _Solver,
    identity_key,
    solve,
    version_match,
)
from alpenglow.apk.version import Op

_counter = iter(range(1, 1_000_000))


def pkg(name: str, version: str, depends: str = "", provides: str = "", **kw: object) -> Package:
    """A package with a unique identity."""
    ident = "X1" + next(_counter).to_bytes(20, "big").hex()
    return Package(
        name=name,
        version=version,
        checksum=ident,
        installed_size=1,
        depends=parse_list(depends),
        provides=parse_list(provides),
        **kw,  # type: ignore[arg-type]
    )


def pool_of(repo: list[Package], installed: list[Package] | None = None) -> Pool:
    pool = Pool(["x86_64"])
    pool.note_world([])
    pool.add_installed(installed or [])
    pool.add_repository("test:///repo.tar.gz", repo)
    pool.finish()
    return pool


def lines(pool: Pool, sol: Solution) -> list[str]:
    return change_lines(sol.changes, pool.tag_name, lambda c: True)


def world(text: str) -> list:  # type: ignore[type-arg]
    return [parse(a) for a in text.split()]


def test_installs_dependencies_first() -> None:
    pool = pool_of([pkg("a", "1", "b"), pkg("a", "2", "b"), pkg("b", "1"), pkg("b", "2")])
    sol = solve(pool, world("a"))
    assert sol.errors == 0
    assert lines(pool, sol) == ["(1/2) Installing b (2)", "(2/2) Installing a (2)"]


def test_version_constraints_propagate() -> None:
    repo = [
        pkg("a", "2", "b c"),
        pkg("a", "3", "b c d>1.5"),
        pkg("b", "1", "c d<2.0"),
        pkg("c", "1", "d>1.0"),
        pkg("d", "1.0"),
        pkg("d", "1.5"),
        pkg("d", "2.0"),
    ]
    pool = pool_of(repo)
    sol = solve(pool, world("a"))
    assert [str(c.new) for c in sol.changes] == ["d-1.5", "c-1", "b-1", "a-2"]


def test_unsatisfiable_reports_like_apk() -> None:
    repo = [pkg("a", "1", "!b>1"), pkg("b", "1"), pkg("b", "2")]
    pool = pool_of(repo)
    sol = solve(pool, world("a b>1"))
    assert sol.errors == 1
    assert report(pool, sol) == ("  b-2:\n    breaks: a-1[!b>1]\n    satisfies: world[b>1]\n")


def test_missing_name_is_reported() -> None:
    pool = pool_of([pkg("a", "1")])
    sol = solve(pool, world("a nosuch"))
    assert sol.errors == 1
    assert report(pool, sol) == "  nosuch (no such package):\n    required by: world[nosuch]\n"


def test_virtual_without_priority_needs_a_choice() -> None:
    repo = [pkg("p1", "1", provides="vv"), pkg("p2", "1", provides="vv"), pkg("x", "1", "vv")]
    pool = pool_of(repo)
    sol = solve(pool, world("x"))
    assert sol.errors == 2  # the missing choice, and x that needs it (apk counts both)
    assert "vv (virtual)" in report(pool, sol)
    # choosing one explicitly works
    assert solve(pool, world("x p2")).errors == 0


def test_provider_priority_decides() -> None:
    repo = [
        pkg("busybox-binsh", "1", provides="/bin/sh", provider_priority=100),
        pkg("dash-binsh", "1", provides="/bin/sh", provider_priority=60),
    ]
    pool = pool_of(repo)
    sol = solve(pool, world("/bin/sh"))
    assert [str(c.new) for c in sol.changes] == ["busybox-binsh-1"]


def test_upgrade_flag_and_installed_preference() -> None:
    a1, b1 = pkg("a", "1", "b"), pkg("b", "1")
    repo = [a1, pkg("a", "2", "b"), b1, pkg("b", "2")]
    pool = pool_of(repo, installed=[a1, b1])
    assert solve(pool, world("a")).num_changes == 0
    sol = solve(pool, world("a"), SolverFlag.UPGRADE)
    assert lines(pool, sol) == ["(1/2) Upgrading b (1 -> 2)", "(2/2) Upgrading a (1 -> 2)"]


def test_removal_of_unneeded_packages() -> None:
    a1, b1 = pkg("a", "1", "b"), pkg("b", "1")
    pool = pool_of([a1, b1], installed=[a1, b1])
    sol = solve(pool, [])
    assert lines(pool, sol) == ["(1/2) Purging a (1)", "(2/2) Purging b (1)"]


def test_self_conflict_is_an_error_not_a_hang() -> None:
    repo = [pkg("sc", "1", provides="selfprovided=2 selfprovided=3")]
    pool = pool_of(repo)
    sol = solve(pool, world("sc"))
    assert sol.errors
    assert "conflicts: sc-1[selfprovided=2]" in report(pool, sol)


def test_dependency_cycle_terminates() -> None:
    repo = [pkg("a", "1", "b"), pkg("b", "1", "c"), pkg("c", "1", "a")]
    pool = pool_of(repo)
    sol = solve(pool, world("a"))
    assert sol.errors == 0
    assert sorted(str(c.new) for c in sol.changes) == ["a-1", "b-1", "c-1"]


def test_install_if() -> None:
    repo = [
        pkg("app", "1"),
        pkg("docs", "1"),
        pkg("app-doc", "1", install_if=parse_list("app docs")),
    ]
    pool = pool_of(repo)
    assert [str(c.new) for c in solve(pool, world("app")).changes] == ["app-1"]
    got = [str(c.new) for c in solve(pool, world("app docs")).changes]
    assert got == ["app-1", "docs-1", "app-doc-1"]


def test_force_broken_world_drops_bad_entries() -> None:
    pool = pool_of([pkg("a", "1")])
    sol = solve(pool, world("a nosuch"), force_broken_world=True)
    assert sol.errors == 0
    assert [str(d) for i, d in enumerate(sol.world) if i in sol.broken] == ["nosuch"]


def test_pinning_tag_allows_tagged_repository() -> None:
    pool = Pool(["x86_64"])
    pool.note_world([])
    pool.add_installed([])
    pool.add_repository("test:///main", [pkg("a", "1")])
    pool.add_repository("test:///edge", [pkg("a", "2")], tags=("edge",))
    pool.finish()
    assert [str(c.new) for c in solve(pool, world("a")).changes] == ["a-1"]
    sol = solve(pool, world("a@edge"))
    assert lines(pool, sol) == ["(1/1) Installing a@edge (2)"]


def test_arch_mismatch_is_uninstallable() -> None:
    pool = pool_of([pkg("a", "1", arch="riscv64")])
    sol = solve(pool, world("a"))
    assert sol.errors == 1
    assert "arch: riscv64" in report(pool, sol)


def test_reporter_hooks_are_called() -> None:
    seen: list[str] = []

    class Trace(Reporter):
        def selected(self, name: str, candidate: Candidate | None) -> None:
            seen.append(name)

    pool = pool_of([pkg("a", "1", "b"), pkg("b", "1")])
    solve(pool, world("a"), reporter=Trace())
    assert seen == ["a", "b"]


@pytest.mark.parametrize(
    ("version", "op", "want", "expected"),
    [
        ("1.0", Op.EQ, "1.0", True),
        ("1.0", Op.GT, "1.0", False),
        ("2.10", Op.EQ | Op.FUZZY, "2.1", False),
        ("2.1.5", Op.EQ | Op.FUZZY, "2.1", True),
        (None, Op.GT, "1", True),  # a virtual provide matches any version
        ("1", Op.EQ | Op.CONFLICT, "1", False),
    ],
)
def test_version_match(version: str | None, op: int, want: str, expected: bool) -> None:
    assert version_match(version, op, want) is expected


def test_identity_key_is_lenient_like_apk() -> None:
    # the last base64 character's low bits are ignored: two spellings, one package
    assert identity_key("Q1hdUpqRv5mYgJEqW52UmVsvmeedd=") == identity_key(
        "Q1hdUpqRv5mYgJEqW52UmVsvmeedf="
    )
    assert len(identity_key("X1" + "ab" * 20)) == 20
    assert identity_key("nonsense") == b""


def test_name_hash_is_murmur3_with_apks_seed() -> None:
    assert murmur3_32(b"hello", 0) == 0x248BFA47  # the published test vector
    assert murmur3_32(b"", 0) == 0
    assert name_hash("hello") == murmur3_32(b"hello", 5381)


def test_summary_and_sizes() -> None:
    assert human_size(2) == "2 B"
    assert human_size(12 * 1024 * 1024 + 300 * 1024) == "12.3 MiB"
    assert summary_line(Stats(2, 2)) == "OK: 2 B in 2 packages"
    assert summary_line(Stats(1, 4096), errors=1) == "1 error; 4096 B in 1 packages"
    assert summary_line(Stats(2, 2, 3, 4), verbose=True) == "OK: 2 packages, 3 dirs, 4 files, 2 B"


def test_numbering_is_padded_like_apk3() -> None:
    repo = [pkg(f"m{i:02}", "1.0") for i in range(11)]
    pool = pool_of(repo)
    got = lines(pool, solve(pool, world(" ".join(p.name for p in repo))))
    assert got[0] == "( 1/11) Installing m00 (1.0)"
    assert got[-1] == "(11/11) Installing m10 (1.0)"


def test_parse_index_repeated_provides_lines_append() -> None:
    text = "C:Q1EyN5AdpAOBJWKMR89pp/C66o+OE=\nP:x\nV:1\np:a=1\np:b=2\n"
    assert [str(d) for d in parse_index(text)[0].provides] == ["a=1", "b=2"]


def test_deep_discovery_does_not_hit_the_interpreter_recursion_limit() -> None:
    import sys

    # one package providing thousands of names (discovery goes a level deeper per name)
    # and a long dependency chain (a level per package), both past the default limit
    many = " ".join(f"cmd:c{i}=1.0-r0" for i in range(3000))
    chain = [pkg(f"c{i}", "1.0-r0", f"c{i + 1}" if i < 1999 else "") for i in range(2000)]
    pool = pool_of([pkg("big", "1.0-r0", provides=many), *chain])
    limit = sys.getrecursionlimit()
    sol = solve(pool, world("cmd:c0 c0"))
    assert sys.getrecursionlimit() == limit
    assert sol.errors == 0
    assert sol.chosen["cmd:c2999"].name == "big"
    assert sol.chosen["c1999"].name == "c1999"
    assert sol.num_changes == 2001


# --------------------------------------------------------------------------------------
# Discovery closures: numbering a root from its closure is the walk, root by root


@pytest.fixture(scope="module")
def alpine_pool(shared_dir: Path) -> Pool:
    from alpenglow.apk.index import load_index_archive
    from alpenglow.apk.signing import Keyring

    data = shared_dir / "data" / "alpine-v3.16-main-x86_64"
    archive = load_index_archive(
        (data / "APKINDEX.tar.gz").read_bytes(), Keyring.from_directory(data), source="main"
    )
    pool = Pool(["x86_64"])
    pool.note_world([])
    pool.add_installed([])
    pool.add_repository("main", archive.packages)
    pool.finish()
    return pool


def _discovered(
    pool: Pool,
    roots: list[str],
    closures: dict[str, Closure] | None,
    flagged: frozenset[str] = frozenset(),
) -> tuple[set[str], dict[str, int], int]:
    solver = _Solver(pool, 0, {}, Reporter(), closures)
    solver.flagged = flagged
    solver.discover(iter(roots))
    return solver.seen_names, solver.order_ids, solver.order_counter


def _worlds(pool: Pool) -> list[list[str]]:
    import random

    names = sorted(c.package.name for c in pool.candidates())
    rng = random.Random(20261129)
    worlds = [["alpine-base", "nginx", "python3"], ["nginx"], ["busybox", "zlib"]]
    worlds += [rng.sample(names, rng.randint(1, 4)) for _ in range(9)]
    return [sorted(w) for w in worlds]


def test_closures_number_names_as_the_walk_does(alpine_pool: Pool) -> None:
    for roots in _worlds(alpine_pool):
        expected = _discovered(alpine_pool, roots, None)
        # the first root is walked alone: its closure is recorded, and nothing changes
        recorded: dict[str, Closure] = {}
        assert _discovered(alpine_pool, roots, recorded) == expected
        assert list(recorded) == roots[:1]
        # every root known, each walked alone beforehand: the later ones are numbered from
        # closures whose first names were seen already
        known: dict[str, Closure] = {}
        for root in roots:
            _discovered(alpine_pool, [root], known)
        assert set(known) == set(roots)
        assert _discovered(alpine_pool, roots, known) == expected
        flagged = frozenset(roots[-1:])
        assert _discovered(alpine_pool, roots, known, flagged) == _discovered(
            alpine_pool, roots, None, flagged
        )


def test_solve_with_closures_decides_the_same(alpine_pool: Pool) -> None:
    closures: dict[str, Closure] = {}
    for roots in _worlds(alpine_pool)[:5]:
        deps = [parse(r) for r in roots]
        plain = solve(alpine_pool, deps)
        for _ in range(2):  # filling the closures, then numbering from them
            again = solve(alpine_pool, deps, closures=closures)
            assert again.changes == plain.changes
            assert again.errors == plain.errors
            assert dict(again.chosen) == dict(plain.chosen)
    assert closures


def test_a_tracing_reporter_sees_the_walk_not_closures() -> None:
    pool = pool_of([pkg("a", "1", "b"), pkg("b", "1")])
    closures: dict[str, Closure] = {}
    solve(pool, world("a"), closures=closures)
    assert closures["a"] == Closure(("b", "a"), b"\x01\x01")

    class Trace(Reporter):
        def __init__(self) -> None:
            self.names: list[str] = []

        def discovered(self, name: str) -> None:
            self.names.append(name)

    trace = Trace()
    solve(pool, world("a"), closures=closures, reporter=trace)
    assert trace.names == ["a", "b"]
