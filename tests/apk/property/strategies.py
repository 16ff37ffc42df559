"""Hypothesis strategies for apk versions and dependency atoms."""

from __future__ import annotations

from hypothesis import strategies as st

SUFFIXES = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]

_number = st.integers(min_value=0, max_value=10**6).map(str)
_numbers = st.one_of(_number, st.from_regex(r"0[0-9]{1,3}", fullmatch=True))


@st.composite
def versions(draw: st.DrawFn) -> str:
    """Valid apk versions covering every grammar part."""
    text = draw(_number)
    for part in draw(st.lists(_numbers, max_size=4)):
        text += "." + part
    if draw(st.booleans()):
        text += draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
    for suffix in draw(st.lists(st.sampled_from(SUFFIXES), max_size=3)):
        text += "_" + suffix + draw(st.one_of(st.just(""), _number))
    if draw(st.integers(0, 4)) == 0:
        text += "~" + draw(st.from_regex(r"[0-9a-f]{1,12}", fullmatch=True))
    if draw(st.booleans()):
        text += "-r" + draw(_number)
    return text


names = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True)
prefixed_names = st.one_of(
    names,
    names.map(lambda n: "so:lib" + n + ".so.1"),
    names.map(lambda n: "cmd:" + n),
    names.map(lambda n: "pc:" + n),
    names.map(lambda n: "/usr/bin/" + n),
)
tags = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
operators = st.sampled_from(["<", "<=", "=", ">=", ">", "~", "<~", ">~"])
