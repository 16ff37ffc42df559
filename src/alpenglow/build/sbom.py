"""Software bills of materials for a built image: SPDX 2.3 and CycloneDX 1.5, as JSON bytes.

One :class:`SbomInput` (the image, its architecture and the APK packages installed in it)
gives two documents, :func:`spdx_json` and :func:`cyclonedx_json`. Both are pure functions
of their input: the timestamp comes from ``created`` (``SOURCE_DATE_EPOCH``), the document
namespace and serial number are UUID-5s of ``namespace_seed``, packages are sorted and the
JSON is written with sorted keys, so the same input always gives the same bytes.

What goes in, per package:

- a purl, ``pkg:apk/alpine/NAME@VERSION?arch=ARCH`` (name lowercased and every part
  percent-encoded as the purl specification says; ``&distro=alpine-X.Y.Z`` when the Alpine
  release is known), see :func:`purl`;
- the declared license (``L:``), turned into a valid SPDX expression (see
  :func:`license_expression`);
- the package identity ``C:`` as a checksum (see :func:`identity_checksum`);
- the supplier, Alpine Linux (the purl vendor), with the maintainer (``m:``) as SPDX
  originator and CycloneDX supplier contact; homepage (``U:``, when it is a plain URL),
  summary (``T:``), origin and commit (``o:``, ``c:``) and build date (``t:``);
- dependencies: each ``D:`` atom resolved among the installed packages, by name first and
  otherwise through ``p:`` provides (conflicts ``!name`` are not edges).

>>> purl("libstdc++", "1.2_rc1-r0", "x86_64", "3.22.4")
'pkg:apk/alpine/libstdc%2B%2B@1.2_rc1-r0?arch=x86_64&distro=alpine-3.22.4'
>>> license_expression("GPL-2.0 or MIT BSD")
'LicenseRef-GPL-2.0-or-MIT-BSD'
>>> license_expression("GPL-2.0 OR MIT")
'GPL-2.0-only OR MIT'
>>> file_names("x86_64")
('sbom-x86_64.spdx.json', 'sbom-x86_64.cdx.json')
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from alpenglow import __version__
from alpenglow.apk.index import Package
from alpenglow.build._spdx_ids import EXCEPTION_IDS, LICENSE_IDS

__all__ = [
    "CYCLONEDX_MEDIA_TYPE",
    "SPDX_MEDIA_TYPE",
    "SbomInput",
    "cyclonedx_json",
    "file_names",
    "identity_checksum",
    "license_expression",
    "purl",
    "spdx_json",
]


def __dir__() -> list[str]:
    return __all__


SPDX_MEDIA_TYPE = "application/spdx+json"
CYCLONEDX_MEDIA_TYPE = "application/vnd.cyclonedx+json"

_TOOL = "alpenglow"
_SUPPLIER = "Alpine Linux"
_SUPPLIER_URL = "https://alpinelinux.org/"
# A fixed namespace for the UUID-5s of document namespaces and serial numbers.
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://alpenglow.invalid/sbom")
# datetime covers years 1..9999; keep to the epoch onwards (SOURCE_DATE_EPOCH is unsigned).
_MAX_EPOCH = 253402300799


@dataclass(frozen=True, slots=True)
class SbomInput:
    """What an SBOM describes: one image for one architecture and the packages installed in it.

    ``created`` is the epoch second written as the creation time (``SOURCE_DATE_EPOCH``);
    ``namespace_seed`` (e.g. the layer's diff_id) makes the SPDX ``documentNamespace`` and the
    CycloneDX ``serialNumber`` unique to the image yet reproducible; ``os_version`` is the
    Alpine release (``etc/alpine-release``) when known, else empty.
    """

    image_name: str
    arch: str
    packages: tuple[Package, ...]
    created: int
    namespace_seed: str
    os_version: str = ""

    def __post_init__(self) -> None:
        if not self.image_name.strip():
            raise ValueError("SbomInput: image_name is empty")
        if not self.arch.strip():
            raise ValueError("SbomInput: arch is empty")
        if not 0 <= self.created <= _MAX_EPOCH:
            raise ValueError(f"SbomInput: created {self.created} is not an epoch second")


def file_names(arch: str) -> tuple[str, str]:
    """The file names of the SPDX and CycloneDX documents for ``arch``.

    >>> file_names("aarch64")
    ('sbom-aarch64.spdx.json', 'sbom-aarch64.cdx.json')
    """
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", arch):
        raise ValueError(f"not an architecture name: {arch!r}")
    return f"sbom-{arch}.spdx.json", f"sbom-{arch}.cdx.json"


# --------------------------------------------------------------------------------------------
# purl


def _purl_encode(text: str) -> str:
    # The purl "allowed set" (letters, digits, ".-_~") and the colon stay; everything else is
    # percent-encoded from UTF-8 (``+`` -> ``%2B``, space -> ``%20``).
    return quote(text, safe=":")


def purl(name: str, version: str, arch: str, os_version: str = "") -> str:
    """The package URL of an APK package (purl type ``apk``, vendor ``alpine``).

    The name is lowercased (the ``apk`` type is case-insensitive); qualifiers are sorted by
    key and empty ones left out.

    >>> purl("busybox", "1.37.0-r30", "x86_64")
    'pkg:apk/alpine/busybox@1.37.0-r30?arch=x86_64'
    """
    text = f"pkg:apk/alpine/{_purl_encode(name.lower())}"
    if version:
        text += "@" + _purl_encode(version)
    qualifiers = [("arch", arch), ("distro", f"alpine-{os_version}" if os_version else "")]
    pairs = [f"{key}={_purl_encode(value)}" for key, value in qualifiers if value]
    if pairs:
        text += "?" + "&".join(pairs)
    return text


# --------------------------------------------------------------------------------------------
# checksums


def identity_checksum(checksum: str) -> tuple[str, str] | None:
    """The APK identity ``C:`` as ``(algorithm, hex digest)``, or None if it is not one.

    An identity is ``Q1`` + base64 of the SHA-1 (``Q2``: SHA-256) of the package's **control
    segment**: the compressed bytes of the second gzip member of the ``.apk``, which holds
    ``.PKGINFO`` and with it the SHA-256 of the data segment. It is therefore a checksum that
    pins the package's contents, but it is *not* the digest of the ``.apk`` file.

    >>> identity_checksum("Q1jPsNozZhCks+WW7OUyLGU9t/7K8=")
    ('SHA1', '8cfb0da336610a4b3e596ece5322c653db7fecaf')
    """
    if checksum[:2] not in ("Q1", "Q2"):
        return None
    try:
        digest = base64.b64decode(checksum[2:], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(digest) == 20 and checksum[:2] == "Q1":
        return "SHA1", digest.hex()
    if len(digest) == 32:  # Q2, or a SHA-256 written with the Q1 prefix by newer tools
        return "SHA256", digest.hex()
    return None


# --------------------------------------------------------------------------------------------
# licenses

_LICENSES = {ident.lower(): ident for ident in LICENSE_IDS}
_EXCEPTIONS = {ident.lower(): ident for ident in EXCEPTION_IDS}
# Spellings seen in Alpine's L: fields that stand for exactly one SPDX license.
_ALIASES = {
    "gpl+": "GPL-1.0-or-later",
    "artistic-perl": "Artistic-1.0-Perl",
    "artistic-perl-1.0": "Artistic-1.0-Perl",
    "perlartistic": "Artistic-1.0-Perl",
    "artistic-2": "Artistic-2.0",
}
# GNU licenses written the old ways: GPL-2.0 (deprecated id, means "only"), GPL-2.0+,
# GPLv2+, GPL2, LGPL-2-or-later ...
_GNU = re.compile(r"(A?GPL|LGPL|GFDL)[-v]?(\d)(?:\.(\d))?(\+|-or-later|-only)?", re.IGNORECASE)
_OPERATORS = frozenset({"AND", "OR", "WITH"})
_TOKENS = re.compile(r"[()]|[^\s(),]+")


def _license_id(word: str) -> str | None:
    """The SPDX license identifier ``word`` stands for, or None."""
    match = _GNU.fullmatch(word)
    if match is not None:
        family, major, minor, suffix = match.groups()
        later = suffix is not None and suffix.lower() != "-only"
        candidate = f"{family.upper()}-{major}.{minor or 0}-{'or-later' if later else 'only'}"
        if candidate in LICENSE_IDS:
            return candidate
    key = word.lower()
    return _LICENSES.get(key) or _ALIASES.get(key)


@dataclass(frozen=True, slots=True)
class _Term:
    """One license in an expression: the text as written and its SPDX id (None: unknown)."""

    text: str
    spdx_id: str | None


@dataclass(frozen=True, slots=True)
class _License:
    """An ``L:`` value read as an SPDX expression.

    ``tokens`` are terms and the strings ``AND``, ``OR``, ``WITH``, ``(``, ``)`` in a valid
    order; ``conjunction`` says the expression is terms joined by ``AND`` only.
    """

    text: str
    tokens: tuple[_Term | str, ...]
    conjunction: bool

    @property
    def terms(self) -> tuple[_Term, ...]:
        return tuple(t for t in self.tokens if isinstance(t, _Term))


class _Grammar:
    """A recursive-descent check of the SPDX expression grammar (precedence WITH > AND > OR;
    WITH only after a single license) that maps each operand to its id on the way."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = words
        self.pos = 0
        self.out: list[_Term | str] = []

    def _peek(self) -> str | None:
        return self.words[self.pos] if self.pos < len(self.words) else None

    def _operator(self) -> str | None:
        word = self._peek()
        return word.upper() if word is not None and word.upper() in _OPERATORS else None

    def parse(self) -> tuple[_Term | str, ...] | None:
        if not self._or() or self.pos != len(self.words):
            return None
        return tuple(self.out)

    def _or(self) -> bool:
        if not self._and():
            return False
        while self._operator() == "OR":
            self.out.append("OR")
            self.pos += 1
            if not self._and():
                return False
        return True

    def _and(self) -> bool:
        if not self._with():
            return False
        while self._operator() == "AND":
            self.out.append("AND")
            self.pos += 1
            if not self._with():
                return False
        return True

    def _with(self) -> bool:
        word = self._peek()
        if word is None or word == ")" or self._operator() is not None:
            return False
        self.pos += 1
        if word == "(":
            self.out.append("(")
            if not self._or() or self._peek() != ")":
                return False
            self.out.append(")")
            self.pos += 1
            return True
        self.out.append(_Term(word, _license_id(word)))
        if self._operator() == "WITH":
            self.pos += 1
            exception = self._peek()
            known = None if exception is None else _EXCEPTIONS.get(exception.lower())
            if exception is None or known is None:
                return False  # SPDX 2.3 has no way to name an unlisted exception
            self.out.extend(("WITH", _Term(exception, known)))
            self.pos += 1
        return True


def _read_license(text: str) -> _License | None:
    """Read an Alpine ``L:`` value; None when it is empty.

    Three shapes occur. An SPDX expression (operators in any case) keeps its structure, each
    license mapped to its identifier or, when there is none, kept as an unknown term. A plain
    list (``MIT BSD``, ``GPL-2.0+, Zlib``) is read as all of them (``AND``), unless none of
    the words is a known license (``Public Domain``): then it is one unknown license. Anything
    else (``BSD with advertising``, a dangling ``AND``) is one unknown license too.
    """
    text = " ".join(text.split())
    if not text:
        return None
    words = _TOKENS.findall(text)
    whole = _License(text, (_Term(text, None),), conjunction=True)
    structured = any(w in "()" or w.upper() in _OPERATORS for w in words)
    if not structured:
        terms: list[_Term] = []
        for word in words:
            term = _Term(word, _license_id(word))
            if term not in terms:
                terms.append(term)
        if len(terms) > 1 and all(t.spdx_id is None for t in terms):
            return whole
        tokens: list[_Term | str] = []
        for term in terms:
            tokens.extend(("AND", term) if tokens else (term,))
        return _License(text, tuple(tokens), conjunction=True)
    parsed = _Grammar(words).parse()
    if parsed is None:
        return whole
    conjunction = all(isinstance(t, _Term) or t == "AND" for t in parsed)
    return _License(text, parsed, conjunction)


def _ref_names(texts: Iterable[str]) -> dict[str, str]:
    """``LicenseRef-`` identifiers for license texts that have no SPDX id, unique per
    document (a short hash tells apart texts that would otherwise get the same name)."""
    bases: dict[str, str] = {}
    for text in sorted(set(texts)):
        if re.fullmatch(r"LicenseRef-[A-Za-z0-9.-]+", text):
            bases[text] = text
            continue
        name = re.sub(r"[^A-Za-z0-9.]+", "-", text.replace("+", "-plus-")).strip("-")
        bases[text] = "LicenseRef-" + (name or "unnamed")
    groups: dict[str, int] = {}
    for base in bases.values():
        groups[base.lower()] = groups.get(base.lower(), 0) + 1
    return {
        text: base
        if groups[base.lower()] == 1
        else f"{base}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
        for text, base in bases.items()
    }


def _render(lic: _License, refs: dict[str, str]) -> str:
    parts: list[str] = []
    for token in lic.tokens:
        if isinstance(token, _Term):
            parts.append(token.spdx_id or refs[token.text])
        else:
            parts.append(token)
    return " ".join(parts).replace("( ", "(").replace(" )", ")")


def license_expression(text: str) -> str:
    """The SPDX license expression for an Alpine ``L:`` value, as the SPDX document writes it
    (``NOASSERTION`` when empty). Licenses without an SPDX identifier become ``LicenseRef-``
    names (in a document these are declared in ``hasExtractedLicensingInfos``; a document
    whose names collide gets a hash suffix on them).

    >>> license_expression("MIT BSD")
    'MIT AND LicenseRef-BSD'
    >>> license_expression("GPL-2.0-or-later WITH OpenSSL-Exception")
    'LicenseRef-GPL-2.0-or-later-WITH-OpenSSL-Exception'
    """
    lic = _read_license(text)
    if lic is None:
        return "NOASSERTION"
    return _render(lic, _ref_names(t.text for t in lic.terms if t.spdx_id is None))


# --------------------------------------------------------------------------------------------
# shared pieces


def _timestamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ordered(packages: Iterable[Package]) -> list[Package]:
    """Packages sorted by (name, version, arch, identity), exact repeats dropped."""
    seen: dict[tuple[str, str, str, str], Package] = {}
    for pkg in packages:
        seen.setdefault((pkg.name, pkg.version, pkg.arch, pkg.checksum), pkg)
    return [seen[key] for key in sorted(seen)]


def _unique(bases: Sequence[str], keys: Sequence[str]) -> list[str]:
    """``bases`` made unique (case-insensitively): a repeated base gets a hash of its key."""
    counts: dict[str, int] = {}
    for base in bases:
        counts[base.lower()] = counts.get(base.lower(), 0) + 1
    return [
        base
        if counts[base.lower()] == 1
        else f"{base}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        for base, key in zip(bases, keys, strict=True)
    ]


def _key(pkg: Package) -> str:
    return "\0".join((pkg.name, pkg.version, pkg.arch, pkg.checksum))


def _dependencies(packages: Sequence[Package]) -> list[list[int]]:
    """For each package, the indexes of the packages its ``D:`` atoms resolve to.

    An atom is satisfied by an installed package of that name whose version (or identity,
    for ``><`` pins) matches; failing that, by packages that provide the name at a matching
    version (a provide without a version only satisfies an atom without one). Conflicts and
    atoms nothing installed satisfies give no edge.
    """
    by_name: dict[str, list[int]] = {}
    providers: dict[str, list[tuple[int, str | None]]] = {}
    for index, pkg in enumerate(packages):
        by_name.setdefault(pkg.name, []).append(index)
        for provided in pkg.provides:
            providers.setdefault(provided.name, []).append((index, provided.version))
    edges: list[list[int]] = []
    for index, pkg in enumerate(packages):
        targets: set[int] = set()
        for dep in pkg.depends:
            if dep.conflict:
                continue
            found = {
                other
                for other in by_name.get(dep.name, ())
                if dep.matches(packages[other].version, packages[other].checksum)
            }
            if not found:
                found = {
                    other
                    for other, version in providers.get(dep.name, ())
                    if dep.version is None
                    or (version is not None and not dep.is_checksum and dep.matches(version))
                }
            targets |= found
        targets.discard(index)
        edges.append(sorted(targets))
    return edges


_MAINTAINER = re.compile(r"(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s()]+@[^<>\s()]+)>")
# An absolute http(s)/ftp URL by RFC 3986 (so also a valid IRI) with a DNS host name:
# path, query and fragment made of pchar = unreserved / pct-encoded / sub-delims / ":" / "@".
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_URL = re.compile(
    r"(?:https?|ftp)://(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?"
    rf"(?::\d{{1,5}})?(?:/{_PCHAR}*)*(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
)


def _maintainer(text: str) -> tuple[str, str | None]:
    """``(name, email)`` of an ``m:`` value ``Name <email>``; the email may be None."""
    text = " ".join(text.split())
    match = _MAINTAINER.fullmatch(text)
    if match is None:
        return text, None
    return match["name"] or match["email"], match["email"]


def _homepage(url: str) -> str | None:
    """``U:`` when it is a plain http(s)/ftp URL with a DNS host name, else None."""
    url = url.strip()
    return url if _URL.fullmatch(url) else None


def _dumps(document: dict[str, Any]) -> bytes:
    # Compact canonical JSON: sorted keys, no spaces, UTF-8, a final newline. (Indented output
    # would go through json's pure-Python encoder, about ten times slower.)
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8", "replace")


def _uuid(kind: str, sbom: SbomInput) -> uuid.UUID:
    return uuid.uuid5(
        _UUID_NAMESPACE, "\0".join((kind, sbom.image_name, sbom.arch, sbom.namespace_seed))
    )


# --------------------------------------------------------------------------------------------
# SPDX 2.3


def _spdx_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "unnamed"


def _spdx_person(text: str) -> str | None:
    name, email = _maintainer(text)
    name = re.sub(r"[()]", "", name).strip()
    if not name:
        return None
    return f"Person: {name} ({email})" if email else f"Person: {name}"


def spdx_json(sbom: SbomInput) -> bytes:
    """The SPDX 2.3 JSON document for ``sbom``.

    The document DESCRIBES the image (a ``CONTAINER`` package), which CONTAINS every APK
    package (and the ``OPERATING-SYSTEM`` package ``alpine`` when ``os_version`` is known);
    packages have DEPENDS_ON relationships as resolved by their ``D:`` atoms. The identity
    ``C:`` is given as a ``SHA1`` checksum: the SHA-1 of the package's control segment (see
    :func:`identity_checksum`), not of the ``.apk`` file. ``licenseConcluded`` is
    ``NOASSERTION`` (nothing was analysed); ``licenseDeclared`` is the mapped ``L:``, with
    the original text in ``licenseComments`` when the two differ.
    """
    packages = _ordered(sbom.packages)
    licenses = [_read_license(pkg.license) for pkg in packages]
    refs = _ref_names(
        term.text
        for lic in licenses
        if lic is not None
        for term in lic.terms
        if term.spdx_id is None
    )
    ids = _unique(
        [f"SPDXRef-Package-{_spdx_id(pkg.name)}-{_spdx_id(pkg.version)}" for pkg in packages],
        [_key(pkg) for pkg in packages],
    )
    image_id = "SPDXRef-Image"
    os_id = "SPDXRef-OperatingSystem"
    image: dict[str, Any] = {
        "SPDXID": image_id,
        "name": sbom.image_name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": f"Container image for the {sbom.arch} architecture",
    }
    entries = [image]
    relationships = [_relationship("SPDXRef-DOCUMENT", "DESCRIBES", image_id)]
    if sbom.os_version:
        entries.append(
            {
                "SPDXID": os_id,
                "name": "alpine",
                "versionInfo": sbom.os_version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "primaryPackagePurpose": "OPERATING-SYSTEM",
                "supplier": f"Organization: {_SUPPLIER}",
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            }
        )
        relationships.append(_relationship(image_id, "CONTAINS", os_id))
    for pkg, lic, spdx_id in zip(packages, licenses, ids, strict=True):
        entries.append(_spdx_package(pkg, lic, refs, spdx_id, sbom))
        relationships.append(_relationship(image_id, "CONTAINS", spdx_id))
    for index, targets in enumerate(_dependencies(packages)):
        relationships.extend(_relationship(ids[index], "DEPENDS_ON", ids[t]) for t in targets)
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{sbom.image_name} ({sbom.arch})",
        "documentNamespace": (
            f"https://spdx.org/spdxdocs/{_TOOL}/{quote(sbom.image_name, safe='')}-"
            f"{sbom.arch}-{_uuid('spdx', sbom)}"
        ),
        "creationInfo": {
            "created": _timestamp(sbom.created),
            "creators": [f"Tool: {_TOOL}-{__version__}"],
        },
        "packages": entries,
        "relationships": relationships,
    }
    if refs:
        document["hasExtractedLicensingInfos"] = [
            {
                "licenseId": ref,
                "name": text,
                "extractedText": text,
                "comment": "A license named in an APK package's L: field that has no SPDX "
                "identifier; the name is all the package says about it.",
            }
            for text, ref in sorted(refs.items(), key=lambda item: item[1])
        ]
    return _dumps(document)


def _relationship(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}


def _spdx_package(
    pkg: Package, lic: _License | None, refs: dict[str, str], spdx_id: str, sbom: SbomInput
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": pkg.name,
        "versionInfo": pkg.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "supplier": f"Organization: {_SUPPLIER}",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION" if lic is None else _render(lic, refs),
        "copyrightText": "NOASSERTION",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(
                    pkg.name, pkg.version, pkg.arch or sbom.arch, sbom.os_version
                ),
            }
        ],
    }
    if lic is not None and entry["licenseDeclared"] != lic.text:
        entry["licenseComments"] = f"The package declares its license as: {lic.text}"
    checksum = identity_checksum(pkg.checksum)
    if checksum is not None:
        entry["checksums"] = [{"algorithm": checksum[0], "checksumValue": checksum[1]}]
    originator = _spdx_person(pkg.maintainer) if pkg.maintainer.strip() else None
    if originator is not None:
        entry["originator"] = originator
    homepage = _homepage(pkg.url)
    if homepage is not None:
        entry["homepage"] = homepage
    if pkg.description.strip():
        entry["summary"] = pkg.description.strip()
    source = _source_info(pkg)
    if source:
        entry["sourceInfo"] = source
    if pkg.build_time > 0 and pkg.build_time <= _MAX_EPOCH:
        entry["builtDate"] = _timestamp(pkg.build_time)
    return entry


def _source_info(pkg: Package) -> str:
    parts = []
    if pkg.origin:
        parts.append(f"built from the source package {pkg.origin}")
    if pkg.commit:
        parts.append(f"at commit {pkg.commit}")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# CycloneDX 1.5


def _cdx_licenses(lic: _License | None) -> list[dict[str, Any]] | None:
    """The ``licenses`` of a component: SPDX ids and expressions where the whole ``L:`` maps
    to them; otherwise each license of a plain list by id or by ``name``, or, for an
    expression that cannot be written with SPDX ids, the original text as one ``name``."""
    if lic is None:
        return None
    terms = lic.terms
    if all(t.spdx_id is not None for t in terms):
        if len(terms) == 1 and lic.conjunction:
            return [{"license": {"id": terms[0].spdx_id}}]
        return [{"expression": _render(lic, {})}]
    if lic.conjunction:
        return [{"license": {"id": t.spdx_id} if t.spdx_id else {"name": t.text}} for t in terms]
    return [{"license": {"name": lic.text}}]


def _cdx_supplier(pkg: Package) -> dict[str, Any]:
    supplier: dict[str, Any] = {"name": _SUPPLIER}
    if pkg.maintainer.strip():
        name, email = _maintainer(pkg.maintainer)
        contact: dict[str, str] = {"name": name}
        if email:
            contact["email"] = email
        supplier["contact"] = [contact]
    return supplier


def cyclonedx_json(sbom: SbomInput) -> bytes:
    """The CycloneDX 1.5 JSON document for ``sbom``.

    ``metadata.component`` is the image (type ``container``); every APK package is a
    ``library`` component whose ``bom-ref`` is its purl; an ``operating-system`` component
    ``alpine`` is added when ``os_version`` is known. ``dependencies`` lists every component:
    the image depends on all of them, each package on what its ``D:`` atoms resolve to. The
    identity ``C:`` is given as a ``SHA-1`` hash of the package's control segment (see
    :func:`identity_checksum`).
    """
    packages = _ordered(sbom.packages)
    purls = [
        purl(pkg.name, pkg.version, pkg.arch or sbom.arch, sbom.os_version) for pkg in packages
    ]
    refs = _unique(purls, [_key(pkg) for pkg in packages])
    image_ref = f"image:{sbom.image_name}"
    components: list[dict[str, Any]] = []
    image_depends: list[str] = []
    if sbom.os_version:
        os_ref = f"os:alpine@{sbom.os_version}"
        components.append(
            {
                "type": "operating-system",
                "bom-ref": os_ref,
                "name": "alpine",
                "version": sbom.os_version,
                "supplier": {"name": _SUPPLIER, "url": [_SUPPLIER_URL]},
            }
        )
        image_depends.append(os_ref)
    dependencies: list[dict[str, Any]] = []
    for pkg, ref, url in zip(packages, refs, purls, strict=True):
        components.append(_cdx_component(pkg, ref, url))
        image_depends.append(ref)
    for index, targets in enumerate(_dependencies(packages)):
        dependencies.append({"ref": refs[index], "dependsOn": sorted({refs[t] for t in targets})})
    if sbom.os_version:
        dependencies.append({"ref": image_depends[0], "dependsOn": []})
    dependencies.append({"ref": image_ref, "dependsOn": sorted(image_depends)})
    document: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{_uuid('cyclonedx', sbom)}",
        "version": 1,
        "metadata": {
            "timestamp": _timestamp(sbom.created),
            "lifecycles": [{"phase": "build"}],
            "tools": {
                "components": [{"type": "application", "name": _TOOL, "version": __version__}]
            },
            "component": {
                "type": "container",
                "bom-ref": image_ref,
                "name": sbom.image_name,
                "properties": [{"name": f"{_TOOL}:image:arch", "value": sbom.arch}],
            },
        },
        "components": components,
        "dependencies": sorted(dependencies, key=lambda d: str(d["ref"])),
    }
    return _dumps(document)


def _cdx_component(pkg: Package, ref: str, url: str) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "library",
        "bom-ref": ref,
        "name": pkg.name,
        "version": pkg.version,
        "purl": url,
        "supplier": _cdx_supplier(pkg),
    }
    lic = _read_license(pkg.license)
    licenses = _cdx_licenses(lic)
    if licenses is not None:
        component["licenses"] = licenses
    checksum = identity_checksum(pkg.checksum)
    if checksum is not None:
        algorithm = {"SHA1": "SHA-1", "SHA256": "SHA-256"}[checksum[0]]
        component["hashes"] = [{"alg": algorithm, "content": checksum[1]}]
    if pkg.description.strip():
        component["description"] = pkg.description.strip()
    homepage = _homepage(pkg.url)
    if homepage is not None:
        component["externalReferences"] = [{"type": "website", "url": homepage}]
    properties = [
        (f"{_TOOL}:apk:arch", pkg.arch),
        (f"{_TOOL}:apk:origin", pkg.origin),
        (f"{_TOOL}:apk:commit", pkg.commit),
        (f"{_TOOL}:apk:license", lic.text if lic is not None else ""),
        (
            f"{_TOOL}:apk:build-time",
            _timestamp(pkg.build_time) if 0 < pkg.build_time <= _MAX_EPOCH else "",
        ),
        (f"{_TOOL}:apk:installed-size", str(pkg.installed_size) if pkg.installed_size else ""),
    ]
    component["properties"] = [{"name": n, "value": v} for n, v in properties if v]
    return component
