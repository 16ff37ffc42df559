"""The error hierarchy. Every message is written for the user who will read it.

::

    AlpenglowError
    ├── InvalidVersion          (also a ValueError)
    ├── InvalidDependency       (also a ValueError)
    ├── FormatError             bad bytes in a file we were asked to read
    │   ├── ArchiveError        gzip/tar framing, sizes, hostile paths
    │   ├── IndexFormatError    APKINDEX text
    │   └── PackageError        .apk content, checksums
    ├── SignatureError          unknown key, bad or missing signature
    ├── DatabaseError           the installed database of a root
    ├── CommitError             a root could not be changed (it was left as it was)
    ├── InvalidReference        an image reference that is not valid (also a ValueError)
    ├── ImageNotFound           no image of that name, tag, digest or id
    ├── RegistryError           a registry refused or failed a request (status, codes)
    │   └── DigestMismatch      bytes from a registry do not match their digest
    ├── ContainerNotFound       no container of that id, id prefix or name
    ├── ContainerError          a container could not be run (runtime, mount, command, user);
    │                           ``exit_status`` is what ``run`` exits with (125, 126, 127)
    └── Unsatisfiable           the solver found no answer

The library raises these; only the CLI turns them into one line and an exit status.
"""

from __future__ import annotations

__all__ = [
    "AlpenglowError",
    "ArchiveError",
    "CommitError",
    "ContainerError",
    "ContainerNotFound",
    "DatabaseError",
    "DigestMismatch",
    "FormatError",
    "ImageNotFound",
    "IndexFormatError",
    "InvalidDependency",
    "InvalidReference",
    "InvalidVersion",
    "PackageError",
    "RegistryError",
    "SignatureError",
    "Unsatisfiable",
    "UsageError",
    "caret_line",
]


class AlpenglowError(Exception):
    """Base of every error alpenglow raises on purpose.

    ``message`` is one line for the user; ``hint`` an optional second line saying what to do.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(AlpenglowError):
    """The command line itself is wrong (exit status 2)."""


def caret_line(text: str, start: int, end: int | None = None) -> str:
    """Return ``text`` and, under it, ``~~^`` marking ``text[start:end]``.

    >>> print(caret_line("foo>=x", 5))
    foo>=x
         ^
    """
    end = start + 1 if end is None or end <= start else end
    marks = "~" * (end - start - 1) + "^"
    return f"{text}\n{' ' * start}{marks}"


class InvalidVersion(AlpenglowError, ValueError):
    """A string that is not an apk version."""


class InvalidDependency(AlpenglowError, ValueError):
    """A string that is not an apk dependency atom.

    ``text`` is the whole input and ``position`` the offset of the bad spot, so that
    ``str(err)`` can show the input with a caret under it.
    """

    def __init__(self, reason: str, text: str, position: int) -> None:
        self.reason = reason
        self.text = text
        self.position = position
        super().__init__(f"{reason}\n{caret_line(text, position)}")


class FormatError(AlpenglowError):
    """A file's bytes are not what its format requires."""


class ArchiveError(FormatError):
    """gzip or tar framing is broken, too large, or names a hostile path."""


class IndexFormatError(FormatError):
    """An APKINDEX text is malformed."""


class PackageError(FormatError):
    """A .apk package is malformed or its content fails a checksum."""


class SignatureError(AlpenglowError):
    """A signature is missing, made by an unknown key, of an unknown kind, or wrong."""


class DatabaseError(AlpenglowError):
    """The installed database of a root is missing or corrupt."""


class CommitError(AlpenglowError):
    """Changing a root failed (disk full, permissions, a directory in the way, a package
    that cannot be had); the root, its world and its database were left as they were."""


class InvalidReference(AlpenglowError, ValueError):
    """An image reference (``NAME[:TAG][@DIGEST]``, ``oci:DIR:TAG``, ...) that is not valid."""


class ImageNotFound(AlpenglowError):
    """No image matches a name, tag, digest or image id (in the store, a layout or an archive)."""


class RegistryError(AlpenglowError):
    """A registry request failed for good. The message is one line naming the registry,
    the repository and what went wrong (the HTTP status and the registry's own error codes
    and messages); ``status`` is the last HTTP status (None for a network failure) and
    ``codes`` the registry's error codes (``MANIFEST_UNKNOWN``, ...)."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        registry: str = "",
        repository: str = "",
        status: int | None = None,
        codes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, hint)
        self.registry = registry
        self.repository = repository
        self.status = status
        self.codes = codes


class DigestMismatch(RegistryError):
    """Content received from a registry does not hash to (or is not the size of) the digest
    it was asked for; nothing of it was kept."""


class ContainerNotFound(AlpenglowError):
    """No container has that id, id prefix or name."""


class ContainerError(AlpenglowError):
    """A container could not be created or run: the OCI runtime failed, a mount failed, the
    command is not in the image (``exit_status`` 127) or cannot be run (126), a user is not
    in the image. ``exit_status`` is what a foreground ``run`` exits with (Docker's codes)."""

    def __init__(self, message: str, hint: str | None = None, exit_status: int = 125) -> None:
        super().__init__(message, hint)
        self.exit_status = exit_status


class Unsatisfiable(AlpenglowError):
    """The solver found no answer. The message is apk's: ``unable to select packages:``
    followed by its indented report (``report``) of who required what."""

    def __init__(self, report: str, hint: str | None = None) -> None:
        super().__init__("unable to select packages:\n" + report.rstrip("\n"), hint)
        self.report = report
