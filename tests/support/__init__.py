"""Test support: the realistic repository built from Debian packages, its HTTP mirror, runc.

- :mod:`tests.support.debian`: ``ar``/``.deb`` reading and a private apt download.
- :mod:`tests.support.alpine_repo`: the signed multi-architecture Alpine-style repository.
- :mod:`tests.support.mirror`: a local HTTP server laid out as an Alpine mirror.
- :mod:`tests.support.runc`: OCI bundles run with runc, qemu-user via binfmt_misc.
"""

from __future__ import annotations

__all__: list[str] = []
