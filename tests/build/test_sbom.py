"""SBOMs: SPDX 2.3 and CycloneDX 1.5 documents checked by the reference validators from PyPI.

Every document is parsed and validated by ``spdx-tools`` (no validation message allowed) and
by ``cyclonedx-python-lib``'s strict JSON-schema validator (format checks included), with
the network blocked for the whole module, so the validators are shown to work offline.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from packageurl import PackageURL

from alpenglow.apk.archive import TarEntry, split_gzip
from alpenglow.apk.dependency import parse_list
from alpenglow.apk.index import Package, load_index_archive
from alpenglow.apk.package import PackageInfo, read_package, write_package
from alpenglow.apk.signing import Keyring
from alpenglow.build import sbom
from alpenglow.build._spdx_ids import EXCEPTION_IDS, LICENSE_IDS
from alpenglow.build.sbom import (
    CYCLONEDX_MEDIA_TYPE,
    SPDX_MEDIA_TYPE,
    SbomInput,
    cyclonedx_json,
    file_names,
    identity_checksum,
    license_expression,
    purl,
    spdx_json,
)

REPO = Path(__file__).resolve().parents[2]
EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z


class NetworkUsed(AssertionError):
    """A validator tried to reach the network."""


def _refuse(*args: object, **kwargs: object) -> Any:
    raise NetworkUsed(f"network access attempted: {args!r}")


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    """No sockets for this module: any attempt to fetch a schema or a license list fails."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _refuse)
        patch.setattr(socket.socket, "connect_ex", _refuse)
        patch.setattr(socket, "create_connection", _refuse)
        patch.setattr(socket, "getaddrinfo", _refuse)
        yield


# --------------------------------------------------------------------------------------------
# validators (imported under the network block)


def spdx_messages(data: bytes, tmp_path: Path) -> list[str]:
    """Parse with spdx-tools' JSON parser and run the full validation; the messages."""
    from spdx_tools.spdx.parser.json import json_parser
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(data)
    document = json_parser.parse_from_file(str(path))
    return [m.validation_message for m in validate_full_spdx_document(document)]


def spdx_document(data: bytes, tmp_path: Path) -> Any:
    from spdx_tools.spdx.parser.json import json_parser

    path = tmp_path / "parsed.spdx.json"
    path.write_bytes(data)
    return json_parser.parse_from_file(str(path))


@pytest.fixture(scope="module")
def cdx_validator() -> Any:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_5)


def cdx_errors(validator: Any, data: bytes) -> list[str]:
    errors = validator.validate_str(data.decode("utf-8"), all_errors=True)
    return [] if errors is None else [str(e)[:500] for e in errors]


def assert_valid(data_spdx: bytes, data_cdx: bytes, validator: Any, tmp_path: Path) -> None:
    assert spdx_messages(data_spdx, tmp_path) == []
    assert cdx_errors(validator, data_cdx) == []


# --------------------------------------------------------------------------------------------
# data


@pytest.fixture(scope="module")
def alpine_packages(shared_dir: Path) -> tuple[Package, ...]:
    """Alpine 3.16 main for x86_64: 4929 real packages."""
    data_dir = shared_dir / "data" / "alpine-v3.16-main-x86_64"
    archive = load_index_archive(
        (data_dir / "APKINDEX.tar.gz").read_bytes(),
        Keyring.from_directory(data_dir),
        source="APKINDEX.tar.gz",
    )
    return archive.packages


def closure(packages: Sequence[Package], roots: Sequence[str]) -> tuple[Package, ...]:
    """The packages ``roots`` pull in, following names and provides (first provider wins)."""
    by_name = {p.name: p for p in packages}
    providers: dict[str, Package] = {}
    for pkg in packages:
        for provided in pkg.provides:
            providers.setdefault(provided.name, pkg)
    chosen: dict[str, Package] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        found = by_name.get(name) or providers.get(name)
        if found is None or found.name in chosen:
            continue
        chosen[found.name] = found
        todo.extend(d.name for d in found.depends if not d.conflict)
    return tuple(chosen.values())


@pytest.fixture(scope="module")
def base_image(alpine_packages: tuple[Package, ...]) -> SbomInput:
    """What an ``alpine-base`` + ``apk-tools`` image of Alpine 3.16 has installed."""
    packages = closure(alpine_packages, ["alpine-base", "apk-tools"])
    return SbomInput(
        image_name="alpine-base:latest",
        arch="x86_64",
        packages=packages,
        created=EPOCH,
        namespace_seed="sha256:" + "ab" * 32,
        os_version="3.16.9",
    )


def pkg(name: str, version: str = "1.0-r0", **fields: Any) -> Package:
    for key in ("depends", "provides"):
        if isinstance(fields.get(key), str):
            fields[key] = parse_list(fields[key])
    fields.setdefault("arch", "x86_64")
    return Package(name=name, version=version, **fields)


def image(*packages: Package, **fields: Any) -> SbomInput:
    values: dict[str, Any] = {
        "image_name": "test:1",
        "arch": "x86_64",
        "packages": packages,
        "created": EPOCH,
        "namespace_seed": "seed",
    }
    values.update(fields)
    return SbomInput(**values)


# --------------------------------------------------------------------------------------------
# API


def test_exports() -> None:
    assert sorted(sbom.__all__) == [
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
    assert dir(sbom) == sbom.__all__
    assert SPDX_MEDIA_TYPE == "application/spdx+json"
    assert CYCLONEDX_MEDIA_TYPE == "application/vnd.cyclonedx+json"


def test_network_is_blocked_here() -> None:
    with pytest.raises(NetworkUsed):
        socket.create_connection(("127.0.0.1", 9))


def test_file_names() -> None:
    assert file_names("x86_64") == ("sbom-x86_64.spdx.json", "sbom-x86_64.cdx.json")
    assert file_names("armv7") == ("sbom-armv7.spdx.json", "sbom-armv7.cdx.json")
    for bad in ("", "../x", "a/b", ".hidden", "x 86"):
        with pytest.raises(ValueError, match="architecture"):
            file_names(bad)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("created", -1, "created"),
        ("created", 10**12, "created"),
        ("image_name", " ", "image_name"),
        ("arch", "", "arch"),
    ],
)
def test_input_is_checked(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        image(**{field: value})


# --------------------------------------------------------------------------------------------
# whole documents, validated


def test_base_image_documents_are_valid(
    base_image: SbomInput, cdx_validator: Any, tmp_path: Path
) -> None:
    assert len(base_image.packages) >= 10
    assert_valid(spdx_json(base_image), cyclonedx_json(base_image), cdx_validator, tmp_path)


def test_spdx_content_as_spdx_tools_reads_it(base_image: SbomInput, tmp_path: Path) -> None:
    from spdx_tools.spdx.model.actor import ActorType
    from spdx_tools.spdx.model.package import PackagePurpose
    from spdx_tools.spdx.model.relationship import RelationshipType

    doc = spdx_document(spdx_json(base_image), tmp_path)
    info = doc.creation_info
    assert info.spdx_version == "SPDX-2.3"
    assert info.created.isoformat() == "2023-11-14T22:13:20"
    assert [c.to_serialized_string() for c in info.creators] == ["Tool: alpenglow-0.1.0"]
    assert info.document_namespace.startswith("https://spdx.org/spdxdocs/alpenglow/")
    packages = {p.spdx_id: p for p in doc.packages}
    assert packages["SPDXRef-Image"].primary_package_purpose == PackagePurpose.CONTAINER
    assert packages["SPDXRef-OperatingSystem"].version == "3.16.9"
    busybox = next(p for p in doc.packages if p.name == "busybox")
    real = next(p for p in base_image.packages if p.name == "busybox")
    assert busybox.version == real.version == "1.35.0-r17"
    assert [(c.algorithm.name, c.value) for c in busybox.checksums] == [
        ("SHA1", base64.b64decode(real.checksum[2:]).hex())
    ]
    assert [r.locator for r in busybox.external_references] == [
        "pkg:apk/alpine/busybox@1.35.0-r17?arch=x86_64&distro=alpine-3.16.9"
    ]
    assert str(busybox.license_declared) == "GPL-2.0-only"
    assert str(busybox.license_concluded) == "NOASSERTION"
    assert busybox.supplier.actor_type == ActorType.ORGANIZATION
    assert busybox.supplier.name == "Alpine Linux"
    assert busybox.originator.actor_type == ActorType.PERSON
    assert (busybox.originator.name, busybox.originator.email) == (
        "Sören Tempel",
        "soeren+alpine@soeren-tempel.net",
    )
    assert busybox.homepage == "https://busybox.net/"
    assert busybox.summary == real.description
    assert busybox.built_date.isoformat() == "2022-08-01T15:14:44"
    assert busybox.source_info.startswith("built from the source package busybox at commit ")
    assert busybox.files_analyzed is False

    edges = {
        (r.spdx_element_id, r.relationship_type, r.related_spdx_element_id)
        for r in doc.relationships
    }
    assert ("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-Image") in edges
    contained = {e[2] for e in edges if e[:2] == ("SPDXRef-Image", RelationshipType.CONTAINS)}
    assert contained == set(packages) - {"SPDXRef-Image"}
    ids = {p.name: p.spdx_id for p in doc.packages}
    depends = {(a, b) for a, kind, b in edges if kind == RelationshipType.DEPENDS_ON}
    # busybox needs so:libc.musl-x86_64.so.1 (provided by musl); apk-tools needs libcrypto1.1
    # through so:libcrypto.so.1.1; alpine-base needs the packages it names.
    assert (ids["busybox"], ids["musl"]) in depends
    assert (ids["apk-tools"], ids["libcrypto1.1"]) in depends
    assert (ids["alpine-base"], ids["alpine-baselayout"]) in depends
    assert all(a != b for a, b in depends)


def test_cyclonedx_content(base_image: SbomInput) -> None:
    doc = json.loads(cyclonedx_json(base_image))
    assert doc["specVersion"] == "1.5"
    assert doc["serialNumber"].startswith("urn:uuid:")
    metadata = doc["metadata"]
    assert metadata["timestamp"] == "2023-11-14T22:13:20Z"
    assert metadata["component"]["type"] == "container"
    assert metadata["component"]["name"] == "alpine-base:latest"
    components = {c["name"]: c for c in doc["components"]}
    assert components["alpine"]["type"] == "operating-system"
    busybox = components["busybox"]
    ref = "pkg:apk/alpine/busybox@1.35.0-r17?arch=x86_64&distro=alpine-3.16.9"
    assert busybox["purl"] == busybox["bom-ref"] == ref
    assert busybox["licenses"] == [{"license": {"id": "GPL-2.0-only"}}]
    assert busybox["hashes"][0]["alg"] == "SHA-1"
    assert busybox["supplier"]["name"] == "Alpine Linux"
    assert busybox["supplier"]["contact"] == [
        {"name": "Sören Tempel", "email": "soeren+alpine@soeren-tempel.net"}
    ]
    dependencies = {d["ref"]: d["dependsOn"] for d in doc["dependencies"]}
    all_refs = {c["bom-ref"] for c in doc["components"]}
    assert set(dependencies) == all_refs | {metadata["component"]["bom-ref"]}
    assert set(dependencies[metadata["component"]["bom-ref"]]) == all_refs
    assert components["musl"]["bom-ref"] in dependencies[ref]


def test_the_validators_do_reject_bad_documents(
    base_image: SbomInput, cdx_validator: Any, tmp_path: Path
) -> None:
    """The checks above are not vacuous: raw Alpine license text, a bad URL or a bad
    relationship target make the same validators complain."""
    spdx = json.loads(spdx_json(base_image))
    spdx["packages"][-1]["licenseDeclared"] = "GPL-2.0-or-later AND custom"
    assert any("custom" in m for m in spdx_messages(json.dumps(spdx).encode(), tmp_path))
    spdx = json.loads(spdx_json(base_image))
    spdx["relationships"].append(
        {
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-nope",
        }
    )
    assert spdx_messages(json.dumps(spdx).encode(), tmp_path) != []
    cdx = json.loads(cyclonedx_json(base_image))
    cdx["components"][-1]["licenses"] = [{"license": {"id": "custom"}}]
    assert cdx_errors(cdx_validator, json.dumps(cdx).encode()) != []
    cdx = json.loads(cyclonedx_json(base_image))
    cdx["components"][-1]["externalReferences"] = [
        {"type": "website", "url": "http://a.example/[x]"}
    ]
    assert cdx_errors(cdx_validator, json.dumps(cdx).encode()) != []


def test_empty_package_list(cdx_validator: Any, tmp_path: Path) -> None:
    empty = image()
    data_spdx, data_cdx = spdx_json(empty), cyclonedx_json(empty)
    assert_valid(data_spdx, data_cdx, cdx_validator, tmp_path)
    spdx = json.loads(data_spdx)
    assert [p["SPDXID"] for p in spdx["packages"]] == ["SPDXRef-Image"]
    assert [r["relationshipType"] for r in spdx["relationships"]] == ["DESCRIBES"]
    assert "hasExtractedLicensingInfos" not in spdx
    cdx = json.loads(data_cdx)
    assert cdx["components"] == []
    assert cdx["dependencies"] == [{"ref": "image:test:1", "dependsOn": []}]


def test_odd_packages_stay_valid(cdx_validator: Any, tmp_path: Path) -> None:
    """Collisions, missing fields, unusual text: the documents must still be valid."""
    odd = image(
        # "a+b" and "a-b" would get the same SPDX id, "X" and "x" the same purl
        pkg("a+b", license="Public Domain", maintainer="Nobody"),
        pkg("a-b", license="Public-Domain", maintainer="<only@mail.example>"),
        pkg("X", license="custom", url="http://localhost/", checksum="Q1notbase64!!"),
        pkg("x", license="Custom", url="https://example.com/a b", description="día ✓ \x07"),
        pkg("y", "2.0_rc1-r0", arch="", license="MIT and (BSD", checksum=""),
        pkg("z", license="LicenseRef-mine OR GPL-2.0+", maintainer="A (B) <a@b.example>"),
        pkg("w", license="GPL-2.0-only WITH Classpath-exception-2.0", build_time=-5),
        pkg("v", license="  MIT  ", installed_size=0),
        pkg("u", license="(MIT OR Apache-2.0) AND Zlib"),
        pkg("t", license="Linux-syscall-note"),  # an exception named as a license
        pkg("s", checksum="Q2" + base64.b64encode(bytes(32)).decode()),
        pkg("r", checksum="Q1" + base64.b64encode(bytes(32)).decode()),
        # the same package twice is described once
        pkg("v", license="  MIT  ", installed_size=0),
        os_version="3.22.4",
    )
    data_spdx, data_cdx = spdx_json(odd), cyclonedx_json(odd)
    assert_valid(data_spdx, data_cdx, cdx_validator, tmp_path)
    spdx = json.loads(data_spdx)
    assert len(spdx["packages"]) == 2 + 12
    assert len({p["SPDXID"] for p in spdx["packages"]}) == 14
    by_name = {p["name"]: p for p in spdx["packages"]}
    assert by_name["X"].get("homepage") is None  # localhost: not a URL we can vouch for
    assert by_name["x"].get("homepage") is None  # a space
    assert "checksums" not in by_name["X"]
    assert "checksums" not in by_name["y"]
    assert by_name["s"]["checksums"] == [{"algorithm": "SHA256", "checksumValue": "00" * 32}]
    assert by_name["r"]["checksums"] == [{"algorithm": "SHA256", "checksumValue": "00" * 32}]
    assert by_name["y"]["externalRefs"][0]["referenceLocator"] == (
        "pkg:apk/alpine/y@2.0_rc1-r0?arch=x86_64&distro=alpine-3.22.4"
    )
    assert "builtDate" not in by_name["w"]
    assert by_name["a-b"]["originator"] == "Person: only@mail.example (only@mail.example)"
    assert by_name["z"]["originator"] == "Person: A B (a@b.example)"
    assert by_name["z"]["licenseDeclared"] == "LicenseRef-mine OR GPL-2.0-or-later"
    assert by_name["w"]["licenseDeclared"] == "GPL-2.0-only WITH Classpath-exception-2.0"
    assert by_name["u"]["licenseDeclared"] == "(MIT OR Apache-2.0) AND Zlib"
    refs = [e["licenseId"] for e in spdx["hasExtractedLicensingInfos"]]
    assert len(refs) == len(set(refs))
    texts = {e["extractedText"] for e in spdx["hasExtractedLicensingInfos"]}
    assert texts >= {"Public Domain", "Public-Domain", "custom", "Custom", "MIT and (BSD"}
    cdx = json.loads(data_cdx)
    assert len({c["bom-ref"] for c in cdx["components"]}) == len(cdx["components"]) == 13
    licenses = {c["name"]: c.get("licenses") for c in cdx["components"]}
    assert licenses["u"] == [{"expression": "(MIT OR Apache-2.0) AND Zlib"}]
    assert licenses["z"] == [{"license": {"name": "LicenseRef-mine OR GPL-2.0+"}}]
    assert licenses["v"] == [{"license": {"id": "MIT"}}]
    assert licenses["s"] is None


# --------------------------------------------------------------------------------------------
# the whole real index: every package must give valid documents


def chunks(packages: Sequence[Package], size: int) -> Iterator[tuple[Package, ...]]:
    """Both validators slow down more than linearly with document size (spdx-tools: 160 s
    for the 4929 packages at once), so the index is checked in slices."""
    for start in range(0, len(packages), size):
        yield tuple(packages[start : start + size])


def test_whole_index_spdx_is_valid(alpine_packages: tuple[Package, ...], tmp_path: Path) -> None:
    assert len(alpine_packages) == 4929
    for part in chunks(alpine_packages, 250):
        data = spdx_json(image(*part, os_version="3.16.9"))
        assert spdx_messages(data, tmp_path) == [], part[0].name


def test_whole_index_cyclonedx_is_valid(
    alpine_packages: tuple[Package, ...], cdx_validator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strict schema check of every package, with one substitution for speed.

    jsonschema checks ``iri-reference`` with rfc3987-syntax, an Earley parser taking 0.07 to
    0.25 s per URL: 100 s for the 1438 homepages of this index. Here that one format is
    checked by ``_rfc3986_absolute``, which accepts only RFC 3986 absolute URIs (every one of
    which is an IRI, so this is stricter than the real check); the next test runs the real
    check on a sample that covers every shape of URL in the index.
    """
    from jsonschema.validators import Draft7Validator  # type: ignore[import-untyped]

    checkers = Draft7Validator.FORMAT_CHECKER.checkers
    monkeypatch.setitem(checkers, "iri-reference", (_rfc3986_absolute, ()))
    for part in chunks(alpine_packages, 250):
        data = cyclonedx_json(image(*part, os_version="3.16.9"))
        assert cdx_errors(cdx_validator, data) == [], part[0].name


_UNRESERVED = r"A-Za-z0-9._~\-"
_SUB_DELIMS = "!$&'()*+,;="


def _rfc3986_absolute(text: object) -> bool:
    """RFC 3986 ``absolute-URI [ "#" fragment ]`` for http, https and ftp with a reg-name
    host: written from the RFC's ABNF, separately from the module's own check."""
    if not isinstance(text, str):
        return True
    pct = "%[0-9A-Fa-f]{2}"
    pchar = f"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{pct})"
    reg_name = f"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{pct})*"
    pattern = (
        f"(?:https?|ftp)://{reg_name}(?::[0-9]*)?(?:/{pchar}*)*"
        f"(?:\\?(?:{pchar}|[/?])*)?(?:#(?:{pchar}|[/?])*)?"
    )
    return re.fullmatch(pattern, text) is not None


def test_homepages_pass_the_real_iri_check(alpine_packages: tuple[Package, ...]) -> None:
    """The real ``iri-reference`` check on one homepage of each shape in the index: scheme,
    port, query, fragment, percent-escape, unusual characters, and the longest."""
    from jsonschema.validators import Draft7Validator

    written = sorted({u for p in alpine_packages if (u := sbom._homepage(p.url))})
    assert len(written) == len({p.url for p in alpine_packages if p.url})  # none dropped
    shapes: dict[tuple[object, ...], str] = {}
    for url in written:
        shape = (
            url.split(":", 1)[0],
            bool(re.search(r"//[^/]*:\d", url)),
            "?" in url,
            "#" in url,
            "%" in url,
            frozenset(re.sub(r"[A-Za-z0-9/.:]", "", url)),
        )
        shapes.setdefault(shape, url)
    sample = set(shapes.values()) | {max(written, key=len)}
    checker = Draft7Validator.FORMAT_CHECKER
    assert [u for u in sorted(sample) if not checker.conforms(u, "iri-reference")] == []
    assert all(_rfc3986_absolute(u) for u in written)


# --------------------------------------------------------------------------------------------
# reproducibility


def test_same_input_same_bytes(base_image: SbomInput) -> None:
    first = spdx_json(base_image), cyclonedx_json(base_image)
    assert (spdx_json(base_image), cyclonedx_json(base_image)) == first
    shuffled = dataclasses.replace(base_image, packages=tuple(reversed(base_image.packages)))
    assert (spdx_json(shuffled), cyclonedx_json(shuffled)) == first
    # the seed changes only the namespace and the serial number
    other = dataclasses.replace(base_image, namespace_seed="sha256:" + "cd" * 32)
    spdx_a, spdx_b = json.loads(first[0]), json.loads(spdx_json(other))
    assert spdx_a["documentNamespace"] != spdx_b["documentNamespace"]
    spdx_b["documentNamespace"] = spdx_a["documentNamespace"]
    assert spdx_a == spdx_b
    cdx_a, cdx_b = json.loads(first[1]), json.loads(cyclonedx_json(other))
    assert cdx_a["serialNumber"] != cdx_b["serialNumber"]
    cdx_b["serialNumber"] = cdx_a["serialNumber"]
    assert cdx_a == cdx_b
    later = dataclasses.replace(base_image, created=EPOCH + 86400)
    assert json.loads(spdx_json(later))["creationInfo"]["created"] == "2023-11-15T22:13:20Z"
    assert json.loads(cyclonedx_json(later))["metadata"]["timestamp"] == "2023-11-15T22:13:20Z"


_DIGEST_SCRIPT = """
import hashlib, sys
from alpenglow.apk.dependency import parse_list
from alpenglow.apk.index import Package
from alpenglow.build.sbom import SbomInput, cyclonedx_json, spdx_json
pkgs = tuple(
    Package(name=n, version="1-r0", arch="x86_64", license=lic, depends=parse_list(d),
            provides=parse_list(p))
    for n, lic, d, p in [
        ("a", "Public Domain", "so:x cmd:y", ""), ("b", "Public-Domain custom", "", "so:x=1"),
        ("c", "MIT custom:z", "a b", "cmd:y"), ("d", "unknown", "so:x", "so:x=2"),
    ]
)
s = SbomInput("img:1", "x86_64", pkgs, 0, "seed", "3.20.0")
print(hashlib.sha256(spdx_json(s) + cyclonedx_json(s)).hexdigest())
"""


def test_same_bytes_across_processes() -> None:
    """Set and dict order must not leak into the output: different hash seeds, same bytes."""
    digests = set()
    for seed in ("1", "2", "3"):
        result = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO / "src")},
        )
        digests.add(result.stdout.strip())
    assert len(digests) == 1


# --------------------------------------------------------------------------------------------
# purls


@pytest.mark.parametrize(
    ("name", "version", "arch", "os_version", "expected"),
    [
        ("busybox", "1.37.0-r30", "x86_64", "", "pkg:apk/alpine/busybox@1.37.0-r30?arch=x86_64"),
        (
            "busybox",
            "1.37.0-r30",
            "x86_64",
            "3.22.4",
            "pkg:apk/alpine/busybox@1.37.0-r30?arch=x86_64&distro=alpine-3.22.4",
        ),
        ("foo", "1.2_rc1-r0", "aarch64", "", "pkg:apk/alpine/foo@1.2_rc1-r0?arch=aarch64"),
        ("libstdc++", "12-r0", "armv7", "", "pkg:apk/alpine/libstdc%2B%2B@12-r0?arch=armv7"),
        ("gtk+3.0", "3.24.34-r0", "x86", "", "pkg:apk/alpine/gtk%2B3.0@3.24.34-r0?arch=x86"),
        (
            "freeswitch-sounds-ru-RU-elena-8000",
            "1.0.12-r1",
            "x86_64",
            "",
            "pkg:apk/alpine/freeswitch-sounds-ru-ru-elena-8000@1.0.12-r1?arch=x86_64",
        ),
        (
            "a",
            "1.0_git20220101~ab12-r0",
            "s390x",
            "",
            "pkg:apk/alpine/a@1.0_git20220101~ab12-r0?arch=s390x",
        ),
        (
            "so:odd name",
            "1:2#3",
            "ppc64le",
            "",
            "pkg:apk/alpine/so:odd%20name@1:2%233?arch=ppc64le",
        ),
        ("ünï", "1.0-r0", "", "", "pkg:apk/alpine/%C3%BCn%C3%AF@1.0-r0"),
        (
            "noarch-pkg",
            "1-r0",
            "noarch",
            "3.16.9",
            "pkg:apk/alpine/noarch-pkg@1-r0?arch=noarch&distro=alpine-3.16.9",
        ),
    ],
)
def test_purl(name: str, version: str, arch: str, os_version: str, expected: str) -> None:
    text = purl(name, version, arch, os_version)
    assert text == expected
    # packageurl-python (the reference implementation) reads back what was meant
    parsed = PackageURL.from_string(text)
    assert (parsed.type, parsed.namespace, parsed.name, parsed.version) == (
        "apk",
        "alpine",
        name.lower(),
        version,
    )
    qualifiers = {"arch": arch, "distro": f"alpine-{os_version}" if os_version else ""}
    assert parsed.qualifiers == {k: v for k, v in qualifiers.items() if v}
    # packageurl-python writes the percent-escapes of apk names in lowercase hex; RFC 3986
    # (2.1) prefers uppercase, which is what we write. Otherwise the text is the same.
    written = parsed.to_string()
    assert re.sub("%[0-9a-f]{2}", lambda m: m.group().upper(), written) == text


def test_package_without_arch_uses_the_image_arch() -> None:
    doc = json.loads(cyclonedx_json(image(pkg("foo", arch=""), arch="riscv64")))
    assert doc["components"][0]["purl"] == "pkg:apk/alpine/foo@1.0-r0?arch=riscv64"


# --------------------------------------------------------------------------------------------
# licenses


@pytest.mark.parametrize(
    ("alpine", "spdx"),
    [
        # taken from Alpine 3.16 main's L: fields
        ("MIT", "MIT"),
        ("GPL-2.0-only", "GPL-2.0-only"),
        ("GPL-2.0", "GPL-2.0-only"),
        ("GPL-3.0+", "GPL-3.0-or-later"),
        ("GPLv2+", "GPL-2.0-or-later"),
        ("GPL-2-or-later AND LGPL-2-or-later", "GPL-2.0-or-later AND LGPL-2.0-or-later"),
        ("LGPL-2.1", "LGPL-2.1-only"),
        ("BSD-2-CLause", "BSD-2-Clause"),
        ("BSD-3-Clause OR GPL-2.0-Only", "BSD-3-Clause OR GPL-2.0-only"),
        ("ZLib", "Zlib"),
        ("MIT BSD", "MIT AND LicenseRef-BSD"),
        (
            "Apache-2.0 GPL-3.0-or-later LGPL-3.0-or-later",
            "Apache-2.0 AND GPL-3.0-or-later AND LGPL-3.0-or-later",
        ),
        ("GPL-2.0+, LGPL-2.1+, Zlib", "GPL-2.0-or-later AND LGPL-2.1-or-later AND Zlib"),
        ("GPL-2.0 or Artistic", "GPL-2.0-only OR LicenseRef-Artistic"),
        ("Artistic-Perl-1.0 GPL+", "Artistic-1.0-Perl AND GPL-1.0-or-later"),
        ("GPL-1.0-or-later or Artistic-1.0-Perl", "GPL-1.0-or-later OR Artistic-1.0-Perl"),
        ("ISC AND ( BSD-3-Clause OR MIT )", "ISC AND (BSD-3-Clause OR MIT)"),
        (
            "(GPL-2.0-or-later OR Artistic-1.0-Perl) AND GPL-2.0-or-later AND ZLib",
            "(GPL-2.0-or-later OR Artistic-1.0-Perl) AND GPL-2.0-or-later AND Zlib",
        ),
        (
            "LPPL-1.3c AND GPL-2.0-only WITH Font-exception-2.0",
            "LPPL-1.3c AND GPL-2.0-only WITH Font-exception-2.0",
        ),
        (
            "BSD-2-Clause AND BSD-3-Clause AND Public-Domain",
            "BSD-2-Clause AND BSD-3-Clause AND LicenseRef-Public-Domain",
        ),
        ("custom", "LicenseRef-custom"),
        ("custom:multiple", "LicenseRef-custom-multiple"),
        ("Public Domain", "LicenseRef-Public-Domain"),
        ("GPL LGPL", "LicenseRef-GPL-LGPL"),
        ("osf-1990(variant)", "LicenseRef-osf-1990-variant"),
        ("BSD with advertising", "LicenseRef-BSD-with-advertising"),
        ("GPL-3.0-or-later with exception", "LicenseRef-GPL-3.0-or-later-with-exception"),
        ("GPL-2.0-only WITH OpenSSL-Exception", "LicenseRef-GPL-2.0-only-WITH-OpenSSL-Exception"),
        (
            "GPL-3.0-or-later AND GPL-2.0-or-later AND GPL-2.0-only AND",
            "LicenseRef-GPL-3.0-or-later-AND-GPL-2.0-or-later-AND-GPL-2.0-only-AND",
        ),
        ("GPL-2.1-only", "LicenseRef-GPL-2.1-only"),
        ("eCos-2.0", "LicenseRef-eCos-2.0"),
        ("LGPL+", "LicenseRef-LGPL-plus"),
        ("", "NOASSERTION"),
    ],
)
def test_license_expression(alpine: str, spdx: str) -> None:
    assert license_expression(alpine) == spdx


def test_every_license_of_the_index_maps(alpine_packages: tuple[Package, ...]) -> None:
    """All 228 distinct L: values: the expression is valid for the licensing library that
    spdx-tools uses, and everything without an SPDX id is a LicenseRef."""
    from license_expression import get_spdx_licensing  # type: ignore[import-untyped]

    licensing = get_spdx_licensing()
    texts = sorted({p.license for p in alpine_packages})
    assert len(texts) == 228
    mapped = {text: license_expression(text) for text in texts}
    exact = [t for t, m in mapped.items() if m == t]
    refs = [t for t, m in mapped.items() if "LicenseRef-" in m]
    for text, expression in mapped.items():
        if expression == "NOASSERTION":
            continue
        licensing.parse(expression, validate=False, strict=True)
        unknown = licensing.validate(expression).invalid_symbols
        assert all(s.startswith("LicenseRef-") for s in unknown), (text, expression, unknown)
    # most values are already SPDX; the rest are kept, as LicenseRefs, never dropped
    assert len(exact) > 100
    assert len(refs) < 70


def test_license_tables_agree_with_both_validators(cdx_validator: Any) -> None:
    from spdx_tools.common.spdx_licensing import (  # type: ignore[import-untyped]
        spdx_licensing,
    )

    for ident in LICENSE_IDS:
        assert spdx_licensing.validate(ident).invalid_symbols == [], ident
        spdx_licensing.parse(ident, validate=True, strict=True)  # a license, not an exception
    for ident in EXCEPTION_IDS:
        spdx_licensing.parse(f"MIT WITH {ident}", validate=True, strict=True)
    # every license id is in the CycloneDX 1.5 SPDX enumeration
    components = [
        {
            "type": "library",
            "bom-ref": ident,
            "name": ident,
            "licenses": [{"license": {"id": ident}}],
        }
        for ident in sorted(LICENSE_IDS)
    ]
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "components": components,
    }
    assert cdx_errors(cdx_validator, json.dumps(document).encode()) == []
    expressions = [
        {"type": "library", "bom-ref": e, "name": e, "licenses": [{"expression": f"MIT WITH {e}"}]}
        for e in sorted(EXCEPTION_IDS)
    ]
    document["components"] = expressions
    assert cdx_errors(cdx_validator, json.dumps(document).encode()) == []


# --------------------------------------------------------------------------------------------
# checksums


def test_identity_checksum_is_the_sha1_of_the_control_segment() -> None:
    """Build a real v2 package: the SPDX/CycloneDX checksum equals SHA-1 over the compressed
    bytes of its second gzip member (the control segment), and is not the file's SHA-1."""
    info = PackageInfo(Package(name="hello", version="1.0-r0", arch="x86_64", license="MIT"))
    data = write_package(
        [TarEntry("usr/bin/hello", data=b"#!/bin/sh\necho hi\n", mode=0o755)], info, None
    )
    apk = read_package(data, None, source="hello.apk", allow_untrusted=True)
    control = split_gzip(data)[0].compressed  # unsigned: control, then data
    assert identity_checksum(apk.package.checksum) == ("SHA1", hashlib.sha1(control).hexdigest())
    assert hashlib.sha1(data).hexdigest() != hashlib.sha1(control).hexdigest()
    doc = json.loads(spdx_json(image(apk.package)))
    assert doc["packages"][1]["checksums"] == [
        {"algorithm": "SHA1", "checksumValue": hashlib.sha1(control).hexdigest()}
    ]
    cdx = json.loads(cyclonedx_json(image(apk.package)))
    assert cdx["components"][0]["hashes"] == [
        {"alg": "SHA-1", "content": hashlib.sha1(control).hexdigest()}
    ]


@pytest.mark.parametrize("bad", ["", "Q1", "Q1!!!", "X1abcd", "Q1" + "A" * 10, "Q2AAAA"])
def test_identity_checksum_rejects(bad: str) -> None:
    assert identity_checksum(bad) is None


# --------------------------------------------------------------------------------------------
# dependencies


def _depends_on(data: bytes) -> set[tuple[str, str]]:
    doc = json.loads(data)
    names = {p["SPDXID"]: p["name"] for p in doc["packages"]}
    return {
        (names[r["spdxElementId"]], names[r["relatedSpdxElement"]])
        for r in doc["relationships"]
        if r["relationshipType"] == "DEPENDS_ON"
    }


def test_dependencies_resolve_through_names_and_provides() -> None:
    musl = pkg("musl", "1.2.5-r0", provides="so:libc.musl-x86_64.so.1=1")
    binsh = pkg("busybox-binsh", "1.37.0-r0", provides="/bin/sh cmd:sh=1.37.0-r0")
    old = pkg("libold", "1.0-r0", provides="libfoo")  # provides without a version
    new = pkg("libnew", "2.0-r0", provides="libfoo=2.0")
    app = pkg(
        "app",
        depends=("so:libc.musl-x86_64.so.1 /bin/sh musl>=1.2 libfoo>=2 !busybox-binsh missing app"),
    )
    identity = "Q1" + base64.b64encode(bytes(20)).decode()
    pinned = pkg("pinned", depends="musl><" + identity)  # musl has another identity
    pinned_ok = pkg("pinned-ok", depends="libold><" + identity)
    libold_with_id = dataclasses.replace(old, checksum=identity)
    edges = _depends_on(spdx_json(image(musl, binsh, libold_with_id, new, app, pinned, pinned_ok)))
    assert edges == {
        ("app", "musl"),  # through so:libc... and by name
        ("app", "busybox-binsh"),  # /bin/sh; the conflict !busybox-binsh adds nothing
        ("app", "libnew"),  # libfoo>=2: only the versioned provide qualifies
        ("pinned-ok", "libold"),  # identity pin that matches
    }
    cdx = json.loads(cyclonedx_json(image(musl, binsh, libold_with_id, new, app)))
    by_ref = {d["ref"]: d["dependsOn"] for d in cdx["dependencies"]}
    app_ref = purl("app", "1.0-r0", "x86_64")
    assert by_ref[app_ref] == sorted(
        purl(n, v, "x86_64")
        for n, v in [("musl", "1.2.5-r0"), ("busybox-binsh", "1.37.0-r0"), ("libnew", "2.0-r0")]
    )
