"""Dependency chains from the world to an installed package."""

from __future__ import annotations

from alpenglow.apk.catalog import Catalog, Entry
from alpenglow.apk.database import parse_installed, parse_world
from alpenglow.apk.why import Reason, explain, format_chain
from tests.apk.test_catalog import stanza


def catalog(world: str, *stanzas: str) -> Catalog:
    return Catalog(world=parse_world(world), installed=parse_installed("".join(stanzas)))


def chains(cat: Catalog, name: str, *, versions: bool = False) -> list[str]:
    entry = cat.installed_named(name)
    assert isinstance(entry, Entry)
    return [format_chain(c, versions=versions) for c in explain(cat, entry)]


def test_world_entries_and_dependents() -> None:
    cat = catalog(
        "app\nlib>=1\n",
        stanza(1, "app", "1", "D:so:lib.so.1 cmd:helper"),
        stanza(2, "lib", "1.2", "p:so:lib.so.1=1"),
        stanza(3, "helper", "1", "p:cmd:helper=1", "D:lib"),
        stanza(4, "zz-tool", "1", "D:lib"),
    )
    assert chains(cat, "lib") == [
        "lib <- world[lib>=1]",
        "lib <- app[so:lib.so.1] <- world[app]",
        "lib <- helper[lib] <- app[cmd:helper] <- world[app]",
        "lib <- zz-tool[lib] (zz-tool is not required by world)",
    ]
    assert chains(cat, "helper", versions=True) == ["helper-1 <- app-1[cmd:helper] <- world[app]"]


def test_steps_carry_the_links() -> None:
    cat = catalog("app\n", stanza(1, "app", "1", "D:lib"), stanza(2, "lib", "1"))
    lib = cat.installed_named("lib")
    assert lib is not None
    (chain,) = explain(cat, lib)
    assert chain.complete
    assert [(s.entry.name, s.reason, [str(a) for a in s.atoms]) for s in chain.steps] == [
        ("lib", Reason.DEPENDENCY, ["lib"]),
        ("app", Reason.WORLD, ["app"]),
    ]
    assert chain.steps[0].by is chain.steps[1].entry


def test_nothing_requires_an_orphan() -> None:
    cat = catalog("", stanza(1, "lonely", "1"))
    assert chains(cat, "lonely") == []


def test_install_if_is_a_reason_and_not_a_loop() -> None:
    cat = catalog(
        "a\ndocs\n",
        stanza(1, "a", "1"),
        stanza(2, "docs", "1"),
        stanza(3, "a-doc", "1", "i:a=1 docs", "D:a"),
        stanza(4, "man", "1", "i:a-doc !nope"),
    )
    assert chains(cat, "a-doc") == ["a-doc <- install_if[a=1 docs]"]
    # a is required by a-doc, but a-doc is only there because of a: not a reason for a
    assert chains(cat, "a") == ["a <- world[a]"]
    assert chains(cat, "man") == ["man <- install_if[a-doc !nope]"]


def test_unmet_install_if_and_conflicts_are_not_reasons() -> None:
    cat = catalog(
        "a\n!b\n",
        stanza(1, "a", "1", "D:!b"),
        stanza(2, "b", "1", "i:a missing"),
    )
    assert chains(cat, "b") == []


def test_versions_and_virtual_providers() -> None:
    cat = catalog(
        "app\n",
        stanza(1, "app", "1", "D:mail-reader>=2"),
        stanza(2, "mutt", "1", "p:mail-reader=2"),
        stanza(3, "pine", "1", "p:mail-reader=1"),
        stanza(4, "old", "1", "D:app<1"),
    )
    assert chains(cat, "mutt") == ["mutt <- app[mail-reader>=2] <- world[app]"]
    assert chains(cat, "pine") == []
    assert chains(cat, "app") == ["app <- world[app]"]


def test_exports() -> None:
    import alpenglow.apk.why as module

    assert sorted(module.__all__) == ["Chain", "Reason", "Step", "explain", "format_chain"]
