"""parse_index(format_index(pkgs)) == pkgs for any package records apk can write."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alpenglow.apk.dependency import parse
from alpenglow.apk.index import Package, format_index, format_package, parse_index
from tests.apk.property.strategies import names, operators, prefixed_names, versions

_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\n\r"),
    max_size=30,
)


@st.composite
def atoms(draw: st.DrawFn) -> str:
    text = ("!" if draw(st.booleans()) else "") + draw(prefixed_names)
    if draw(st.booleans()):
        text += draw(operators) + draw(versions())
    return text


_deps = st.lists(atoms(), max_size=4).map(lambda xs: tuple(parse(x) for x in xs))


@st.composite
def packages(draw: st.DrawFn) -> Package:
    return Package(
        name=draw(names),
        version=draw(versions()),
        checksum=draw(st.sampled_from(["", "Q1jPsNozZhCks+WW7OUyLGU9t/7K8="])),
        arch=draw(st.sampled_from(["", "x86_64", "noarch"])),
        size=draw(st.integers(0, 2**40)),
        installed_size=draw(st.integers(0, 2**40)),
        description=draw(_text),
        url=draw(_text),
        license=draw(_text),
        origin=draw(st.one_of(st.just(""), names)),
        maintainer=draw(_text),
        build_time=draw(st.integers(0, 2**33)),
        commit=draw(st.one_of(st.just(""), st.from_regex(r"[0-9a-f]{40}", fullmatch=True))),
        provider_priority=draw(st.one_of(st.none(), st.integers(0, 1000))),
        depends=draw(_deps),
        provides=draw(_deps.map(lambda ds: tuple(d.without_conflict() for d in ds))),
        install_if=draw(_deps),
    )


@settings(max_examples=200)
@given(st.lists(packages(), max_size=5))
def test_index_round_trip(pkgs: list[Package]) -> None:
    ordered = sorted(pkgs, key=lambda p: p.name)
    assert parse_index(format_index(pkgs)) == ordered


@given(packages())
def test_stanza_round_trip_through_general_reader(pkg: Package) -> None:
    # An unknown lower-case field forces the line-by-line reader.
    (back,) = parse_index(format_package(pkg) + "\nz:x\n\n")
    assert back.extra == (("z", "x"),)
    assert format_package(back) == format_package(pkg) + "\nz:x"
