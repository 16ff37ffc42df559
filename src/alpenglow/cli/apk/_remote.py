"""Network repositories for the apk applets: options to policy, warnings, progress.

:class:`NetworkRepositories` turns apk's global options into an
:class:`~alpenglow.apk.remote.IndexPolicy` and a shared
:class:`~alpenglow.apk.cache.Cache`, opens ``http(s)`` indexes through
:class:`~alpenglow.apk.remote.Remote` (printing apk's ``WARNING: updating ...`` lines and
counting unavailable and stale repositories as ``apk_db_open`` does), and hands the commit a
verified :class:`~alpenglow.apk.remote.RepositoryPackageSource`.

The cache is ``--cache-dir`` (relative to the root, like apk's) or
``$XDG_CACHE_HOME/alpenglow`` / ``~/.cache/alpenglow``. Progress goes to stderr: a rich
bar when stderr is a terminal, otherwise one plain ``fetch URL`` line per download (as apk
2.14 printed); ``-q`` or ``--no-progress`` silence it.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from alpenglow.apk.repository import is_network_url

if TYPE_CHECKING:
    from alpenglow.apk.fetch import Progress
    from alpenglow.apk.index_cache import LoadedIndex
    from alpenglow.apk.remote import IndexPolicy, Remote, RepositoryPackageSource
    from alpenglow.apk.repository import Repository
    from alpenglow.apk.signing import Keyring
    from alpenglow.cli.apk import ApkContext

__all__ = ["NetworkRepositories", "PlainProgress", "RichProgress", "cache_root", "policy_for"]


def __dir__() -> list[str]:
    return __all__


def _opt(ctx: ApkContext, name: str, default: Any = None) -> Any:
    return getattr(ctx.opts, name, default)


def cache_root(ctx: ApkContext, root: Path) -> Path:
    """The shared cache: ``--cache-dir`` (relative to the root) or the user's default."""
    given = _opt(ctx, "cache_dir", None)
    if given:
        return root / str(given)
    from alpenglow.apk.cache import default_cache_dir

    return default_cache_dir(os.environ)


def policy_for(ctx: ApkContext, *, writable: bool) -> IndexPolicy:
    """apk's rules: write applets (not ``del``) refresh stale indexes unless
    ``--no-network``; ``-U`` and ``update`` treat every index as stale (a conditional
    request still avoids downloading an unchanged one); ``--cache-max-age`` is in minutes."""
    from alpenglow.apk.remote import DEFAULT_MAX_AGE, IndexPolicy

    no_network = bool(_opt(ctx, "no_network", False))
    max_age: float = DEFAULT_MAX_AGE
    given = _opt(ctx, "cache_max_age", None)
    if given is not None:
        max_age = max(0, int(given)) * 60
    if bool(_opt(ctx, "update_cache", False)) or ctx.applet == "update":
        max_age = 0
    return IndexPolicy(
        autoupdate=writable and ctx.applet != "del" and not no_network,
        max_age=max_age,
        force=bool(_opt(ctx, "force_refresh", False)),
        network=not no_network,
        use_cache=not bool(_opt(ctx, "no_cache", False)),
    )


class PlainProgress:
    """One line per finished download, and one per retry (for logs and pipes)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def started(self, url: str, total: int | None) -> None:
        pass

    def advanced(self, url: str, nbytes: int) -> None:
        pass

    def finished(self, url: str, ok: bool) -> None:
        if ok:
            self._line(f"fetch {url}")

    def retrying(self, url: str, attempt: int, delay: float, reason: str) -> None:
        self._line(f"fetch {url}: {reason}; retrying in {delay:.1f} s")


class RichProgress:
    """A transient rich progress bar per download (terminals only)."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self.console = Console(file=stream)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=self.console,
            transient=True,
        )
        self.tasks: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.running = False

    def started(self, url: str, total: int | None) -> None:
        with self.lock:
            if not self.running:
                self.bar.start()
                self.running = True
            self.tasks[url] = self.bar.add_task(url.rsplit("/", 1)[-1], total=total)

    def advanced(self, url: str, nbytes: int) -> None:
        task = self.tasks.get(url)
        if task is not None:
            self.bar.advance(task, nbytes)

    def finished(self, url: str, ok: bool) -> None:
        with self.lock:
            task = self.tasks.pop(url, None)
            if task is not None:
                self.bar.remove_task(task)

    def retrying(self, url: str, attempt: int, delay: float, reason: str) -> None:
        self.console.print(f"fetch {url}: {reason}; retrying in {delay:.1f} s")

    def stop(self) -> None:
        with self.lock:
            if self.running:
                self.bar.stop()
                self.running = False


def _progress(ctx: ApkContext, stream: TextIO) -> Progress | None:
    quiet = int(_opt(ctx, "quiet", 0) or 0) > 0
    if quiet or bool(_opt(ctx, "no_progress", False)):
        return None
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        return RichProgress(stream)
    return PlainProgress(stream)


class NetworkRepositories:
    """The ``http(s)`` repositories of one applet run (made lazily: no HTTP session, no
    cache directory, unless a network repository is configured)."""

    def __init__(
        self,
        ctx: ApkContext,
        root: str | os.PathLike[str],
        warn: Any,
        *,
        writable: bool,
        keys: object,
        allow_untrusted: bool,
        index_cache: str | os.PathLike[str] | None,
    ) -> None:
        self.ctx = ctx
        self.root = Path(root)
        self.warn = warn
        self.writable = writable
        self.keys = keys
        self.allow_untrusted = allow_untrusted
        self.index_cache = index_cache
        self.unavailable = 0
        self.stale = 0
        self.updated = 0
        self._remote: Remote | None = None
        self._progress: Progress | None = None

    @staticmethod
    def handles(repo: Repository) -> bool:
        """Whether ``repo``'s index is fetched over the network (``http(s)``)."""
        return is_network_url(repo.url)

    @property
    def used(self) -> bool:
        return self._remote is not None

    def remote(self) -> Remote:
        if self._remote is None:
            from alpenglow.apk.cache import Cache
            from alpenglow.apk.fetch import Fetcher
            from alpenglow.apk.remote import Remote

            stream = getattr(self.ctx, "stderr", sys.stderr)
            self._progress = _progress(self.ctx, stream)
            timeout = _opt(self.ctx, "timeout", None)
            fetcher = Fetcher(
                progress=self._progress,
                timeout=float(timeout) if timeout else 30.0,
                verify_tls=not bool(_opt(self.ctx, "no_check_certificate", False)),
            )
            cache = Cache(cache_root(self.ctx, self.root))
            self._remote = Remote(cache, fetcher, policy_for(self.ctx, writable=self.writable))
        return self._remote

    def load(self, repo: Repository) -> LoadedIndex | None:
        """Open ``repo``'s index (refreshing it if apk would), printing apk's warning."""
        from alpenglow.apk.repository import open_index

        def load(data: bytes) -> LoadedIndex:
            return open_index(
                None,
                data=data,
                url=repo.url,
                keys=self.keys,
                allow_untrusted=self.allow_untrusted,
                cache_dir=self.index_cache,
            )

        outcome = self.remote().open_index(repo.url, load)
        self._stop()
        if outcome.warning is not None:
            self.warn(outcome.warning)
        if outcome.unavailable:
            self.unavailable += 1
        elif outcome.stale:
            self.stale += 1
        if outcome.updated:
            self.updated += 1
        return outcome.result

    def package_source(self) -> RepositoryPackageSource:
        """Verified package files for the commit, through the cache."""
        from alpenglow.apk.remote import RepositoryPackageSource
        from alpenglow.apk.signing import Keyring

        keys: Keyring | None = self.keys if isinstance(self.keys, Keyring) else None
        return RepositoryPackageSource(self.remote(), keys, allow_untrusted=self.allow_untrusted)

    def _stop(self) -> None:
        stop = getattr(self._progress, "stop", None)
        if stop is not None:
            stop()

    def close(self) -> None:
        self._stop()
        if self._remote is not None:
            self._remote.close()
