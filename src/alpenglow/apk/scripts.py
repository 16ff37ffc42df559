"""What package scripts would have done: busybox applet links, and running the scripts.

**Without scripts** (the default, like apko): after the files are in place, if the root has
``bin/busybox`` and ``etc/busybox-paths.d/busybox`` (one absolute applet path per line,
shipped by Alpine's busybox since 1.36.0-r8), every listed path that does not exist yet
becomes an absolute symlink to ``/bin/busybox`` with busybox's mtime, sorted, parents created
(formats.md §9.4). The links are not in the installed database, as with apk. Accounts: an
APK v2 package has no declarative user or group metadata (``.PKGINFO`` has no such key;
abuild's ``pkgusers``/``pkggroups`` are not carried into the package, and apko takes accounts
from its own image configuration). Users and groups therefore come from the files packages
ship (``alpine-baselayout``'s ``etc/passwd`` and ``etc/group``); what ``.pre-install``
scripts add with ``addgroup``/``adduser`` only exists when scripts run.

**With scripts** (``--scripts``): each changed package's scripts run chrooted into the root
(needs root, and a root whose binaries the machine can execute: the native architecture,
or a registered binfmt emulator), with ``PATH=/usr/sbin:/usr/bin:/sbin:/bin``,
``APK_PACKAGE`` and ``APK_SCRIPT`` as apk 3 sets them, from ``lib/apk/exec``. Limits: the
files of the whole transaction are placed first, so ``pre-install``/``pre-upgrade`` run just
before their ``post-`` twin instead of before extraction; ``pre-deinstall`` and
``post-deinstall`` both run after the files are gone; what a script changes cannot be undone
if a later step fails. Triggers run last, as in apk.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import stat
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alpenglow.apk.commit import Step
    from alpenglow.apk.database import ScriptRecord

__all__ = [
    "BUSYBOX_PATHS",
    "SCRIPT_PATH",
    "busybox_links",
    "parse_busybox_paths",
    "run_package_scripts",
    "trigger_matches",
]


def __dir__() -> list[str]:
    return __all__


BUSYBOX_PATHS = "etc/busybox-paths.d/busybox"
SCRIPT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def parse_busybox_paths(text: str) -> list[str]:
    """The applet paths of a ``busybox-paths.d`` file, relative, sorted, deduplicated;
    ``/bin/busybox``, blank lines and unsafe paths are left out.

    >>> parse_busybox_paths("/bin/ls\\n/bin/busybox\\n\\n/usr/bin/awk\\n/../etc/x\\n")
    ['bin/ls', 'usr/bin/awk']
    """
    out = set()
    for line in text.split("\n"):
        path = line.strip()
        if not path.startswith("/") or path == "/bin/busybox":
            continue
        rel = path.strip("/")
        parts = rel.split("/")
        if not rel or any(p in ("", ".", "..") for p in parts):
            continue
        if any(ord(c) < 0x20 for c in rel):
            continue
        out.add(rel)
    return sorted(out, key=lambda p: p.encode("utf-8", "surrogateescape"))


def busybox_links(root: str, resolve: Callable[[str, str], str]) -> list[tuple[str, str, int]]:
    """The links to create: (parent directory, link path, mtime), all relative to ``root``.

    Empty unless the root has ``bin/busybox`` and ``etc/busybox-paths.d/busybox``;
    ``resolve`` maps a relative path to the real one inside the root.
    """
    try:
        st = os.stat(resolve(root, "bin/busybox"))
    except OSError:
        return []
    if not stat.S_ISREG(st.st_mode):
        return []
    try:
        with open(resolve(root, BUSYBOX_PATHS), "rb") as fh:
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    mtime = int(st.st_mtime)
    return [(p.rpartition("/")[0], p, mtime) for p in parse_busybox_paths(text)]


def trigger_matches(globs: Sequence[str], directory: str, modified: bool) -> bool:
    """Whether a trigger with ``globs`` fires for ``/directory`` (apk: ``fnmatch`` with
    ``FNM_PATHNAME``; a ``+`` prefix only fires for directories changed by the transaction).

    >>> trigger_matches(["/usr/share/fonts/*"], "usr/share/fonts/misc", False)
    True
    >>> trigger_matches(["+/bin"], "bin", False)
    False
    """
    rooted = "/" + directory
    for glob in globs:
        only_changed = glob.startswith("+")
        pattern = glob[1:] if only_changed else glob
        if not pattern.startswith("/"):
            continue
        want = pattern.split("/")
        have = rooted.split("/")
        if len(want) != len(have):
            continue
        if all(fnmatch.fnmatchcase(h, w) for h, w in zip(have, want, strict=True)):
            return modified or not only_changed
    return False


def _run_one(
    root: str,
    name: str,
    version: str,
    script: str,
    body: bytes,
    args: Sequence[str],
    out: Callable[[str], None],
    *,
    prefix: str,
) -> str | None:
    """Run one script chrooted into ``root``; returns apk's error text on failure."""
    exec_dir = os.path.join(root, "lib/apk/exec")
    os.makedirs(exec_dir, mode=0o755, exist_ok=True)
    base = f"{name}-{version}.{script}"
    path = os.path.join(exec_dir, base)
    with open(path, "wb") as fh:
        fh.write(body)
    os.chmod(path, 0o700)
    out(f"{prefix}Executing {base}")

    def enter() -> None:
        os.chroot(root)
        os.chdir("/")
        os.umask(0o022)

    env = {"PATH": SCRIPT_PATH, "APK_PACKAGE": name, "APK_SCRIPT": script}
    try:
        proc = subprocess.run(
            [f"/lib/apk/exec/{base}", *args],
            env=env,
            preexec_fn=enter,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            out(f"{prefix}* {line}")
        code = proc.returncode
    except OSError as exc:
        code = 127
        out(f"{prefix}* {exc.strerror}")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    if code == 0:
        return None
    what = f"killed by signal {-code}" if code < 0 else f"exited with error {code}"
    return f"lib/apk/exec/{base}: {what}"


def run_package_scripts(
    root: str,
    steps: Sequence[Step],
    old_scripts: Mapping[str, Iterable[ScriptRecord]],
    new_scripts: Mapping[str, Iterable[ScriptRecord]],
    triggers: Mapping[str, Sequence[str]],
    installed_dirs: Mapping[str, Sequence[str]],
    changed_dirs: Iterable[str],
    out: Callable[[str], None],
) -> list[str]:
    """Run the scripts of ``steps`` in order, then the triggers; returns error messages.

    ``installed_dirs`` maps each installed identity to its directories (for triggers of
    packages installed by this transaction, which see every matching directory).
    """
    errors: list[str] = []

    def body(table: Mapping[str, Iterable[ScriptRecord]], ident: str, script: str) -> bytes | None:
        for rec in table.get(ident, ()):
            if rec.script == script:
                return rec.body
        return None

    fresh: set[str] = set()
    for step in steps:
        if step.new is None and step.old is not None:
            pkg = step.old
            for script in ("pre-deinstall", "post-deinstall"):
                text = body(old_scripts, pkg.checksum, script)
                if text is not None:
                    err = _run_one(
                        root, pkg.name, pkg.version, script, text, [pkg.version], out, prefix="  "
                    )
                    if err:
                        errors.append(err)
            continue
        if step.new is None:
            continue
        new = step.new.package
        if step.old is not None and step.old.checksum == new.checksum and not step.reinstall:
            continue
        fresh.add(new.checksum)
        upgrade = step.old is not None
        args = [new.version, step.old.version] if step.old is not None else [new.version]
        for script in (
            ("pre-upgrade", "post-upgrade") if upgrade else ("pre-install", "post-install")
        ):
            text = body(new_scripts, new.checksum, script)
            if text is not None:
                err = _run_one(root, new.name, new.version, script, text, args, out, prefix="  ")
                if err:
                    errors.append(err)
    changed = set(changed_dirs)
    for ident, globs in triggers.items():
        text = body(new_scripts, ident, "trigger")
        if text is None:
            continue
        candidates = set(changed)
        if ident in fresh:
            for dirs in installed_dirs.values():
                candidates.update(dirs)
        matched = sorted(
            "/" + d for d in candidates if d and trigger_matches(globs, d, d in changed)
        )
        if not matched:
            continue
        rec = next(r for r in new_scripts[ident] if r.script == "trigger")
        err = _run_one(root, rec.name, rec.version, "trigger", text, matched, out, prefix="")
        if err:
            errors.append(err)
    return errors
