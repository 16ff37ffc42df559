"""The registry commands end to end, as a user runs them: ``alpenglow push|pull|copy|tag|ls|
digest|manifest|login|logout|release`` against Debian's docker-registry on 127.0.0.1, with a
private image store and auth file per test, and skopeo checking the results."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from alpenglow.build.builder import SBOM_ARTIFACT
from alpenglow.build.sbom import CYCLONEDX_MEDIA_TYPE, SPDX_MEDIA_TYPE
from alpenglow.cli.distribution import TRANSFERS, help_text, parse_args
from alpenglow.distribution.transfer import referrers_tag
from alpenglow.errors import UsageError
from alpenglow.oci.image import OCI_INDEX, OCI_MANIFEST, ImageBundle, index_bundle
from alpenglow.oci.layout import Layout
from alpenglow.oci.store import ImageStore
from alpenglow.oci.transport import read_docker_archive, read_oci, read_oci_archive, write_oci
from tests.distribution.conftest import (  # the registry fixtures, shared
    PASSWORD,
    USER,
    basic_registry,
    fixture_image,
    fixture_layout,
    registry,
    token_registry,
)
from tests.oci.images import make_image, make_index, skopeo
from tests.support.registry import RegistryServer

__all__ = ["basic_registry", "fixture_image", "fixture_layout", "registry", "token_registry"]

ALPENGLOW = Path(sys.executable).parent / "alpenglow"


class Cli:
    """``alpenglow`` with its own store, auth file and empty Docker config."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.store_path = home / "store"
        self.auth_file = home / "auth.json"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("ALPENGLOW_", "DOCKER_"))
        }
        self.env.update(
            {
                "ALPENGLOW_STORE": str(self.store_path),
                "ALPENGLOW_AUTH_FILE": str(self.auth_file),
                "DOCKER_CONFIG": str(home / "docker"),
                "HOME": str(home),
            }
        )

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ALPENGLOW), *args],
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def ok(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = self(*args, input=input)
        assert done.returncode == 0, f"alpenglow {' '.join(args)}:\n{done.stderr}"
        return done

    def fails(self, *args: str, input: str | None = None, status: int = 1) -> str:
        """Run a command that must fail with one ``ERROR:`` line, maybe followed by a hint."""
        done = self(*args, input=input)
        assert done.returncode == status, f"{done.returncode}: {done.stdout}{done.stderr}"
        lines = done.stderr.strip().splitlines()
        assert "Traceback" not in done.stderr
        errors = [i for i, line in enumerate(lines) if line.startswith(("ERROR: ", "Error: "))]
        assert len(errors) == 1, done.stderr
        after = lines[errors[0] + 1 :]  # only a hint may follow (a caret under the input)
        assert not after or after[0].startswith("hint: "), done.stderr
        return done.stderr

    @property
    def store(self) -> ImageStore:
        return ImageStore(self.store_path)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


@pytest.fixture
def small_layout(tmp_path: Path) -> Path:
    layout = tmp_path / "small"
    write_oci(make_index(), layout, ["latest"])
    return layout


def skopeo_digest(ref: str, *creds: str) -> str:
    raw = skopeo("inspect", "--tls-verify=false", "--raw", *creds, f"docker://{ref}").stdout
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# push, pull, copy


def test_push_the_fixture_image_and_pull_it_back(
    cli: Cli, registry: RegistryServer, fixture_layout: Path, fixture_image: ImageBundle
) -> None:
    ref = f"{registry.host}/alpine/base:3.21"
    done = cli.ok("push", f"oci:{fixture_layout}:latest", ref)
    digest = fixture_image.root.digest
    assert done.stdout == f"3.21: digest: {digest} size: {fixture_image.root.size}\n"
    blobs = {d for i in fixture_image.images() for d in (i.manifest.config.digest,)}
    for digest_ in blobs:  # one plain line per blob on stderr (not a terminal)
        assert f"{digest_[7:19]}: pushed (" in done.stderr
    assert skopeo_digest(ref) == digest

    again = cli.ok("push", f"oci:{fixture_layout}:latest", f"docker://{ref}")
    assert "pushed" not in again.stderr
    assert "already exists" in again.stderr

    pulled = cli.ok("pull", ref)
    assert pulled.stdout.splitlines() == [
        f"Digest: {digest}",
        f"Status: Downloaded newer image for {ref}",
        ref,
    ]
    assert cli.store.resolve(ref).digest == digest
    images = cli.ok("images").stdout
    assert f"{registry.host}/alpine/base" in images
    assert "3.21" in images
    up_to_date = cli.ok("pull", ref)
    assert f"Status: Image is up to date for {ref}" in up_to_date.stdout

    # and from the store back to another repository
    cli.ok("push", ref, f"{registry.host}/alpine/again:1")
    assert skopeo_digest(f"{registry.host}/alpine/again:1") == digest


def raw_manifest(reference: str) -> dict[str, Any]:
    done = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{reference}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def registry_blob(host: str, repository: str, digest: str) -> bytes:
    with urllib.request.urlopen(f"http://{host}/v2/{repository}/blobs/{digest}") as answer:
        return answer.read()  # type: ignore[no-any-return]


def test_push_carries_the_sboms(
    cli: Cli, registry: RegistryServer, fixture_layout: Path, fixture_image: ImageBundle
) -> None:
    """An image pushed from the store (or an oci: layout) takes the SBOM artifacts kept with
    it, found on a registry without the referrers API by the tag sha256-<hex> of each
    platform's manifest."""
    layout = Layout.open(fixture_layout)
    platforms = {image.descriptor.digest for image in fixture_image.images()}
    kept = layout.referrers(platforms)
    assert len(kept) == len(platforms)  # `alpenglow build`: one SBOM artifact per platform
    cli.store.add(
        fixture_image, ["alpine-base:sbom"], referrers=[layout.bundle_for(e) for e in kept]
    )
    host, repository = registry.host, "alpine/sbom"
    cli.ok("push", "alpine-base:sbom", f"{host}/{repository}:1")
    for digest in platforms:
        listing = raw_manifest(f"{host}/{repository}:{referrers_tag(digest)}")
        assert listing["mediaType"] == OCI_INDEX
        (entry,) = listing["manifests"]
        assert entry["artifactType"] == SBOM_ARTIFACT
        assert entry["mediaType"] == OCI_MANIFEST
        manifest = raw_manifest(f"{host}/{repository}@{entry['digest']}")
        assert manifest["subject"]["digest"] == digest
        assert entry["annotations"] == manifest["annotations"]
        layers = manifest["layers"]
        assert sorted(layer["mediaType"] for layer in layers) == sorted(
            [SPDX_MEDIA_TYPE, CYCLONEDX_MEDIA_TYPE]
        )
        for layer in layers:
            sent = registry_blob(host, repository, layer["digest"])
            assert sent == cli.store.layout.get_blob(layer["digest"])
            assert json.loads(sent)  # an SBOM document
    tags = cli.ok("ls", f"{host}/{repository}").stdout.split()
    assert sorted(tags) == sorted(["1", *(referrers_tag(d) for d in platforms)])
    assert skopeo_digest(f"{host}/{repository}:1") == fixture_image.root.digest

    # again: every list is read and left as it is; another tag of the same image too
    again = cli.ok("push", "alpine-base:sbom", f"{host}/{repository}:2")
    assert "pushed" not in again.stderr
    assert sorted(cli.ok("ls", f"{host}/{repository}").stdout.split()) == sorted([*tags, "2"])

    # from the oci: layout the build wrote; with --no-referrers the image alone
    source = f"oci:{fixture_layout}:latest"
    cli.ok("push", source, f"{host}/from/layout:1")
    listed = cli.ok("ls", f"{host}/from/layout").stdout.split()
    assert sorted(listed) == sorted(["1", *(referrers_tag(d) for d in platforms)])
    cli.ok("push", "--no-referrers", source, f"{host}/alone/img:1")
    cli.ok("copy", "--no-referrers", source, f"docker://{host}/alone/img:2")
    assert cli.ok("ls", f"{host}/alone/img").stdout.split() == ["1", "2"]
    cli.ok("copy", source, f"docker://{host}/copied/img:1")
    assert len(cli.ok("ls", f"{host}/copied/img").stdout.split()) == 1 + len(platforms)

    # copy keeps them between the store and oci: layouts too (not in archives)
    other = Cli(cli.home.parent / "other")  # an empty store
    other.ok("copy", source, "copied:local")
    other.ok("copy", "copied:local", f"oci:{other.home}/out:x")
    other.ok("copy", "--no-referrers", source, f"oci:{other.home}/bare:x")
    for digest in platforms:
        (artifact,) = other.store.referrers(digest)
        assert artifact.digest in {e.digest for e in kept}
        assert Layout.open(other.home / "out").referrers({digest}) == (artifact,)

    # a release carries them as push does (before any tag moves), or not with --no-referrers
    release_tags = ["3.22.4", "3.22", "3", "latest"]
    cli.ok("release", "push", "alpine-base:sbom", f"{host}/rel/a", "--version", "3.22.4")
    assert sorted(cli.ok("ls", f"{host}/rel/a").stdout.split()) == sorted(
        [*release_tags, *(referrers_tag(d) for d in platforms)]
    )
    cli.ok(
        "release",
        "push",
        "alpine-base:sbom",
        f"{host}/rel/b",
        "--version",
        "3.22.4",
        "--no-referrers",
    )
    assert sorted(cli.ok("ls", f"{host}/rel/b").stdout.split()) == sorted(release_tags)
    assert Layout.open(other.home / "bare").referrers(platforms) == ()
    assert read_oci(other.home / "out", "x").root.digest == fixture_image.root.digest


def test_a_corrupt_sbom_stops_a_copy_before_anything_is_written(
    cli: Cli, fixture_layout: Path, tmp_path: Path
) -> None:
    """The SBOMs kept with an image are checked before the image is written anywhere: a
    corrupt one leaves no half-made layout and an untouched store."""
    source = tmp_path / "source"
    shutil.copytree(fixture_layout, source)
    layout = Layout.open(source)
    image = read_oci(source, "latest")
    platforms = {i.descriptor.digest for i in image.images()}
    artifact = layout.bundle_for(layout.referrers(platforms)[0])
    sbom = json.loads(artifact.blob(artifact.root.digest))["layers"][0]["digest"]
    blob = source / "blobs" / "sha256" / sbom.partition(":")[2]
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-8] + b"tampered")

    done = cli("copy", f"oci:{source}:latest", f"oci:{tmp_path}/out:x")
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: ")
    assert f"blob {sbom} is corrupt" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()

    done = cli("copy", f"oci:{source}:latest", "kept:x")
    assert done.returncode == 1
    assert f"blob {sbom} is corrupt" in done.stderr
    assert cli.ok("images").stdout.splitlines()[1:] == []


def test_pull_one_platform(cli: Cli, registry: RegistryServer, small_layout: Path) -> None:
    ref = f"{registry.host}/small/img:1"
    cli.ok("push", f"oci:{small_layout}:latest", ref)
    done = cli.ok("pull", "--platform", "linux/arm/v7", ref)
    stored = cli.store.get(ref)
    assert [str(p) for p in stored.platforms()] == ["linux/arm/v7"]
    assert done.stdout.startswith(f"Digest: {stored.root.digest}\n")
    fails = cli.fails("pull", "--platform", "linux/s390x", ref)
    assert "no image for linux/s390x" in fails
    assert "linux/amd64" in fails


def test_copy_between_every_kind_of_place(
    cli: Cli, registry: RegistryServer, small_layout: Path, tmp_path: Path
) -> None:
    bundle = read_oci(small_layout, "latest")
    digest = bundle.root.digest
    src = f"docker://{registry.host}/copy/src:1"
    assert cli.ok("copy", f"oci:{small_layout}:latest", src).stdout == f"{digest}\n"
    # registry -> registry (same registry: blobs mounted)
    moved = cli.ok("copy", src, f"docker://{registry.host}/copy/dst:2")
    assert "mounted" in moved.stderr
    assert skopeo_digest(f"{registry.host}/copy/dst:2") == digest
    # registry -> oci:, oci-archive:, docker-archive: (one platform), the store
    cli.ok("copy", src, f"oci:{tmp_path}/out:copied")
    assert read_oci(tmp_path / "out", "copied").root.digest == digest
    cli.ok("copy", src, f"oci-archive:{tmp_path}/out.tar")
    assert read_oci_archive(tmp_path / "out.tar").root.digest == digest
    cli.ok("copy", "--platform", "linux/amd64", src, f"docker-archive:{tmp_path}/d.tar")
    single = read_docker_archive(tmp_path / "d.tar")
    assert [str(p) for p in single.platforms()] == ["linux/amd64"]
    cli.ok("copy", src, "copied:yes")
    assert cli.store.resolve("copied:yes").digest == digest
    # the store -> registry
    cli.ok("copy", "copied:yes", f"docker://{registry.host}/copy/back:3")
    assert skopeo_digest(f"{registry.host}/copy/back:3") == digest


def test_tag_ls_digest_manifest(cli: Cli, registry: RegistryServer, small_layout: Path) -> None:
    ref = f"{registry.host}/meta/img:1"
    cli.ok("push", f"oci:{small_layout}:latest", ref)
    bundle = read_oci(small_layout, "latest")
    assert cli.ok("tag", f"docker://{ref}", "2").stdout == f"{registry.host}/meta/img:2\n"
    cli.ok("tag", f"docker://{ref}", f"{registry.host}/meta/img:three")
    assert cli.ok("ls", f"{registry.host}/meta/img").stdout.split() == ["1", "2", "three"]
    assert cli.ok("digest", f"{ref}").stdout == f"{bundle.root.digest}\n"
    raw = cli.ok("manifest", f"docker://{registry.host}/meta/img:three").stdout.encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == bundle.root.digest
    arm = next(i for i in bundle.images() if i.platform.architecture == "arm64")
    assert cli.ok("digest", "--platform", "aarch64", ref).stdout == f"{arm.descriptor.digest}\n"
    arm_raw = cli.ok("manifest", "--platform", "linux/arm64", ref).stdout.encode()
    assert arm_raw == bundle.blob(arm.descriptor.digest)
    # tags in the store
    cli.ok("pull", ref)
    assert cli.ok("tag", ref, "mine:latest").stdout == "mine:latest\n"
    assert cli.store.resolve("mine").digest == bundle.root.digest


def test_errors_are_one_line(cli: Cli, registry: RegistryServer, small_layout: Path) -> None:
    missing = cli.fails("pull", f"{registry.host}/no/such:1")
    assert f"{registry.host}/no/such: manifest 1: HTTP 404" in missing
    assert "MANIFEST_UNKNOWN" in missing
    assert "invalid reference" in cli.fails("pull", f"{registry.host}/Upper/case:1")
    assert "no such image in the store" in cli.fails("push", "not-here:1", f"{registry.host}/x:1")
    assert "unsupported transport" in cli.fails("copy", "dir:/tmp/x", "oci:/tmp/y")
    registry.stop()
    down = cli.fails("ls", f"{registry.host}/x", status=1)
    assert "connection refused" in down
    registry.start()


def test_a_tampered_blob_fails_the_pull_and_stores_nothing(
    cli: Cli, registry: RegistryServer, small_layout: Path
) -> None:
    ref = f"{registry.host}/bad/img:1"
    cli.ok("push", f"oci:{small_layout}:latest", ref)
    bundle = read_oci(small_layout, "latest")
    layer = bundle.images()[0].manifest.layers[0]
    registry.tamper_blob(layer.digest, offset=10)
    error = cli.fails("pull", ref)
    assert layer.digest in error
    assert cli.store.list() == []
    blobs = cli.store_path / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
    assert not cli.store_path.exists()  # the store made for the pull went with it
    assert "ERROR" in cli.fails("copy", f"docker://{ref}", f"oci:{cli.home}/out")
    assert not (cli.home / "out").exists()


# --------------------------------------------------------------------------------------------
# login, logout and credentials


def test_login_push_pull_logout_with_basic_auth(
    cli: Cli, basic_registry: RegistryServer, small_layout: Path
) -> None:
    host = basic_registry.host
    ref = f"{host}/private/img:1"
    denied = cli.fails("push", f"oci:{small_layout}:latest", ref)
    assert "HTTP 401" in denied
    assert f"alpenglow login {host}" in denied

    wrong = cli.fails("login", host, "-u", USER, "--password-stdin", input="wrong-password\n")
    assert "HTTP 401" in wrong
    assert "wrong-password" not in wrong
    assert not cli.auth_file.exists()

    done = cli.ok("login", host, "-u", USER, "--password-stdin", input=PASSWORD + "\n")
    assert done.stdout == "Login Succeeded\n"
    assert stat.S_IMODE(cli.auth_file.stat().st_mode) == 0o600
    assert PASSWORD not in done.stdout + done.stderr
    assert host in json.loads(cli.auth_file.read_text())["auths"]

    cli.ok("push", f"oci:{small_layout}:latest", ref)
    cli.ok("pull", ref)
    assert cli.ok("ls", f"{host}/private/img").stdout == "1\n"

    assert cli.ok("logout", host).stdout == f"Removing login credentials for {host}\n"
    assert "HTTP 401" in cli.fails("pull", ref)
    assert cli.ok("logout", host).stdout == f"Not logged in to {host}\n"


def test_password_on_the_command_line_warns(cli: Cli, basic_registry: RegistryServer) -> None:
    done = cli.ok("login", basic_registry.host, "-u", USER, "-p", PASSWORD)
    assert "WARNING! Using --password via the CLI is insecure" in done.stderr
    assert "needs --username" in cli.fails(
        "login", basic_registry.host, "--password-stdin", status=2
    )


def test_token_auth_login_and_environment_credentials(
    cli: Cli, token_registry: RegistryServer, small_layout: Path
) -> None:
    host = token_registry.host
    ref = f"{host}/team/img:1"
    wrong = cli.fails("login", host, "-u", USER, "--password-stdin", input="nope\n")
    assert "refused the credentials" in wrong
    cli.ok("login", host, "-u", USER, "--password-stdin", input=PASSWORD)
    cli.ok("push", f"oci:{small_layout}:latest", ref)
    assert skopeo_digest(ref, "--creds", f"{USER}:{PASSWORD}") == read_oci(small_layout).root.digest
    cli.ok("logout", host)
    # CI style: credentials from the environment
    variable = "ALPENGLOW_AUTH_" + "".join(c if c.isalnum() else "_" for c in host.upper())
    done = cli("pull", ref, env={variable: f"{USER}:{PASSWORD}"})
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr


# --------------------------------------------------------------------------------------------
# release


def test_release_plan_and_push(cli: Cli, registry: RegistryServer, tmp_path: Path) -> None:
    repo = f"{registry.host}/alpine"
    layouts = {}
    for version in ["3.22.4", "3.22.3", "3.23.0_rc1"]:
        layout = tmp_path / version
        bundle = index_bundle([make_image("x86_64", {"etc/version": version})])
        write_oci(bundle, layout, [version])
        layouts[version] = (layout, bundle.root.digest)

    plan = cli.ok("release", "plan", repo, "--version", "3.22.4").stdout.splitlines()
    assert plan[0].split() == ["TAG", "NOW", "WILL", "POINT", "AT", "ACTION", "WHY"]
    assert [line.split()[0] for line in plan[1:]] == ["3.22.4", "3.22", "3", "latest"]

    layout, first = layouts["3.22.4"]
    done = cli.ok("release", "push", f"oci:{layout}:3.22.4", repo, "--version", "3.22.4")
    for tag in ("3.22.4", "3.22", "3", "latest"):
        assert f"tagged {repo}:{tag}" in done.stderr
        assert skopeo_digest(f"{repo}:{tag}") == first

    rerun = cli.ok("release", "plan", repo, "--version", "3.22.4", "--no-trunc").stdout
    assert [line.split()[1:4] for line in rerun.splitlines()[1:]] == [[first, first, "keep"]] * 4

    layout, second = layouts["3.22.3"]
    shown = cli.ok(
        "release",
        "plan",
        repo,
        "--version",
        "3.22.3",
        "--image",
        f"oci:{layout}:3.22.3",
        "--no-trunc",
    ).stdout
    rows = {line.split()[0]: line.split() for line in shown.splitlines()[1:]}
    assert rows["3.22.3"][1:4] == ["-", second, "create"]
    assert rows["latest"][1:4] == [first, first, "keep"]
    cli.ok("release", "push", f"oci:{layout}:3.22.3", repo, "--version", "3.22.3")
    assert skopeo_digest(f"{repo}:latest") == first

    layout, rc = layouts["3.23.0_rc1"]
    cli.ok("release", "push", f"oci:{layout}:3.23.0_rc1", repo, "--version", "3.23.0_rc1", "--edge")
    assert skopeo_digest(f"{repo}:edge") == rc
    assert skopeo_digest(f"{repo}:latest") == first
    tags = cli.ok("ls", repo).stdout.split()
    assert sorted(tags) == sorted(["3.22.4", "3.22", "3", "latest", "3.22.3", "3.23.0_rc1", "edge"])

    again = cli.ok(
        "release", "push", f"oci:{layout}:3.23.0_rc1", repo, "--version", "3.23.0_rc1", "--edge"
    )
    assert "0 tag(s) written" in again.stderr
    immutable = cli.fails(
        "release", "push", f"oci:{layouts['3.22.4'][0]}:3.22.4", repo, "--version", "3.22.3"
    )
    assert "tag 3.22.3 already points at" in immutable
    assert "invalid version" in cli.fails("release", "plan", repo, "--version", "v1")


# --------------------------------------------------------------------------------------------
# the transfer commands' own command line (no click)


def test_transfer_options_are_parsed_as_click_parses_them() -> None:
    pull, copy, push = TRANSFERS["pull"], TRANSFERS["copy"], TRANSFERS["push"]
    assert parse_args(pull, ["img"]) == {
        "platform": None,
        "insecure": (),
        "jobs": 8,
        "reference": "img",
    }
    assert parse_args(
        copy,
        ["--insecure", "a", "src", "-j4", "--insecure=b", "dst", "--platform=linux/arm64"],
    ) == {
        "platform": "linux/arm64",
        "insecure": ("a", "b"),
        "jobs": 4,
        "no_referrers": False,
        "source": "src",
        "target": "dst",
    }
    assert parse_args(push, ["-j", " 2", "--jobs=3", "--", "-odd", "--ref"]) == {
        "insecure": (),
        "jobs": 3,  # the last one given wins
        "no_referrers": False,
        "source": "-odd",
        "target": "--ref",
    }
    assert parse_args(push, ["a", "--no-referrers", "b"]) == {
        "insecure": (),
        "jobs": 8,
        "no_referrers": True,
        "source": "a",
        "target": "b",
    }
    assert parse_args(copy, ["--no-referrers", "-j2", "a", "b"])["no_referrers"] is True  # type: ignore[index]
    assert parse_args(pull, ["-", "--help"]) is None
    assert parse_args(pull, ["-h", "--bogus"]) is None
    assert parse_args(copy, ["-j1", "-h"]) is None


@pytest.mark.parametrize(
    ("name", "argv", "message"),
    [
        ("pull", [], "Missing argument 'REF'."),
        ("push", ["x"], "Missing argument 'REF'."),
        ("copy", [], "Missing argument 'SRC'."),
        ("pull", ["a", "b"], "Got unexpected extra argument (b)"),
        ("copy", ["a", "b", "c", "d"], "Got unexpected extra arguments (c d)"),
        ("pull", ["--bogus", "x"], "No such option '--bogus'. Did you mean '--jobs'?"),
        ("pull", ["--platfrom", "x"], "No such option '--platfrom'. Did you mean '--platform'?"),
        ("push", ["--platform", "p", "a", "b"], "No such option '--platform'."),
        ("pull", ["-x", "y"], "No such option '-x'."),
        ("pull", ["x", "-j"], "Option '-j' requires an argument."),
        ("copy", ["a", "b", "--platform"], "Option '--platform' requires an argument."),
        ("pull", ["--help=yes"], "Option '--help' does not take a value."),
        ("push", ["--no-referrers=1", "a", "b"], "Option '--no-referrers' does not take a"),
        ("pull", ["--no-referrers", "x"], "No such option '--no-referrers'."),
        ("pull", ["--jobs", "0", "x"], "Invalid value for '--jobs' / '-j': 0 is not in the range"),
        ("push", ["-j65", "a", "b"], "Invalid value for '--jobs' / '-j': 65 is not in the range"),
        ("pull", ["-jx", "x"], "Invalid value for '--jobs' / '-j': 'x' is not a valid integer"),
    ],
)
def test_transfer_usage_errors(name: str, argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_args(TRANSFERS[name], argv)
    assert caught.value.message.startswith(message)
    assert caught.value.hint == f"usage: {TRANSFERS[name].usage} (see `alpenglow {name} --help`)"


def test_transfer_usage_errors_at_the_command_line(cli: Cli) -> None:
    """One ERROR line and a hint, exit status 2; a library error exits 1."""
    error = cli.fails("pull", status=2)
    assert error == (
        "ERROR: Missing argument 'REF'.\n"
        "hint: usage: alpenglow pull [OPTIONS] REF (see `alpenglow pull --help`)\n"
    )
    assert "1<=x<=64" in cli.fails("copy", "--jobs=99", "a", "b", status=2)
    assert "No such option '--jbos'" in cli.fails("push", "--jbos", "1", "a", "b", status=2)
    assert "invalid reference" in cli.fails("pull", "--", "-x", status=1)
    assert "unsupported transport" in cli.fails("copy", "dir:/tmp/x", "oci:/tmp/y", status=1)


def test_transfer_help(cli: Cli) -> None:
    for name, command in TRANSFERS.items():
        shown = cli.ok(name, "--help").stdout
        assert shown == cli.ok(name, "-h").stdout == help_text(command)
        lines = shown.splitlines()
        assert lines[0] == f"Usage: {command.usage}"
        assert lines[2] == "  " + command.help.splitlines()[0]
        flat = " ".join(shown.split())
        for option in command.options:
            assert " ".join(option.help.split()) in flat
            assert all(n in shown for n in option.names)
        assert ("[default: 8; 1<=x<=64]" in flat) == any(o.dest == "jobs" for o in command.options)
        assert max(len(line) for line in lines) <= 78
    assert "--platform OS/ARCH[/VARIANT]" in cli.ok("pull", "--help").stdout
    assert "--platform" not in cli.ok("push", "--help").stdout
    listing = cli.ok("--help").stdout  # the click application still lists them
    for name, command in TRANSFERS.items():
        assert f"  {name} " in listing
        assert command.help[:25] in listing  # its summary (click shortens long ones)


def test_the_click_application_hands_transfers_to_the_same_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from alpenglow.cli import app

    with pytest.raises(SystemExit) as done:
        app.main(["pull", "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out == help_text(TRANSFERS["pull"])
    with pytest.raises(SystemExit) as done:
        app.main(["copy", "-j", "0", "a", "b"])
    assert done.value.code == 2
    assert "ERROR: Invalid value for '--jobs' / '-j': 0" in capsys.readouterr().err


def test_transfers_import_neither_click_nor_rich(
    cli: Cli, registry: RegistryServer, small_layout: Path
) -> None:
    """Without a terminal the progress is plain lines, and options are parsed by hand."""
    ref = f"{registry.host}/lean/img:1"

    def modules(*args: str) -> set[str]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "alpenglow.cli.main", *args],
            env=cli.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        imported = {
            line.rpartition("|")[2].strip()
            for line in done.stderr.splitlines()
            if line.startswith("import time:")
        }
        assert "alpenglow.distribution.transfer" in imported
        assert not {m for m in imported if m.split(".")[0] in ("click", "rich")}
        assert "alpenglow.cli.app" not in imported
        return imported

    modules("push", f"oci:{small_layout}:latest", ref)
    modules("pull", ref)
    assert cli.store.resolve(ref).digest == read_oci(small_layout).root.digest
    modules("copy", f"docker://{ref}", f"oci:{cli.home}/copied:x")
    assert read_oci(cli.home / "copied", "x").root.digest == read_oci(small_layout).root.digest


def test_version_without_click(cli: Cli) -> None:
    from alpenglow import __version__

    assert cli.ok("--version").stdout == f"alpenglow, version {__version__}\n"
    assert cli.ok("--version", "ignored").stdout == f"alpenglow, version {__version__}\n"


# --------------------------------------------------------------------------------------------
# progress


def test_progress_bars_on_a_terminal(
    cli: Cli, registry: RegistryServer, small_layout: Path
) -> None:
    """With stderr on a terminal, blobs get rich progress bars instead of plain lines."""
    parent, child = pty.openpty()
    try:
        done = subprocess.run(
            [str(ALPENGLOW), "push", f"oci:{small_layout}:latest", f"{registry.host}/tty/img:1"],
            env={**cli.env, "COLUMNS": "120", "TERM": "xterm"},
            stdout=subprocess.PIPE,
            stderr=child,
            timeout=120,
            check=False,
        )
        os.close(child)
        child = -1
        chunks = []
        while True:
            try:
                data = os.read(parent, 65536)
            except OSError:  # the terminal is closed once everything is read
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if child != -1:
            os.close(child)
        os.close(parent)
    shown = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 0, shown
    assert "\x1b[" in shown  # drawn with terminal control sequences
    assert "pushed" in shown
    assert "━" in shown  # the bar
    assert ": pushed (" not in shown  # not the plain lines
