"""Pushing and pulling with a real registry (Debian's docker-registry), checked from outside
with skopeo: the multi-architecture fixture image made by ``alpenglow build``, Docker v2
schema 2 media types, digests and platforms, tag pages, deletion, and the two kinds of
registry auth (htpasswd basic, and tokens from an issuer)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from alpenglow.distribution.auth import Credential
from alpenglow.distribution.client import RegistryClient
from alpenglow.distribution.reference import parse_reference
from alpenglow.distribution.transfer import pull, push
from alpenglow.errors import RegistryError
from alpenglow.oci.image import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    ImageBundle,
    image_bundle,
    index_bundle,
)
from alpenglow.oci.platform import parse_platform
from alpenglow.oci.transport import read_oci
from tests.distribution.conftest import PASSWORD, USER
from tests.oci.images import config_for, layer_tar, make_index, skopeo
from tests.support.registry import FAST_RETRY, Outcomes, RegistryServer


def assert_same(pulled: ImageBundle, pushed: ImageBundle) -> None:
    assert pulled.root == pushed.root
    assert pulled.digests() == pushed.digests()
    for digest in pushed.digests():
        assert pulled.blob(digest) == pushed.blob(digest)


def skopeo_raw(ref: str, *extra: str) -> bytes:
    done = skopeo("inspect", "--tls-verify=false", "--raw", *extra, f"docker://{ref}")
    return done.stdout.encode()


def docker_v2_image() -> ImageBundle:
    """A two-platform image with Docker's media types (manifest list, v2 schema 2)."""
    images = []
    for arch in ("x86_64", "aarch64"):
        raw = layer_tar({"etc/arch": f"{arch}\n"})
        diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        images.append(
            image_bundle(
                config_for(arch, [diff_id]),
                [(DOCKER_LAYER_GZIP, gzip.compress(raw, mtime=0))],
                config_media_type=DOCKER_CONFIG,
                manifest_media_type=DOCKER_MANIFEST,
            )
        )
    return index_bundle(images, media_type=DOCKER_MANIFEST_LIST)


# --------------------------------------------------------------------------------------------
# The multi-architecture fixture image


def test_push_and_pull_back_the_fixture_image(
    registry: RegistryServer, fixture_image: ImageBundle
) -> None:
    ref = parse_reference(f"{registry.host}/alpine/base:latest")
    assert len(fixture_image.images()) >= 2
    with RegistryClient(registry.host, retry=FAST_RETRY) as client:
        first = Outcomes()
        root = push(fixture_image, ref, client, progress=first)
        assert root.digest == fixture_image.root.digest
        assert set(first.outcomes.values()) == {"uploaded"}
        again = Outcomes()
        push(fixture_image, ref, client, progress=again)
        assert set(again.outcomes.values()) == {"exists"}
        assert_same(pull(ref, client), fixture_image)
        by_digest = pull(ref.with_digest(root.digest), client)
        assert by_digest.root.digest == root.digest
    # the registry keeps exactly our bytes
    for digest in fixture_image.digests():
        path = registry.blob_path(digest)
        assert path.read_bytes() == fixture_image.blob(digest)


def test_skopeo_inspects_what_we_pushed(
    registry: RegistryServer, fixture_image: ImageBundle
) -> None:
    ref = f"{registry.host}/alpine/base:latest"
    with RegistryClient(registry.host, retry=FAST_RETRY) as client:
        push(fixture_image, parse_reference(ref), client)
    raw = skopeo_raw(ref)
    assert hashlib.sha256(raw).hexdigest() == fixture_image.root.digest.partition(":")[2]
    index = json.loads(raw)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["digest"] for m in index["manifests"]] == [
        i.descriptor.digest for i in fixture_image.images()
    ]
    for image in fixture_image.images():
        platform = image.platform
        extra = ["--override-os", platform.os, "--override-arch", platform.architecture]
        if platform.variant:
            extra += ["--override-variant", platform.variant]
        info = json.loads(skopeo(*extra, "inspect", "--tls-verify=false", f"docker://{ref}").stdout)
        assert info["Architecture"] == platform.architecture
        assert info["Layers"] == [layer.digest for layer in image.manifest.layers]


def test_skopeo_copies_what_we_pushed_into_a_layout(
    registry: RegistryServer, fixture_image: ImageBundle, tmp_path: Path
) -> None:
    ref = f"{registry.host}/alpine/base:1"
    with RegistryClient(registry.host, retry=FAST_RETRY) as client:
        push(fixture_image, parse_reference(ref), client)
    skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path}:copied")
    copied = read_oci(tmp_path, "copied")
    assert_same(copied, fixture_image)


def test_we_pull_what_skopeo_pushed(
    registry: RegistryServer, fixture_layout: Path, fixture_image: ImageBundle
) -> None:
    ref = f"{registry.host}/by/skopeo:1"
    skopeo(
        "copy",
        "--all",
        "--dest-tls-verify=false",
        f"oci:{fixture_layout}:latest",
        f"docker://{ref}",
    )
    with RegistryClient(registry.host, retry=FAST_RETRY) as client:
        assert_same(pull(parse_reference(ref), client), fixture_image)
        arm = pull(parse_reference(ref), client, platform=parse_platform("linux/arm64"))
    assert arm.root.platform is not None
    assert arm.root.platform.architecture == "arm64"
    assert [str(p) for p in arm.platforms()] == ["linux/arm64/v8"]


def test_docker_v2_schema_2_media_types_survive(registry: RegistryServer) -> None:
    bundle = docker_v2_image()
    ref = f"{registry.host}/docker/types:1"
    with RegistryClient(registry.host, retry=FAST_RETRY) as client:
        push(bundle, parse_reference(ref), client)
        desc = client.head_manifest("docker/types", "1")
        assert desc is not None
        assert desc.media_type == DOCKER_MANIFEST_LIST
        pulled = pull(parse_reference(ref), client)
    assert_same(pulled, bundle)
    assert json.loads(skopeo_raw(ref))["mediaType"] == DOCKER_MANIFEST_LIST
    child = bundle.images()[0].descriptor.digest
    child_raw = skopeo_raw(f"{registry.host}/docker/types@{child}")
    assert json.loads(child_raw)["mediaType"] == DOCKER_MANIFEST


def test_tag_pages_and_deletion(registry: RegistryServer) -> None:
    bundle = make_index(("x86_64",))
    tags = [f"v{n}" for n in range(7)]
    with RegistryClient(registry.host, retry=FAST_RETRY) as client:
        for tag in tags:
            push(bundle, parse_reference(f"{registry.host}/paged/repo:{tag}"), client)
        assert sorted(client.list_tags("paged/repo", page_size=2)) == tags
        assert sorted(client.list_tags("paged/repo")) == tags
        client.delete_manifest("paged/repo", bundle.root.digest)
        assert client.head_manifest("paged/repo", bundle.root.digest) is None
        with pytest.raises(RegistryError, match=r"paged/repo: manifest v1: HTTP 404"):
            pull(parse_reference(f"{registry.host}/paged/repo:v1"), client)


# --------------------------------------------------------------------------------------------
# Auth


def test_basic_auth(basic_registry: RegistryServer) -> None:
    bundle = make_index()
    ref = parse_reference(f"{basic_registry.host}/private/app:1")
    with RegistryClient(basic_registry.host, retry=FAST_RETRY) as anonymous:
        with pytest.raises(RegistryError) as caught:
            push(bundle, ref, anonymous)
        assert caught.value.status == 401
        assert "private/app" in str(caught.value)
        assert caught.value.hint is not None
        assert "alpenglow login" in caught.value.hint
    good = Credential(USER, PASSWORD)
    with RegistryClient(basic_registry.host, credentials=good, retry=FAST_RETRY) as client:
        client.check_login()
        push(bundle, ref, client)
        assert_same(pull(ref, client), bundle)
    wrong = Credential(USER, "not the password")
    with RegistryClient(basic_registry.host, credentials=wrong, retry=FAST_RETRY) as client:
        with pytest.raises(RegistryError) as caught:
            client.check_login()
        assert caught.value.status == 401
        with pytest.raises(RegistryError) as caught:
            pull(ref, client)
        message = f"{caught.value} {caught.value.hint}"
        assert "not the password" not in message
        assert "\n" not in str(caught.value)
    done = skopeo(
        "inspect", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}", f"docker://{ref}"
    )
    assert json.loads(done.stdout)["Digest"] == bundle.root.digest


def test_token_auth(token_registry: RegistryServer) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    bundle = make_index()
    ref = parse_reference(f"{token_registry.host}/team/app:1")
    good = Credential(USER, PASSWORD)
    with RegistryClient(token_registry.host, credentials=good, retry=FAST_RETRY) as client:
        client.check_login()
        push(bundle, ref, client)
        assert_same(pull(ref, client), bundle)
    granted = {g for r in issuer.requests for g in r.granted}
    assert "repository:team/app:pull,push" in granted
    assert all(r.account == USER for r in issuer.requests)

    wrong = Credential(USER, "guess")
    with RegistryClient(token_registry.host, credentials=wrong, retry=FAST_RETRY) as client:
        with pytest.raises(RegistryError, match="refused the credentials: HTTP 401") as caught:
            pull(ref, client)
        assert "guess" not in f"{caught.value} {caught.value.hint}"
        assert "\n" not in str(caught.value)
        with pytest.raises(RegistryError, match="refused the credentials"):
            client.check_login()

    with RegistryClient(token_registry.host, retry=FAST_RETRY) as anonymous:
        with pytest.raises(RegistryError) as caught:
            pull(ref, anonymous)
        assert caught.value.status == 401
    done = skopeo(
        "inspect", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}", f"docker://{ref}"
    )
    assert json.loads(done.stdout)["Digest"] == bundle.root.digest


def test_token_auth_public_repository_and_mounts(token_registry: RegistryServer) -> None:
    bundle = make_index()
    public = parse_reference(f"{token_registry.host}/public/alpine:3")
    good = Credential(USER, PASSWORD)
    with RegistryClient(token_registry.host, credentials=good, retry=FAST_RETRY) as client:
        push(bundle, public, client)
        mounted = Outcomes()
        push(
            bundle,
            parse_reference(f"{token_registry.host}/team/copy:3"),
            client,
            mount_from="public/alpine",
            progress=mounted,
        )
        assert set(mounted.outcomes.values()) == {"mounted"}
    with RegistryClient(token_registry.host, retry=FAST_RETRY) as anonymous:
        assert_same(pull(public, anonymous), bundle)  # anyone may pull it
        with pytest.raises(RegistryError) as caught:  # nobody may push without logging in
            push(make_index(("armv7",)), public, anonymous)
        assert caught.value.status == 401
