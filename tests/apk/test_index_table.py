"""A pool that reads an index through its IndexTable must answer exactly as one that was
given every package: same providers (in order, with the same candidates' flags), same
reverse lists in apk's name-table order, same names, same solves. Checked name by name on
the real Alpine index, as built and after a round trip through marshal."""

from __future__ import annotations

import marshal
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from alpenglow.apk.dependency import parse, parse_list
from alpenglow.apk.index import Package
from alpenglow.apk.index_table import (
    PLAIN,
    SKIPPED,
    IndexTable,
    decode_columns,
    encode_columns,
)
from alpenglow.apk.pool import Pool
from alpenglow.apk.solver import Candidate, solve

Build = Callable[[Pool, object], None]


@pytest.fixture(scope="module")
def alpine(shared_dir: Path) -> tuple[Package, ...]:
    from alpenglow.apk.index import load_index_archive
    from alpenglow.apk.signing import Keyring

    data = shared_dir / "data" / "alpine-v3.16-main-x86_64"
    archive = load_index_archive(
        (data / "APKINDEX.tar.gz").read_bytes(), Keyring.from_directory(data), source="main"
    )
    return archive.packages


def _names(packages: Sequence[Package]) -> tuple[str, ...]:
    order: dict[str, None] = {}
    for pkg in packages:
        order[pkg.name] = None
        for deps in (pkg.depends, pkg.provides, pkg.install_if, pkg.replaces):
            order.update(dict.fromkeys(d.name for d in deps))
    return tuple(order)


def _table(packages: Sequence[Package], round_trip: bool) -> IndexTable:
    """The table as built, or as the index cache reads it back (with every package in
    columns besides, used once many have been asked for one by one)."""
    table = IndexTable.build(packages, _names(packages))
    if round_trip:
        table = IndexTable.load(marshal.loads(marshal.dumps(table.dump())))
        columns = encode_columns(packages)
        table.set_bulk(lambda: decode_columns(columns))
    return table


def _cand(c: Candidate) -> tuple[object, ...]:
    return (
        c.package,
        c.identity,
        c.repos,
        c.installed,
        c.repository_tag,
        c.cached,
        c.cached_non_repository,
        c.uninstallable,
    )


def _view(pool: Pool, names: Sequence[str]) -> dict[str, object]:
    return {
        "providers": [[(_cand(c), v) for c, v in pool.providers(n)] for n in names],
        "rdepends": [list(pool.rdepends(n)) for n in names],
        "rinstall_if": [list(pool.rinstall_if(n)) for n in names],
        "iif": sorted(pool.install_if_names()),
        "repo_providers": [pool.has_repository_providers(n) for n in names],
        "has_name": [pool.has_name(n) for n in (*names, "no-such-name")],
        "candidates": [_cand(c) for c in pool.candidates()],
        "installed": [_cand(c) for c in pool.installed()],
        "all_names": pool.all_names(),
        "compat": pool.compat.warnings(),
    }


def _pools(
    repos: Sequence[Sequence[Package]],
    *,
    world: Sequence[str] = (),
    installed: Sequence[Package] = (),
    late: Sequence[Package] = (),
) -> list[Pool]:
    """The same universe made four ways: packages, tables as built, tables loaded back,
    and tables loaded back then read all at once."""
    pools = []
    for how in ("packages", "built", "loaded", "read all"):
        pool = Pool(["x86_64"])
        pool.note_world([parse(n) for n in world])
        pool.add_installed(installed)
        for r, packages in enumerate(repos):
            given: object = packages if how == "packages" else _table(packages, how != "built")
            pool.add_repository(f"repo{r}", given, tags=(None if r == 0 else "edge",))  # type: ignore[arg-type]
        pool.finish()
        if how == "read all":
            before = [c for c, _ in pool.providers("musl")]
            pool.read_all()
            assert not pool._listed
            after = [c for c, _ in pool.providers("musl")]  # handed out: the same objects
            assert len(after) == len(before)
            assert all(a is b for a, b in zip(after, before, strict=True))
        for pkg in late:
            pool.add_virtual(pkg)
        pools.append(pool)
    return pools


def _same(pools: list[Pool], extra: Sequence[str] = ()) -> None:
    names = list(pools[0]._creation_order()) + list(extra)
    expected = _view(pools[0], names)
    for pool in pools[1:]:
        got = _view(pool, names)
        for key, value in expected.items():
            assert got[key] == value, key


def test_alpine_index_alone(alpine: tuple[Package, ...]) -> None:
    pools = _pools([alpine], world=["alpine-base", "python3", "nginx"])
    assert pools[1]._listed  # read through the tables
    assert pools[2]._listed
    _same(pools)


def test_alpine_index_with_installed_packages(alpine: tuple[Package, ...]) -> None:
    rng = random.Random(3)
    installed = rng.sample(alpine, 25)
    orphan = Package(
        "orphan",
        "1.0-r0",
        "X1" + "ab" * 20,
        "x86_64",
        depends=parse_list("musl so:libc.musl-x86_64.so.1 busybox"),
        provides=parse_list("cmd:orphan=1.0-r0"),
    )
    pools = _pools(
        [alpine],
        world=["busybox", "orphan", installed[0].name],
        installed=[
            orphan,
            *installed,
        ],
    )
    assert pools[1]._listed  # installed packages equal to the index's merge
    assert any(c.installed and c.repos for c in pools[1].installed())
    _same(pools)


def test_installed_record_that_differs_from_the_index(alpine: tuple[Package, ...]) -> None:
    pkg = next(p for p in alpine if p.name == "busybox")
    changed = replace(pkg, depends=parse_list("musl zlib"))  # same identity, other deps
    pools = _pools([alpine], world=["busybox"], installed=[changed])
    _same(pools)


def test_two_repositories_sharing_packages(alpine: tuple[Package, ...]) -> None:
    rng = random.Random(5)
    second = list(rng.sample(alpine, 300))  # the same packages listed again
    second += [
        replace(p, version=p.version + "1", checksum="X1" + f"{i:040x}")
        for i, p in enumerate(rng.sample(alpine, 200), start=1)
    ]
    pools = _pools([alpine, second], world=["nginx", "python3"])
    assert pools[1]._listed
    assert any(c.repos == 3 for c in pools[1].candidates())
    _same(pools)


def test_late_virtual_package(alpine: tuple[Package, ...]) -> None:
    virtual = Package(
        ".virt", "20261129.000000", "X1" + "cd" * 20, depends=parse_list("musl python3")
    )
    pools = _pools([alpine], world=[".virt"], late=[virtual])
    assert all(p.extended for p in pools)
    _same(pools, extra=[".virt"])


def test_solves_are_the_same(alpine: tuple[Package, ...]) -> None:
    rng = random.Random(20261129)
    names = sorted({p.name for p in alpine})
    worlds = [["alpine-base", "nginx", "python3"], ["busybox"]]
    worlds += [sorted(rng.sample(names, rng.randint(1, 5))) for _ in range(6)]
    for world in worlds:
        results = []
        for pool in _pools([alpine], world=world):
            sol = solve(pool, [parse(n) for n in world])
            results.append([(str(c.old), str(c.new)) for c in sol.changes])
        assert results[0] == results[1] == results[2] == results[3], world


def test_small_index_flags_and_tables() -> None:
    def q(i: int) -> str:
        return "X1" + (bytes([i]) * 20).hex()

    listed = (
        Package("a", "1.0-r0", q(1), "x86_64", depends=parse_list("b so:x")),
        Package("b", "2.0-r0", q(2), "noarch", provides=(parse("so:x=1"),)),
        Package("c", "1.0-r0", q(3), "armv7"),  # another arch: uninstallable
        Package("d", "1.0-r0", "nonsense"),  # no identity: left out
        Package("e", "1.0-r0", q(5), depends=(parse("a"), parse("b@edge"))),  # tag: cut
        Package("f", "1.0-r0", q(6), install_if=parse_list("a b")),
        Package("a", "1.0-r0", q(1), "x86_64"),  # listed twice: one candidate
    )
    table = _table(listed, round_trip=True)
    assert [table.flags(i) for i in range(len(table))] == [
        PLAIN,
        PLAIN,
        PLAIN,
        PLAIN | SKIPPED,
        0,
        PLAIN,
        PLAIN | SKIPPED,
    ]
    assert table.packages() == listed
    assert table.install_if_names() == ["a", "b"]
    installed = [Package("b", "2.0-r0", q(2), "noarch", provides=(parse("so:x=1"),))]
    _same(_pools([listed], installed=installed), extra=["a", "b", "so:x", "e", "f"])


def test_damaged_dump_is_refused() -> None:
    table = _table((Package("a", "1", "X1" + "01" * 20),), round_trip=False)
    dumped = table.dump()
    assert IndexTable.load(dumped).packages() == table.packages()
    with pytest.raises(ValueError, match="layout"):
        IndexTable.load(dumped[:-1])
    with pytest.raises(ValueError, match="do not fit"):
        IndexTable.load((*dumped[:5], (b"", b"", b""), *dumped[6:]))
    bad_tables = (dumped[6][0][:-4], *dumped[6][1:])
    with pytest.raises(ValueError, match="do not fit"):
        IndexTable.load((*dumped[:6], bad_tables, dumped[7]))
    # a package that is not read as listed must come with its normalized form
    with pytest.raises(ValueError, match="do not fit the flags"):
        IndexTable.load((*dumped[:3], b"\x00", *dumped[4:]))


def test_packages_decoded_one_by_one_stay_when_the_rest_come_in_bulk(
    alpine: tuple[Package, ...],
) -> None:
    table = _table(alpine, round_trip=True)
    first = [table.package(i) for i in range(0, 40, 3)]
    assert table._bulk is not None  # not needed yet
    many = [table.package(i) for i in range(len(table))]
    assert table._bulk is None  # used once
    assert many == list(alpine)
    assert all(a is b for a, b in zip(first, many[0:40:3], strict=True))
    assert table.packages() == alpine


def test_bulk_that_fails_falls_back_to_one_by_one(alpine: tuple[Package, ...]) -> None:
    table = _table(alpine, round_trip=True)
    table.set_bulk(lambda: None)
    assert table.packages() == alpine
    table = _table(alpine[:10], round_trip=True)
    table.set_bulk(lambda: alpine[:3])  # not the same count: ignored
    assert table.packages() == alpine[:10]


def test_every_name_is_found_by_its_hash_slot(alpine: tuple[Package, ...]) -> None:
    table = _table(alpine, round_trip=True)
    assert [table.index_of(n) for n in table.names] == list(range(len(table.names)))
    for missing in ("", "no-such-name", "musl ", "MUSL", "so:libc.musl-x86_64.so.2", "\udcff"):
        assert table.index_of(missing) is None
    odd = (Package("é\udcff", "1", "X1" + "01" * 20, depends=parse_list("ü")),)
    small = _table(odd, round_trip=True)
    assert [small.index_of(n) for n in ("é\udcff", "ü", "u")] == [0, 1, None]
