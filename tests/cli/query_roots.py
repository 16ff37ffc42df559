"""Roots for the read-only applet tests: apk-tools' conformance files and a small
hand-written system (musl, pcre, nginx with its docs and a GeoIP module, a pinned edge
repository), built the way ``shared/conformance/README.md`` describes."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = REPO.parent / "shared" / "conformance" / "apk-solver"

INSTALLED = """\
C:Q1AQEBAQEBAQEBAQEBAQEBAQEBAQE=
P:docs
V:0.2-r6
A:x86_64
S:1230
I:4096
T:Meta package for pulling in all documentation
U:https://alpinelinux.org
L:MIT
o:docs

C:Q1AgICAgICAgICAgICAgICAgICAgI=
P:musl
V:1.2.5-r0
A:x86_64
S:400000
I:700000
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
R:libc.musl-x86_64.so.1
a:0:0:777

C:Q1AwMDAwMDAwMDAwMDAwMDAwMDAwM=
P:nginx
V:1.24.0-r0
A:x86_64
S:600000
I:1300000
T:HTTP and reverse proxy server
U:https://www.nginx.org/
L:BSD-2-Clause
o:nginx
D:so:libc.musl-x86_64.so.1 so:libpcre.so.1
p:cmd:nginx=1.24.0-r0
F:etc
F:etc/nginx
R:nginx.conf
F:usr
F:usr/sbin
R:nginx

C:Q1BAQEBAQEBAQEBAQEBAQEBAQEBAQ=
P:nginx-doc
V:1.24.0-r0
A:x86_64
S:30000
I:90000
T:HTTP and reverse proxy server (documentation)
U:https://www.nginx.org/
L:BSD-2-Clause
o:nginx
i:docs nginx=1.24.0-r0
F:usr
F:usr/share
F:usr/share/man
F:usr/share/man/man8
R:nginx.8.gz

C:Q1BQUFBQUFBQUFBQUFBQUFBQUFBQU=
P:pcre
V:8.45-r3
A:x86_64
S:100000
I:300000
T:Perl-compatible regular expression library
U:https://pcre.org
L:BSD-3-Clause
o:pcre
D:so:libc.musl-x86_64.so.1
p:so:libpcre.so.1=1.2.13
r:libpcre
F:usr
F:usr/lib
R:libpcre.so.1
a:0:0:777
R:libpcre.so.1.2.13

"""
MAIN = """\
C:Q1AQEBAQEBAQEBAQEBAQEBAQEBAQE=
P:docs
V:0.2-r6
A:x86_64
S:1230
I:4096
T:Meta package for pulling in all documentation
U:https://alpinelinux.org
L:MIT
o:docs

C:Q1AgICAgICAgICAgICAgICAgICAgI=
P:musl
V:1.2.5-r0
A:x86_64
S:400000
I:700000
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
p:so:libc.musl-x86_64.so.1=1

C:Q1AwMDAwMDAwMDAwMDAwMDAwMDAwM=
P:nginx
V:1.24.0-r0
A:x86_64
S:600000
I:1300000
T:HTTP and reverse proxy server
U:https://www.nginx.org/
L:BSD-2-Clause
o:nginx
D:so:libc.musl-x86_64.so.1 so:libpcre.so.1
p:cmd:nginx=1.24.0-r0

C:Q1BgYGBgYGBgYGBgYGBgYGBgYGBgY=
P:nginx
V:1.26.2-r0
A:x86_64
S:610000
I:1310000
T:HTTP and reverse proxy server
U:https://www.nginx.org/
L:BSD-2-Clause
o:nginx
D:so:libc.musl-x86_64.so.1 so:libpcre.so.1
p:cmd:nginx=1.26.2-r0

C:Q1BAQEBAQEBAQEBAQEBAQEBAQEBAQ=
P:nginx-doc
V:1.24.0-r0
A:x86_64
S:30000
I:90000
T:HTTP and reverse proxy server (documentation)
U:https://www.nginx.org/
L:BSD-2-Clause
o:nginx
i:docs nginx=1.24.0-r0

C:Q1CAgICAgICAgICAgICAgICAgICAg=
P:nginx-mod-http-geoip
V:1.26.2-r0
A:x86_64
S:20000
I:40000
T:HTTP GeoIP module for nginx
U:https://www.nginx.org/
L:BSD-2-Clause
o:nginx
D:nginx=1.26.2-r0 so:libc.musl-x86_64.so.1

C:Q1BQUFBQUFBQUFBQUFBQUFBQUFBQU=
P:pcre
V:8.45-r3
A:x86_64
S:100000
I:300000
T:Perl-compatible regular expression library
U:https://pcre.org
L:BSD-3-Clause
o:pcre
D:so:libc.musl-x86_64.so.1
p:so:libpcre.so.1=1.2.13

C:Q1CQkJCQkJCQkJCQkJCQkJCQkJCQk=
P:pcre2
V:10.43-r0
A:x86_64
S:200000
I:600000
T:Perl-compatible regular expression library (v2)
U:https://pcre.org
L:BSD-3-Clause
o:pcre2
D:so:libc.musl-x86_64.so.1
p:so:libpcre2-8.so.0=0.11.2

"""
EDGE = """\
C:Q1CgoKCgoKCgoKCgoKCgoKCgoKCgo=
P:nginx
V:1.27.0-r0
A:x86_64
S:620000
I:1320000
T:HTTP and reverse proxy server
U:https://www.nginx.org/
L:BSD-2-Clause
o:nginx
D:so:libc.musl-x86_64.so.1 so:libpcre.so.1
p:cmd:nginx=1.27.0-r0

"""
TRIGGERS = "Q1AwMDAwMDAwMDAwMDAwMDAwMDAwM= /usr/share/nginx/modules /etc/nginx\n"


def tar_index(text: str, target: Path, description: str | None = None) -> None:
    """Write ``text`` as an unsigned ``APKINDEX.tar.gz`` (optionally with a DESCRIPTION)."""
    members = [("APKINDEX", text.encode())]
    if description is not None:
        members.insert(0, ("DESCRIPTION", description.encode()))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    target.write_bytes(gzip.compress(raw.getvalue(), mtime=0))


def make_root(
    root: Path,
    *,
    world: Sequence[str] = (),
    installed: str = "",
    repos: Sequence[tuple[str, str]] = (),
    description: str | None = None,
    triggers: str | None = None,
) -> Path:
    """A root with ``world``, the ``installed`` database text and one ``test://`` line per
    (tag, APKINDEX text) in ``repos`` (tag "" for none); returns ``root``."""
    for sub in ("etc/apk/cache", "lib/apk/db", "tmp", "var/log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "etc/apk/world").write_text("".join(f"{w}\n" for w in world))
    (root / "lib/apk/db/installed").write_text(installed)
    if triggers is not None:
        (root / "lib/apk/db/triggers").write_text(triggers)
    lines = []
    for number, (tag, text) in enumerate(repos):
        target = root / "tmp" / f"repo{number}.tar.gz"
        tar_index(text, target, description)
        lines.append(f"@{tag} test://{target}" if tag else f"test://{target}")
    (root / "etc/apk/repositories").write_text("".join(f"{line}\n" for line in lines))
    return root


def conformance_root(
    root: Path,
    *,
    world: Sequence[str] = (),
    installed: str | None = None,
    repos: Sequence[tuple[str, str]] = (),
) -> Path:
    """A root from apk-tools' own ``*.installed`` / ``*.repo`` files (read at test time)."""
    return make_root(
        root,
        world=world,
        installed=(CASES / installed).read_text() if installed else "",
        repos=[(tag, (CASES / name).read_text()) for tag, name in repos],
    )


def mini_root(root: Path) -> Path:
    """The hand-written system: world ``docs nginx``, five installed packages with files
    and triggers, ``main`` and ``@edge`` repositories, and a symlink to an owned file."""
    make_root(
        root,
        world=["docs", "nginx"],
        installed=INSTALLED,
        repos=[("", MAIN), ("edge", EDGE)],
        description="v3.21.0-1-gdeadbeef",
        triggers=TRIGGERS,
    )
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    os.symlink("/usr/sbin/nginx", root / "usr/bin/webserver")
    return root
