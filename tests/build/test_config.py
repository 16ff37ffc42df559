"""Loading apko-style image configurations: values, merging, and one-line errors."""

from __future__ import annotations

import base64
import hashlib
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alpenglow.build import config as config_module
from alpenglow.build.config import (
    PATH_TYPES,
    Accounts,
    BuildConfig,
    ConfigError,
    FileSpec,
    Group,
    PathSpec,
    User,
    load_config,
    normalize_arch,
)
from alpenglow.errors import AlpenglowError
from alpenglow.oci.platform import ALL_ARCHES


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(tmp_path: Path, text: str, name: str = "apko.yaml") -> BuildConfig:
    return load_config(write(tmp_path, name, text))


def error(tmp_path: Path, text: str, name: str = "apko.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, name)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- good configurations ---------------------------------------------------------------------

NGINX = """
contents:
  repositories:
    - https://dl-cdn.alpinelinux.org/alpine/v3.22/main
  packages:
    - alpine-baselayout
    - nginx

entrypoint:
  command: /usr/sbin/nginx -c /etc/nginx/nginx.conf -g "daemon off;"

stop-signal: SIGQUIT

work-dir: /usr/share/nginx

accounts:
  groups:
    - groupname: nginx
      gid: 10000
  users:
    - username: nginx
      uid: 10000
      shell: /bin/sh
  run-as: nginx

# optional environment configuration
environment:
  PATH: /usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin

# optional path mutations
paths:
  - path: /run/nginx
    type: directory
    uid: 10000
    gid: 10000
    permissions: 0o755
  - path: /etc/nginx/http.d/default.conf
    type: hardlink
    source: /usr/share/nginx/http-default_server.conf
    uid: 10000
    gid: 10000
    permissions: 0o644

archs:
 - amd64
 - 386

annotations:
  foo: bar
  bar: baz

layering:
  strategy: origin
  budget: 10
"""


def test_apko_complete_example(tmp_path: Path) -> None:
    cfg = load(tmp_path, NGINX)
    assert cfg.source == tmp_path / "apko.yaml"
    assert cfg.repositories == ("https://dl-cdn.alpinelinux.org/alpine/v3.22/main",)
    assert cfg.packages == ("alpine-baselayout", "nginx")
    assert cfg.entrypoint == (
        "/usr/sbin/nginx",
        "-c",
        "/etc/nginx/nginx.conf",
        "-g",
        "daemon off;",
    )
    assert cfg.cmd is None
    assert cfg.stop_signal == "SIGQUIT"
    assert cfg.work_dir == "/usr/share/nginx"
    assert cfg.accounts == Accounts(
        groups=(Group("nginx", 10000),),
        users=(User("nginx", 10000, 10000, "/bin/sh", "/home/nginx"),),
        run_as="nginx",
    )
    assert cfg.environment == (
        ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin"),
    )
    assert cfg.paths == (
        PathSpec("/run/nginx", "directory", 10000, 10000, 0o755),
        PathSpec(
            "/etc/nginx/http.d/default.conf",
            "hardlink",
            10000,
            10000,
            0o644,
            source="/usr/share/nginx/http-default_server.conf",
        ),
    )
    lines = NGINX.lstrip("\n").splitlines()
    run_nginx = lines.index("  - path: /run/nginx") + 1
    user = lines.index("    - username: nginx") + 1
    assert cfg.paths[0].where == f"{tmp_path / 'apko.yaml'}:{run_nginx}: paths[0]"
    assert cfg.accounts.users[0].where == f"{tmp_path / 'apko.yaml'}:{user}: accounts.users[0]"
    assert cfg.archs == ("x86_64", "x86")
    assert cfg.annotations == (("foo", "bar"), ("bar", "baz"))
    data = (tmp_path / "apko.yaml").read_bytes()
    assert cfg.checksum == "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert cfg.includes == ()


WOLFI = """
contents:
  keyring:
    - https://packages.wolfi.dev/os/wolfi-signing.rsa.pub
  repositories:
    - https://packages.wolfi.dev/os
  packages:
    - wolfi-base

entrypoint:
  command: /bin/sh -l

archs:
- x86_64
- aarch64

accounts:
  groups:
    - groupname: nonroot
      gid: 65532
  users:
    - username: nonroot
      uid: 65532
  run-as: 65532
"""


def test_wolfi_base_example(tmp_path: Path) -> None:
    cfg = load(tmp_path, WOLFI)
    assert cfg.keyring == ("https://packages.wolfi.dev/os/wolfi-signing.rsa.pub",)
    assert cfg.entrypoint == ("/bin/sh", "-l")
    assert cfg.archs == ("x86_64", "aarch64")
    assert cfg.accounts.run_as == "65532"
    assert cfg.accounts.users == (User("nonroot", 65532, 65532, "/bin/sh", "/home/nonroot"),)


def test_every_key(tmp_path: Path) -> None:
    write(tmp_path, "keys/me.rsa.pub", "-----BEGIN PUBLIC KEY-----\n")
    write(tmp_path, "local/motd", "hello\n")
    cfg = load(
        tmp_path,
        """
        contents:
          repositories:
            - https://dl-cdn.alpinelinux.org/alpine/v3.22/main/
            - "@testing https://dl-cdn.alpinelinux.org/alpine/edge/testing"
            - ./packages
            - "@local ../elsewhere/repo"
          build_repositories:
            - file:///srv/build-only
          runtime_repositories:
            - https://mirror.example/alpine/v3.22/community
          keyring:
            - keys/me.rsa.pub
            - https://example.org/key.rsa.pub
          packages:
            - busybox>=1.36
            - musl=1.2.5-r0
            - mytool@testing
            - ssl_client~1.36
            - libc-utils><Q1aGVsbG8gd29ybGQgaGVsbG8gd29y
            - so:libc.musl-x86_64.so.1
            - "!doas"
        entrypoint:
          command: [/bin/busybox, sh, -c, "echo hi"]
        cmd: --verbose "a b"
        stop-signal: "15"
        work-dir: /srv//app/
        accounts:
          groups:
            - groupname: app
              gid: 1000
              members: [app, web]
          users:
            - username: app
              uid: 1000
              gid: 0
              shell: /sbin/nologin
              homedir: /var/lib/app
          run-as: "app:app"
        environment:
          FOO: 1
          EMPTY:
          QUOTED: "a: b"
        paths:
          - {path: /data, type: directory, permissions: 0o2775, recursive: true}
          - {path: /etc/x, type: empty-file, permissions: "0640"}
          - {path: /bin/x, type: symlink, source: ../usr/bin/y}
          - {path: /etc/ro, type: permissions, permissions: 420, uid: 1000}
        files:
          - source: local/motd
            destination: /etc/motd
            mode: 0o600
          - source: local/
            destination: /opt/local/
            uid: 1000
            gid: 1000
        archs: [x86_64, aarch64, arm/v6, arm/v7, amd64]
        annotations:
          org.opencontainers.image.title: demo
        volumes: [/data]
        vcs-url: https://example.org/repo
        base: registry.example/base:3.22
        """,
    )
    assert cfg.repositories == (
        "https://dl-cdn.alpinelinux.org/alpine/v3.22/main",
        "@testing https://dl-cdn.alpinelinux.org/alpine/edge/testing",
        str(tmp_path / "packages"),
        f"@local {tmp_path / '../elsewhere/repo'}",
    )
    assert cfg.build_repositories == ("file:///srv/build-only",)
    assert cfg.runtime_repositories == ("https://mirror.example/alpine/v3.22/community",)
    assert cfg.keyring == (str(tmp_path / "keys/me.rsa.pub"), "https://example.org/key.rsa.pub")
    assert cfg.packages[2] == "mytool@testing"
    assert cfg.packages[-1] == "!doas"
    assert cfg.entrypoint == ("/bin/busybox", "sh", "-c", "echo hi")
    assert cfg.cmd == ("--verbose", "a b")
    assert cfg.stop_signal == "15"
    assert cfg.work_dir == "/srv/app"
    assert cfg.accounts.groups == (Group("app", 1000, ("app", "web")),)
    assert cfg.accounts.users == (User("app", 1000, 0, "/sbin/nologin", "/var/lib/app"),)
    assert cfg.accounts.run_as == "app:app"
    assert cfg.environment == (("FOO", "1"), ("EMPTY", ""), ("QUOTED", "a: b"))
    assert cfg.paths == (
        PathSpec("/data", "directory", permissions=0o2775, recursive=True),
        PathSpec("/etc/x", "empty-file", permissions=0o640),
        PathSpec("/bin/x", "symlink", source="../usr/bin/y"),
        PathSpec("/etc/ro", "permissions", uid=1000, permissions=0o644),
    )
    assert cfg.files == (
        FileSpec(tmp_path / "local/motd", "/etc/motd", mode=0o600),
        FileSpec(tmp_path / "local", "/opt/local/", 1000, 1000),
    )
    assert cfg.archs == ("x86_64", "aarch64", "armhf", "armv7")
    assert cfg.annotations == (("org.opencontainers.image.title", "demo"),)
    assert cfg.volumes == ("/data",)
    assert cfg.vcs_url == "https://example.org/repo"
    assert cfg.base == "registry.example/base:3.22"


def test_shell_fragment_and_all_archs(tmp_path: Path) -> None:
    cfg = load(tmp_path, "entrypoint:\n  shell-fragment: exec nginx\narchs: [all]\n")
    assert cfg.entrypoint == ("/bin/sh", "-c", "exec nginx")
    assert cfg.archs == ALL_ARCHES


def test_empty_file_is_an_empty_configuration(tmp_path: Path) -> None:
    cfg = load(tmp_path, "# nothing yet\n")
    assert cfg == BuildConfig(source=cfg.source, checksum=cfg.checksum)
    assert cfg.cmd is None
    assert cfg.entrypoint == ()
    assert cfg.accounts == Accounts()


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        """
        paths:
          - &dir {path: /a, type: directory, uid: 100, gid: 101}
          - {<<: *dir, path: /b}
        """,
    )
    assert [p.path for p in cfg.paths] == ["/a", "/b"]
    assert cfg.paths[1] == PathSpec("/b", "directory", 100, 101)


def test_user_defaults_follow_apko(tmp_path: Path) -> None:
    cfg = load(tmp_path, "accounts:\n  users:\n    - {username: svc, uid: 1234}\n")
    assert cfg.accounts.users == (User("svc", 1234, 1234, "/bin/sh", "/home/svc"),)
    assert cfg.accounts.run_as is None


def test_modes(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        """
        paths:
          - {path: /a, type: permissions, permissions: 0o755}
          - {path: /a, type: permissions, permissions: 0755}
          - {path: /a, type: permissions, permissions: 493}
          - {path: /a, type: permissions, permissions: "755"}
          - {path: /a, type: permissions, permissions: 0o4755}
          - {path: /a, type: permissions, permissions: 0}
        """,
    )
    assert [p.permissions for p in cfg.paths] == [0o755, 0o755, 0o755, 0o755, 0o4755, 0]


@given(st.integers(min_value=0, max_value=0o7777))
def test_any_octal_mode_reads_back(mode: int) -> None:
    from yaml import SafeLoader, compose

    for text in (f"0o{mode:o}", f"0{mode:o}", f'"{mode:o}"'):
        node = compose(text, Loader=SafeLoader)
        assert node is not None
        assert config_module._Reader("t.yaml", Path("/")).mode(node, "k") == mode


def test_arch_aliases_are_alpine_arches() -> None:
    assert set(config_module._ARCH_ALIASES.values()) <= set(ALL_ARCHES)
    assert normalize_arch("AMD64") == "x86_64"
    assert normalize_arch("arm/v6") == "armhf"
    assert normalize_arch("loong64") == "loongarch64"
    assert normalize_arch("sparc") is None


def test_path_types_are_apkos() -> None:
    assert PATH_TYPES == ("directory", "empty-file", "hardlink", "symlink", "permissions")


# -- include ---------------------------------------------------------------------------------


def test_include_merges_like_apko(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base/base.yaml",
        """
        contents:
          repositories: [https://repo.example/main, ./local]
          keyring: [https://repo.example/key.rsa.pub]
          packages: [busybox, musl]
        entrypoint:
          command: /bin/sh
        cmd: -l
        stop-signal: TERM
        work-dir: /base
        environment: {PATH: /bin, LANG: C}
        annotations: {a: base, b: base}
        accounts:
          groups: [{groupname: base, gid: 500}]
          users: [{username: base, uid: 500}, {username: shared, uid: 600}]
          run-as: base
        paths: [{path: /from-base, type: directory}]
        archs: [x86_64]
        volumes: [/v1]
        base: base-image:1
        """,
    )
    top = write(
        tmp_path,
        "apko.yaml",
        """
        include: base/base.yaml
        contents:
          repositories: [https://repo.example/main, https://repo.example/community]
          packages: [curl, busybox]
        cmd: -c true
        environment: {LANG: C.UTF-8, TZ: UTC}
        annotations: {b: top}
        accounts:
          users: [{username: shared, uid: 601}, {username: top, uid: 700}]
        paths: [{path: /from-top, type: directory}]
        volumes: [/v2]
        """,
    )
    cfg = load_config(top)
    assert cfg.repositories == (
        "https://repo.example/main",
        str(tmp_path / "base" / "local"),  # relative to the included file
        "https://repo.example/community",
    )
    assert cfg.keyring == ("https://repo.example/key.rsa.pub",)
    assert cfg.packages == ("busybox", "musl", "curl")
    assert cfg.entrypoint == ("/bin/sh",)  # the top file sets none
    assert cfg.cmd == ("-c", "true")  # the top file's wins
    assert cfg.stop_signal == "SIGTERM"
    assert cfg.work_dir == "/base"
    assert cfg.environment == (("PATH", "/bin"), ("LANG", "C.UTF-8"), ("TZ", "UTC"))
    assert cfg.annotations == (("a", "base"), ("b", "top"))
    assert cfg.accounts.groups == (Group("base", 500),)
    assert [(u.username, u.uid) for u in cfg.accounts.users] == [
        ("base", 500),
        ("shared", 601),
        ("top", 700),
    ]
    assert cfg.accounts.run_as == "base"
    assert [p.path for p in cfg.paths] == ["/from-base", "/from-top"]
    assert cfg.paths[0].where.startswith(f"{tmp_path / 'base/base.yaml'}:")
    assert cfg.archs == ("x86_64",)
    assert cfg.volumes == ("/v1", "/v2")
    assert cfg.base == "base-image:1"
    assert cfg.includes == (tmp_path / "base/base.yaml",)
    both = top.read_bytes() + (tmp_path / "base/base.yaml").read_bytes()
    assert cfg.checksum == "sha256-" + base64.b64encode(hashlib.sha256(both).digest()).decode()


def test_nested_includes(tmp_path: Path) -> None:
    write(tmp_path, "c.yaml", "contents: {packages: [c]}\n")
    write(tmp_path, "b.yaml", "include: c.yaml\ncontents: {packages: [b]}\n")
    cfg = load(tmp_path, "include: b.yaml\ncontents: {packages: [a]}\n")
    assert cfg.packages == ("c", "b", "a")
    assert cfg.includes == (tmp_path / "b.yaml", tmp_path / "c.yaml")


# -- errors: one line, the file, the line, the key path --------------------------------------

ERRORS = [
    # (configuration, line, key path, problem pattern)
    ("contents:\n  packages: [a\n", 3, None, r"invalid YAML: .*"),
    ("a: b\n  c: d\n", 2, None, r"invalid YAML: mapping values are not allowed here"),
    ("contents: [a]\n", 1, "contents", r"expected a mapping, got a list"),
    ("- a\n", 1, "\\(top level\\)", r"expected a mapping, got a list"),
    ("contents:\n  packages: busybox\n", 2, "contents.packages", r"expected a list, got a string"),
    (
        "contents:\n  pakages: [a]\n",
        2,
        "contents.pakages",
        r"unknown key \(did you mean 'packages'\?\)",
    ),
    ("entrypont:\n  command: sh\n", 1, "entrypont", r"unknown key \(did you mean 'entrypoint'\?\)"),
    ("frobnicate: 1\n", 1, "frobnicate", r"unknown key$"),
    ("archs: [x86_64]\narchs: [aarch64]\n", 2, "archs", r"repeated key \(first at line 1\)"),
    (
        "contents:\n  packages:\n    - busybox\n    - foo=1..2\n",
        4,
        r"contents\.packages\[1\]",
        r"'foo=1\.\.2' is not a package atom: invalid version .*\(column \d+\)",
    ),
    (
        "contents:\n  packages:\n    - 'busybox musl'\n",
        3,
        r"contents\.packages\[0\]",
        r"is not a package atom: invalid character ' ' in name \(column 8\)",
    ),
    (
        "contents:\n  packages: [[a]]\n",
        2,
        r"contents\.packages\[0\]",
        r"expected a string, got a list",
    ),
    (
        "contents:\n  repositories: ['@ http://x']\n",
        2,
        r"contents\.repositories\[0\]",
        r"tagged repository",
    ),
    (
        "contents:\n  repositories: [ftp://x/y]\n",
        2,
        r"contents\.repositories\[0\]",
        r"only http, https and file URLs",
    ),
    ("contents:\n  keyring: [missing.pub]\n", 2, r"contents\.keyring\[0\]", r"no such key file"),
    (
        "contents:\n  baseimage: {image: x}\n",
        2,
        r"contents\.baseimage",
        r"not supported; use the top-level base:",
    ),
    ("os-release:\n  name: x\n", 1, "os-release", r"not supported"),
    ("entrypoint:\n  command: 'sh -c \"x'\n", 2, r"entrypoint\.command", r"cannot split"),
    (
        "entrypoint:\n  type: service-bundle\n  services: {a: b}\n",
        2,
        r"entrypoint\.type",
        r"not supported",
    ),
    (
        "entrypoint:\n  command: a\n  shell-fragment: b\n",
        2,
        "entrypoint",
        r"either command or shell-fragment",
    ),
    ("stop-signal: SIGTREM\n", 1, "stop-signal", r"not a signal name .*did you mean SIGTERM"),
    ("stop-signal: 99\n", 1, "stop-signal", r"not a signal number"),
    ("work-dir: app\n", 1, "work-dir", r"must be an absolute path"),
    ("archs: [x86_64, sparc]\n", 1, r"archs\[1\]", r"unknown architecture 'sparc'"),
    ("environment: [A=b]\n", 1, "environment", r"expected a mapping, got a list"),
    ("environment:\n  A=B: x\n", 2, r"environment\.A=B", r"not a usable name"),
    ("environment:\n  A: [x]\n", 2, r"environment\.A", r"expected a string, got a list"),
    (
        "accounts:\n  users:\n    - username: a\n      uid: '1000'\n",
        4,
        r"accounts\.users\[0\]\.uid",
        r"expected a whole number, got a string",
    ),
    (
        "accounts:\n  users:\n    - username: a\n      uid: 0\n",
        4,
        r"accounts\.users\[0\]\.uid",
        r"uid 0 is root",
    ),
    (
        "accounts:\n  users:\n    - uid: 5\n",
        3,
        r"accounts\.users\[0\]",
        r"needs a username",
    ),
    (
        "accounts:\n  users:\n    - {username: a, uid: 4294967296}\n",
        3,
        r"accounts\.users\[0\]\.uid",
        r"out of range",
    ),
    (
        "accounts:\n  users:\n    - {username: 'a:b', uid: 5}\n",
        3,
        r"accounts\.users\[0\]\.username",
        r"not a usable account name",
    ),
    (
        "accounts:\n  groups:\n    - {groupname: g}\n",
        3,
        r"accounts\.groups\[0\]",
        r"needs a gid",
    ),
    (
        "accounts:\n  users: [{username: a, uid: 5}]\n\n  run-as: nginx\n",
        4,
        r"accounts\.run-as",
        r"'nginx' is not a user declared under accounts\.users",
    ),
    (
        "accounts:\n  users: [{username: a, uid: 5}]\n  run-as: a:nogroup\n",
        3,
        r"accounts\.run-as",
        r"group 'nogroup' is not declared",
    ),
    ("paths:\n  - {path: /a, type: dir}\n", 2, r"paths\[0\]\.type", r"unknown type 'dir'"),
    ("paths:\n  - {type: directory}\n", 2, r"paths\[0\]", r"needs path:"),
    (
        "paths:\n  - path: /a\n    type: directory\n    permissions: 755\n",
        4,
        r"paths\[0\]\.permissions",
        r"755 is read as a decimal number \(0o1363\); write 0o755",
    ),
    (
        "paths:\n  - {path: /a, type: directory, permissions: 0o17777}\n",
        2,
        r"paths\[0\]\.permissions",
        r"not a permission mode",
    ),
    (
        "paths:\n  - {path: /a, type: directory, permissions: rwx}\n",
        2,
        r"paths\[0\]\.permissions",
        r"not an octal mode",
    ),
    (
        "paths:\n  - {path: /a, type: directory, permissions: 0o755, recursive: yes please}\n",
        2,
        r"paths\[0\]\.recursive",
        r"expected true or false",
    ),
    (
        "paths:\n  - {path: /etc/../../x, type: directory}\n",
        2,
        r"paths\[0\]\.path",
        r"'\.\.' is not allowed",
    ),
    ("paths:\n  - {path: /a, type: symlink}\n", 2, r"paths\[0\]", r"needs a source"),
    (
        "paths:\n  - {path: /a, type: hardlink, source: ../b}\n",
        2,
        r"paths\[0\]\.source",
        r"'\.\.' is not allowed",
    ),
    (
        "paths:\n  - {path: /a, type: empty-file, source: /b}\n",
        2,
        r"paths\[0\]\.source",
        r"only used by hardlink and symlink",
    ),
    (
        "paths:\n  - {path: /a, type: empty-file, recursive: true}\n",
        2,
        r"paths\[0\]\.recursive",
        r"applies to directory and permissions",
    ),
    ("paths:\n  - {path: /a, type: permissions}\n", 2, r"paths\[0\]", r"needs permissions:"),
    (
        "files:\n  - {source: nowhere, destination: /x}\n",
        2,
        r"files\[0\]\.source",
        r"nowhere: no such file or directory",
    ),
    (
        "files:\n  - {source: apko.yaml, destination: /etc/../../x}\n",
        2,
        r"files\[0\]\.destination",
        r"'\.\.' is not allowed",
    ),
    (
        "files:\n  - {source: apko.yaml, destination: /x, owner: root}\n",
        2,
        r"files\[0\]\.owner",
        r"unknown key",
    ),
    ("include: missing.yaml\n", 1, "include", r"missing\.yaml: No such file or directory"),
    ("volumes: [/a/../..]\n", 1, r"volumes\[0\]", r"'\.\.' is not allowed"),
    ("base: 'a b'\n", 1, "base", r"not an image reference"),
    (
        "layering: {strategy: random}\n",
        1,
        r"layering\.strategy",
        r"unknown strategy",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "problem"), ERRORS)
def test_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str | None, problem: str
) -> None:
    message = error(tmp_path, text)
    file = re.escape(str(tmp_path / "apko.yaml"))
    prefix = f"{file}:{line}: " + (f"{key}: " if key else "")
    head = re.match(prefix, message)
    assert head is not None, message
    assert re.search(problem, message[head.end() :]), message


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path, "inc/base.yaml", "contents:\n  packages:\n    - ok\n    - 'bad name'\n")
    message = error(tmp_path, "include: inc/base.yaml\n")
    assert message.startswith(f"{tmp_path / 'inc/base.yaml'}:4: contents.packages[1]: ")


def test_include_cycle(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "include: c.yaml\n")
    write(tmp_path, "c.yaml", "# c\n\ninclude: apko.yaml\n")
    message = error(tmp_path, "include: b.yaml\n")
    chain = "apko.yaml -> b.yaml -> c.yaml -> apko.yaml"
    assert message == f"{tmp_path / 'c.yaml'}:3: include: include cycle: {chain}"


def test_include_of_itself(tmp_path: Path) -> None:
    message = error(tmp_path, "include: ./apko.yaml\n")
    assert message.endswith("include: include cycle: apko.yaml -> apko.yaml")


def test_missing_configuration_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read the configuration: No such"):
        load_config(tmp_path / "nope.yaml")


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "apko.yaml").write_bytes(b"archs: [x86_64]\nenvironment:\n  A: \xff\n")
    with pytest.raises(ConfigError, match=r"apko\.yaml:3: the file is not UTF-8 text"):
        load_config(tmp_path / "apko.yaml")


def test_config_error_is_an_alpenglow_error() -> None:
    assert issubclass(ConfigError, AlpenglowError)


def test_exports() -> None:
    assert set(dir(config_module)) == set(config_module.__all__)


def test_relative_paths_stay_as_the_user_wrote_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "inc/base.yaml", "contents:\n  repositories: [../repo]\n  packages: [a b]\n")
    write(tmp_path, "apko.yaml", "include: inc/base.yaml\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(Path("apko.yaml"))
    assert str(info.value).startswith("inc/base.yaml:3: contents.packages[0]: 'a b'")
    write(tmp_path, "inc/base.yaml", "contents:\n  repositories: [../repo]\n")
    cfg = load_config(Path("apko.yaml"))
    assert cfg.source == Path("apko.yaml")
    assert cfg.includes == (Path("inc/base.yaml"),)
    assert cfg.repositories == (str(tmp_path / "inc/../repo"),)  # absolute: cwd-independent
