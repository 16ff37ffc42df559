"""The read-only applets (info, search, list, policy, version, why) run as the real
``alpenglow`` console script against roots built in ``tmp_path``; outputs are exact."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.cli.query_roots import conformance_root, make_root, mini_root

Result = subprocess.CompletedProcess[str]


def apk(run_cli: Run, root: Path, *args: str) -> Result:
    return run_cli(
        "apk", "--root", str(root), "--allow-untrusted", "--no-cache", *args, cwd=root / "tmp"
    )


def check(result: Result, stdout: str, status: int = 0, stderr: str = "") -> None:
    assert result.stderr == stderr
    assert result.stdout == stdout
    assert result.returncode == status


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    """Installed a-1 and b-1; the repository has a-1, a-2, b-1, b-2 and two broken ones."""
    return conformance_root(
        tmp_path / "root", world=["a"], installed="basic.installed", repos=[("", "basic.repo")]
    )


@pytest.fixture
def pinned(tmp_path: Path) -> Path:
    """a, b, c 3 installed (a and c from @testing); version 2 untagged, 3 in @testing."""
    return conformance_root(
        tmp_path / "root",
        world=["a@testing"],
        installed="pinning.installed",
        repos=[("", "pinning-basic.repo"), ("testing", "pinning-overlay1.repo")],
    )


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    return mini_root(tmp_path / "root")


# --------------------------------------------------------------------------------------
# info


def test_info_lists_installed_packages(run_cli: Run, basic: Path) -> None:
    check(apk(run_cli, basic, "info"), "a\nb\n")
    check(apk(run_cli, basic, "-q", "info"), "a\nb\n")
    check(apk(run_cli, basic, "info", "-v"), "a-1\nb-1\n")
    check(apk(run_cli, basic, "info", "-vv"), "a-1 - \nb-1 - \n")


def test_info_default_sections_for_every_version(run_cli: Run, basic: Path) -> None:
    expected = "".join(
        f"a-{v} description:\n\n\na-{v} webpage:\n\n\na-{v} installed size:\n1 B\n\n"
        for v in ("1", "2")
    )
    check(apk(run_cli, basic, "info", "a"), expected)


def test_info_all_on_a_package_not_installed_is_partial(run_cli: Run, basic: Path) -> None:
    installed = (
        "b-1 description:\n\n\nb-1 webpage:\n\n\nb-1 installed size:\n1 B\n\n"
        "b-1 depends on:\n\nb-1 provides:\n\nb-1 is required by:\na-1\n\n"
        "b-1 contains:\n\nb-1 triggers:\n\nb-1 has auto-install rule:\n\n"
        "b-1 affects auto-installation of:\n\nb-1 replaces:\n\nb-1 license:\n\n\n"
    )
    available = (
        "b-2 description:\n\n\nb-2 webpage:\n\n\nb-2 installed size:\n1 B\n\n"
        "b-2 depends on:\n\nb-2 provides:\n\nb-2 has auto-install rule:\n\n"
        "b-2 license:\n\n\n"
    )
    check(apk(run_cli, basic, "info", "-a", "b"), installed + available, status=1)


def test_info_lists_at_each_verbosity(run_cli: Run, basic: Path) -> None:
    check(
        apk(run_cli, basic, "info", "-R", "-r", "b"),
        ("b-1 depends on:\n\nb-1 is required by:\na-1\n\nb-2 depends on:\n\n"),
    )
    check(apk(run_cli, basic, "info", "-R", "-q", "a"), "b\n\nb\n\n")
    check(
        apk(run_cli, basic, "info", "-Rr", "-vv", "a", "b"),
        ("a: b \na: \na: b \nb: \nb: a-1 \nb: \n"),
    )


def test_info_exists(run_cli: Run, basic: Path) -> None:
    check(apk(run_cli, basic, "info", "-e", "a", "c"), "a\n", status=1)
    check(apk(run_cli, basic, "info", "--installed", "-v", "b>=1", "a<1"), "b-1\n", status=1)
    check(apk(run_cli, basic, "info", "-e", "!c"), "")


def test_info_unknown_package_prints_nothing_and_fails(run_cli: Run, basic: Path) -> None:
    check(apk(run_cli, basic, "info", "nosuch", "versioned>1"), "", status=2)


def test_info_files_triggers_and_reverse_dependencies(run_cli: Run, mini: Path) -> None:
    expected = (
        "musl-1.2.5-r0 is required by:\nnginx-1.24.0-r0\npcre-8.45-r3\n\n"
        "musl-1.2.5-r0 contains:\nlib/ld-musl-x86_64.so.1\nlib/libc.musl-x86_64.so.1\n\n"
        "musl-1.2.5-r0 triggers:\n\n"
        "nginx-1.24.0-r0 is required by:\n\n"
        "nginx-1.24.0-r0 contains:\netc/nginx/nginx.conf\nusr/sbin/nginx\n\n"
        "nginx-1.24.0-r0 triggers:\n/usr/share/nginx/modules\n/etc/nginx\n\n"
    )
    check(apk(run_cli, mini, "info", "-L", "-t", "-r", "musl", "nginx"), expected)
    check(
        apk(run_cli, mini, "info", "-vv", "-L", "-t", "nginx-doc", "nginx"),
        (
            "nginx: etc/nginx/nginx.conf\nnginx: usr/sbin/nginx\n\n"
            "nginx: trigger /usr/share/nginx/modules\nnginx: trigger /etc/nginx\n\n"
            "nginx-doc: usr/share/man/man8/nginx.8.gz\n\n\n"
        ),
    )


def test_info_other_sections(run_cli: Run, mini: Path) -> None:
    check(
        apk(run_cli, mini, "info", "-P", "--replaces", "--license", "pcre"),
        (
            "pcre-8.45-r3 provides:\nso:libpcre.so.1=1.2.13\n\n"
            "pcre-8.45-r3 replaces:\nlibpcre\n\n"
            "pcre-8.45-r3 license:\nBSD-3-Clause\n\n"
        ),
    )
    check(
        apk(run_cli, mini, "info", "--install-if", "nginx-doc"),
        ("nginx-doc-1.24.0-r0 has auto-install rule:\ndocs\nnginx=1.24.0-r0\n\n"),
    )
    check(
        apk(run_cli, mini, "info", "--rinstall-if", "-d", "docs"),
        (
            "docs-0.2-r6 description:\nMeta package for pulling in all documentation\n\n"
            "docs-0.2-r6 affects auto-installation of:\nnginx-doc-1.24.0-r0\n\n"
        ),
    )
    check(
        apk(run_cli, mini, "info", "-s", "-w", "nginx"),
        (
            "nginx-1.24.0-r0 webpage:\nhttps://www.nginx.org/\n\n"
            "nginx-1.24.0-r0 installed size:\n1269 KiB\n\n"
            "nginx-1.26.2-r0 webpage:\nhttps://www.nginx.org/\n\n"
            "nginx-1.26.2-r0 installed size:\n1279 KiB\n\n"
            "nginx-1.27.0-r0 webpage:\nhttps://www.nginx.org/\n\n"
            "nginx-1.27.0-r0 installed size:\n1289 KiB\n\n"
        ),
    )


def test_info_by_provided_name(run_cli: Run, mini: Path) -> None:
    check(
        apk(run_cli, mini, "info", "-s", "so:libpcre.so.1"),
        ("pcre-8.45-r3 installed size:\n292 KiB\n\n"),
    )


def test_info_who_owns(run_cli: Run, mini: Path) -> None:
    result = apk(
        run_cli,
        mini,
        "info",
        "-W",
        "/usr/sbin/nginx",
        "usr",
        "lib/",
        "usr/bin/webserver",
        "/nope",
        "etc/nginx",
    )
    check(
        result,
        "/usr/sbin/nginx is owned by nginx-1.24.0-r0\n"
        "usr is owned by nginx-1.24.0-r0\n"
        "lib/ is owned by musl-1.2.5-r0\n"
        "usr/bin/webserver symlink target is owned by nginx-1.24.0-r0\n"
        "etc/nginx is owned by nginx-1.24.0-r0\n",
        status=1,
        stderr="ERROR: /nope: Could not find owner package\n",
    )
    check(
        apk(run_cli, mini, "-q", "info", "-W", "usr/lib/libpcre.so.1", "lib", "usr"),
        ("musl\nnginx\npcre\n"),
    )


def test_info_last_mode_option_wins(run_cli: Run, mini: Path) -> None:
    # apk resets -e/-W whenever another info option follows
    check(
        apk(run_cli, mini, "info", "-e", "-d", "docs"),
        ("docs-0.2-r6 description:\nMeta package for pulling in all documentation\n\n"),
    )


# --------------------------------------------------------------------------------------
# search


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["pcre"], "pcre-8.45-r3\npcre2-10.43-r0\n"),
        (["-q", "PCRE"], "pcre\npcre2\n"),
        (["-e", "nginx", "pcre*"], "nginx-1.27.0-r0\npcre-8.45-r3\npcre2-10.43-r0\n"),
        (["-d", "expression"], "pcre-8.45-r3\npcre2-10.43-r0\n"),
        (["-o", "nginx"], "nginx-1.27.0-r0\nnginx-1.24.0-r0\nnginx-1.26.2-r0\n"),
        (["-x", "so:libpcre.so.1"], "pcre-8.45-r3\n"),
        (["--installed", "ng"], "nginx-1.24.0-r0\nnginx-doc-1.24.0-r0\n"),
        (
            ["-v", "-a", "nginx"],
            "nginx-1.24.0-r0 - HTTP and reverse proxy server\n"
            "nginx-1.26.2-r0 - HTTP and reverse proxy server\n"
            "nginx-1.27.0-r0 - HTTP and reverse proxy server\n"
            "nginx-doc-1.24.0-r0 - HTTP and reverse proxy server (documentation)\n"
            "nginx-mod-http-geoip-1.26.2-r0 - HTTP GeoIP module for nginx\n",
        ),
        (
            ["--has-origin", "nginx"],
            "nginx-1.24.0-r0\nnginx-1.26.2-r0\nnginx-1.27.0-r0\nnginx-doc-1.24.0-r0\n"
            "nginx-mod-http-geoip-1.26.2-r0\n",
        ),
    ],
)
def test_search(run_cli: Run, mini: Path, args: list[str], expected: str) -> None:
    check(apk(run_cli, mini, "search", *args), expected)


def test_search_reverse_dependencies(run_cli: Run, mini: Path) -> None:
    check(
        apk(run_cli, mini, "search", "-r", "-e", "pcre"),
        ("pcre-8.45-r3 is required by:\nnginx-1.24.0-r0\nnginx-1.26.2-r0\nnginx-1.27.0-r0\n"),
    )


def test_search_exact_without_match_fails(run_cli: Run, mini: Path) -> None:
    check(apk(run_cli, mini, "search", "-e", "nosuch"), "", status=1)
    check(apk(run_cli, mini, "search", "nosuch"), "")


def test_search_ignores_the_installed_database(run_cli: Run, basic: Path) -> None:
    (basic / "lib/apk/db/installed").write_text("this is not a database\n")
    check(apk(run_cli, basic, "search", "-q", "a"), "a\nbadarch\n")


# --------------------------------------------------------------------------------------
# list


MINI_LIST = (
    "docs-0.2-r6 x86_64 {docs} (MIT) [installed]\n"
    "musl-1.2.5-r0 x86_64 {musl} (MIT) [installed]\n"
    "nginx-1.24.0-r0 x86_64 {nginx} (BSD-2-Clause) [installed]\n"
    "nginx-1.26.2-r0 x86_64 {nginx} (BSD-2-Clause) [upgradable from: nginx-1.24.0-r0]\n"
    "nginx-1.27.0-r0 x86_64 {nginx} (BSD-2-Clause)\n"
    "nginx-doc-1.24.0-r0 x86_64 {nginx} (BSD-2-Clause) [installed]\n"
    "nginx-mod-http-geoip-1.26.2-r0 x86_64 {nginx} (BSD-2-Clause)\n"
    "pcre-8.45-r3 x86_64 {pcre} (BSD-3-Clause) [installed]\n"
    "pcre2-10.43-r0 x86_64 {pcre2} (BSD-3-Clause)\n"
)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], MINI_LIST),
        (
            ["-I"],
            "".join(line + "\n" for line in MINI_LIST.splitlines() if "[installed]" in line),
        ),
        (
            ["-u"],
            "nginx-1.26.2-r0 x86_64 {nginx} (BSD-2-Clause) [upgradable from: nginx-1.24.0-r0]\n",
        ),
        (
            ["-v", "pcre*"],
            "pcre-8.45-r3 x86_64 {pcre} (BSD-3-Clause) [installed]\n"
            "  Perl-compatible regular expression library\n\n"
            "pcre2-10.43-r0 x86_64 {pcre2} (BSD-3-Clause)\n"
            "  Perl-compatible regular expression library (v2)\n\n",
        ),
        (
            ["-vv", "-o", "pcre"],
            "pcre-8.45-r3 x86_64 {pcre} (BSD-3-Clause) [installed]\n"
            "  Perl-compatible regular expression library\n"
            "  <https://pcre.org>\n\n",
        ),
        (
            ["-P", "cmd:nginx"],
            "<cmd:nginx> nginx-1.24.0-r0 x86_64 {nginx} (BSD-2-Clause) [installed]\n"
            "<cmd:nginx> nginx-1.26.2-r0 x86_64 {nginx} (BSD-2-Clause)"
            " [upgradable from: nginx-1.24.0-r0]\n"
            "<cmd:nginx> nginx-1.27.0-r0 x86_64 {nginx} (BSD-2-Clause)\n",
        ),
        (["-d", "-q", "so:libpcre.so.1"], "nginx\nnginx\nnginx\n"),
        (
            ["--manifest"],
            "docs 0.2-r6\nmusl 1.2.5-r0\nnginx 1.24.0-r0\nnginx-doc 1.24.0-r0\npcre 8.45-r3\n",
        ),
        (["-O"], ""),
        (
            ["-a", "-q"],
            "docs\nmusl\nnginx\nnginx\nnginx\nnginx-doc\nnginx-mod-http-geoip\npcre\npcre2\n",
        ),
        (["--from", "installed", "-q", "*NG*"], "nginx\nnginx-doc\n"),
        (["--from", "none", "-q"], ""),
        (["-q", "nosuch", "musl"], "musl\n"),
    ],
)
def test_list(run_cli: Run, mini: Path, args: list[str], expected: str) -> None:
    check(apk(run_cli, mini, "list", *args), expected)


def test_list_orphaned(run_cli: Run, basic: Path) -> None:
    # b-1 is installed and listed by the repository; remove the repository: both orphaned
    (basic / "etc/apk/repositories").write_text("")
    check(apk(run_cli, basic, "list", "-O"), "a-1  {} () [installed]\nb-1  {} () [installed]\n")


def test_list_bad_source(run_cli: Run, mini: Path) -> None:
    result = apk(run_cli, mini, "list", "--from", "elsewhere")
    check(result, "", 2, "ERROR: invalid argument for option '--from': 'elsewhere'\n")


# --------------------------------------------------------------------------------------
# policy


def test_policy_with_pinning(run_cli: Run, pinned: Path) -> None:
    basic_url = f"test://{pinned}/tmp/repo0.tar.gz"
    testing_url = f"test://{pinned}/tmp/repo1.tar.gz"
    expected = (
        f"a policy:\n  2:\n    {basic_url}\n"
        f"  3:\n    lib/apk/db/installed\n    @testing {testing_url}\n"
        f"samever policy:\n  10:\n    {basic_url}\n  10:\n    @testing {testing_url}\n"
    )
    check(apk(run_cli, pinned, "policy", "a", "samever", "nosuch"), expected)


def test_policy_glob(run_cli: Run, mini: Path) -> None:
    main = f"test://{mini}/tmp/repo0.tar.gz"
    edge = f"test://{mini}/tmp/repo1.tar.gz"
    check(
        apk(run_cli, mini, "policy", "nginx", "pcre*"),
        (
            f"nginx policy:\n  1.24.0-r0:\n    lib/apk/db/installed\n    {main}\n"
            f"  1.26.2-r0:\n    {main}\n  1.27.0-r0:\n    @edge {edge}\n"
            f"pcre policy:\n  8.45-r3:\n    lib/apk/db/installed\n    {main}\n"
            f"pcre2 policy:\n  10.43-r0:\n    {main}\n"
        ),
    )


# --------------------------------------------------------------------------------------
# version

HEADER = "Installed:                                Available:\n"


def test_version_lists_upgradable_by_default(run_cli: Run, mini: Path) -> None:
    check(apk(run_cli, mini, "version"), HEADER + f"{'nginx-1.24.0-r0':<39} < 1.26.2-r0 \n")
    check(
        apk(run_cli, mini, "version", "-a"),
        (HEADER + f"{'nginx-1.24.0-r0':<39} < 1.27.0-r0 @edge\n"),
    )
    # apk limits to "<" only at the default verbosity: -q lists every installed name
    check(apk(run_cli, mini, "version", "-q"), "docs\nmusl\nnginx\nnginx-doc\npcre\n")


def test_version_verbose_lists_everything(run_cli: Run, mini: Path) -> None:
    rows = [
        ("docs-0.2-r6", "=", "0.2-r6"),
        ("musl-1.2.5-r0", "=", "1.2.5-r0"),
        ("nginx-1.24.0-r0", "<", "1.26.2-r0"),
        ("nginx-doc-1.24.0-r0", "=", "1.24.0-r0"),
        ("pcre-8.45-r3", "=", "8.45-r3"),
    ]
    expected = HEADER + "".join(f"{a:<39} {op} {b} \n" for a, op, b in rows)
    check(apk(run_cli, mini, "version", "-v"), expected)
    check(
        apk(run_cli, mini, "version", "-l", "=", "nginx", "musl", "nosuch"),
        (HEADER + f"{'musl-1.2.5-r0':<39} = 1.2.5-r0 \n"),
    )
    check(apk(run_cli, mini, "-q", "version", "-l", "<="), "docs\nmusl\nnginx\nnginx-doc\npcre\n")


def test_version_tags(run_cli: Run, pinned: Path) -> None:
    check(
        apk(run_cli, pinned, "version", "-v"),
        (
            HEADER
            + f"{'a-3':<39} = 3 @testing\n"
            + f"{'b-3':<39} = 3 \n"
            + f"{'c-3':<39} = 3 @testing\n"
        ),
    )


def test_version_indexes(run_cli: Run, mini: Path) -> None:
    check(
        apk(run_cli, mini, "version", "-I"),
        (
            f"v3.21.0-1-gdeadbeef [test://{mini}/tmp/repo0.tar.gz]\n"
            f"v3.21.0-1-gdeadbeef [test://{mini}/tmp/repo1.tar.gz]\n"
        ),
    )


def test_version_width_follows_the_longest_name(run_cli: Run, tmp_path: Path) -> None:
    name = "a-package-with-a-rather-long-name-for-columns"
    stanza = f"C:Q1AQEBAQEBAQEBAQEBAQEBAQEBAQE=\nP:{name}\nV:1.0-r0\n\n"
    newer = f"C:Q1AgICAgICAgICAgICAgICAgICAgI=\nP:{name}\nV:1.1-r0\n\n"
    root = make_root(tmp_path / "root", installed=stanza, repos=[("", stanza + newer)])
    width = len(name) + len("-1.0-r0")
    check(
        apk(run_cli, root, "version"),
        (f"{'Installed:':<{width}}   Available:\n{name}-1.0-r0 < 1.1-r0 \n"),
    )


# --------------------------------------------------------------------------------------
# why


def test_why_chains(run_cli: Run, mini: Path) -> None:
    check(
        apk(run_cli, mini, "why", "nginx", "pcre", "musl", "nginx-doc", "docs"),
        (
            "nginx <- world[nginx]\n"
            "pcre <- nginx[so:libpcre.so.1] <- world[nginx]\n"
            "musl <- nginx[so:libc.musl-x86_64.so.1] <- world[nginx]\n"
            "musl <- pcre[so:libc.musl-x86_64.so.1] <- nginx[so:libpcre.so.1] <- world[nginx]\n"
            "nginx-doc <- install_if[docs nginx=1.24.0-r0]\n"
            "docs <- world[docs]\n"
        ),
    )
    check(
        apk(run_cli, mini, "why", "-v", "so:libpcre.so.1"),
        ("pcre-8.45-r3 <- nginx-1.24.0-r0[so:libpcre.so.1] <- world[nginx]\n"),
    )


def test_why_install_if_does_not_loop(run_cli: Run, tmp_path: Path) -> None:
    root = conformance_root(
        tmp_path / "root", world=["app", "foo"], installed="installif1.installed"
    )
    check(
        apk(run_cli, root, "why", "app", "appiif1", "lib"),
        ("app <- world[app]\nappiif1 <- install_if[app foo]\nlib <- app[lib] <- world[app]\n"),
    )


def test_why_orphans_and_unknown(run_cli: Run, basic: Path) -> None:
    (basic / "etc/apk/world").write_text("")
    result = apk(run_cli, basic, "why", "a", "b", "c")
    check(
        result,
        "a is installed, but nothing in the world requires it\n"
        "b <- a[b] (a is not required by world)\n",
        status=1,
        stderr="ERROR: c: not installed\n",
    )


# --------------------------------------------------------------------------------------
# bad roots


def test_missing_root(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("apk", "--root", str(tmp_path / "nope"), "info")
    check(
        result,
        "",
        1,
        f"ERROR: Unable to open root: {tmp_path / 'nope'}: No such file or directory\n",
    )


def test_missing_world(run_cli: Run, basic: Path) -> None:
    (basic / "etc/apk/world").unlink()
    check(
        apk(run_cli, basic, "list"),
        "",
        1,
        f"ERROR: Unable to read database: {basic}/etc/apk/world: No such file or directory\n",
    )


@pytest.mark.parametrize("applet", ["info", "list", "policy", "version", "why"])
def test_corrupt_installed_database(run_cli: Run, basic: Path, applet: str) -> None:
    (basic / "lib/apk/db/installed").write_text("C:Q1EyN5AdpAOBJWKMR89pp/C66o+OE=\nP:a\nnonsense\n")
    args = [applet, "a"] if applet in ("policy", "why") else [applet]
    result = apk(run_cli, basic, *args)
    db = basic / "lib/apk/db/installed"
    check(result, "", 1, f"ERROR: {db}: line 3: expected 'X:value', got 'nonsense'\n")


def test_package_without_identity(run_cli: Run, basic: Path) -> None:
    (basic / "lib/apk/db/installed").write_text("P:a\nV:1\n\n")
    db = basic / "lib/apk/db/installed"
    check(
        apk(run_cli, basic, "info"), "", 1, f"ERROR: {db}: package 'a' has no valid C: identity\n"
    )


def test_unreadable_repository_is_a_warning(run_cli: Run, basic: Path) -> None:
    index = basic / "tmp/repo0.tar.gz"
    index.unlink()
    result = apk(run_cli, basic, "search", "a")
    check(result, "", 0, f"WARNING: fetching test://{index}: No such file or directory\n")
    result = run_cli("apk", "--root", str(basic), "--allow-untrusted", "policy", "a")
    check(
        result,
        "a policy:\n  1:\n    lib/apk/db/installed\n",
        0,
        f"WARNING: opening from cache test://{index}: No such file or directory\n",
    )
