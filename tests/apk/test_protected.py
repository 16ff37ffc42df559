"""Protected path rules: apk's defaults, protected_paths.d lines, inheritance."""

from __future__ import annotations

import pytest

from alpenglow.apk.protected import (
    DEFAULT_RULES,
    is_protected,
    mode_of,
    parse_rules,
    rules_from_files,
)


@pytest.mark.parametrize(
    ("directory", "mode"),
    [
        ("etc", "+"),
        ("etc/ssh", "+"),
        ("etc/init.d", "@"),
        ("etc/apk", "!"),
        ("etc/apk/keys", "!"),
        ("usr/bin", ""),
        ("", ""),
    ],
)
def test_default_modes(directory: str, mode: str) -> None:
    assert mode_of(parse_rules(DEFAULT_RULES), directory) == mode


def test_symlink_only_protection() -> None:
    rules = parse_rules(DEFAULT_RULES)
    assert is_protected(rules, "etc/init.d", symlink=True)
    assert not is_protected(rules, "etc/init.d", symlink=False)
    assert is_protected(rules, "etc/conf.d", symlink=False)
    assert not is_protected(rules, "usr/lib", symlink=False)


def test_files_add_rules_after_the_defaults_and_globs_match() -> None:
    rules = rules_from_files(["# comment\n+usr/local/etc/\n-var/lib/*\nbogus\n", "!etc/ssl\n"])
    assert mode_of(rules, "usr/local/etc/app") == "+"
    assert mode_of(rules, "var/lib/misc") == "-"
    assert not is_protected(rules, "var/lib/misc", symlink=False)
    assert mode_of(rules, "etc/ssl/certs") == "!"
    assert mode_of(rules, "etc") == "+"
