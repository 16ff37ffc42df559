"""Credentials (environment, alpenglow's auth file, Docker's config and credential helpers),
WWW-Authenticate parsing, and the Basic and Bearer flows against a small registry on
127.0.0.1. Secrets never show in reprs, errors or logs."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from alpenglow.distribution import auth as auth_module
from alpenglow.distribution.auth import (
    Authenticator,
    ChainCredentials,
    Challenge,
    ConfigCredentials,
    Credential,
    EnvironmentCredentials,
    Scope,
    alpenglow_auth_file,
    default_credentials,
    docker_config_file,
    env_var_for,
    parse_challenges,
    remove_login,
    save_login,
    scope_strings,
)
from alpenglow.distribution.client import RegistryClient
from alpenglow.errors import AlpenglowError, RegistryError
from alpenglow.oci.image import digest_of
from tests.distribution.fake_registry import FakeRegistry

SECRET = "s3cr3t-Pa55word"
BLOB = b"some blob content" * 100
BLOB_DIGEST = digest_of(BLOB)


def client_for(fake: FakeRegistry, credentials: object = None) -> RegistryClient:
    return RegistryClient(
        fake.host,
        credentials=credentials,  # type: ignore[arg-type]
        sleep=lambda _: None,
        timeout=10.0,
    )


# -- challenges --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="Registry Realm"', [("basic", [("realm", "Registry Realm")])]),
        ("basic realm=simple", [("basic", [("realm", "simple")])]),
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/alpine:pull"',
            [
                (
                    "bearer",
                    [
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:library/alpine:pull"),
                    ],
                )
            ],
        ),
        (
            'Bearer realm="https://ghcr.io/token", service="ghcr.io", '
            'scope="repository:o/r:pull,push", error="insufficient_scope"',
            [
                (
                    "bearer",
                    [
                        ("realm", "https://ghcr.io/token"),
                        ("service", "ghcr.io"),
                        ("scope", "repository:o/r:pull,push"),
                        ("error", "insufficient_scope"),
                    ],
                )
            ],
        ),
        (
            'Basic realm="a, b", Bearer realm="x",SERVICE="y"',
            [("basic", [("realm", "a, b")]), ("bearer", [("realm", "x"), ("service", "y")])],
        ),
        (r'Bearer realm="quo\"ted\\"', [("bearer", [("realm", 'quo"ted\\')])]),
        ("Negotiate", [("negotiate", [])]),
        ("", []),
        ('Bearer realm="unterminated', [("bearer", [("realm", "unterminated")])]),
    ],
)
def test_parse_challenges(header: str, expected: list[tuple[str, list[tuple[str, str]]]]) -> None:
    got = parse_challenges(header)
    assert [(c.scheme, list(c.params)) for c in got] == expected


def test_parse_challenges_several_headers() -> None:
    got = parse_challenges(['Basic realm="x"', 'Bearer realm="y"'])
    assert [c.scheme for c in got] == ["basic", "bearer"]
    assert got[1].get("realm") == "y"
    assert got[1].get("service", "none") == "none"


def test_scopes() -> None:
    assert Scope.parse("repository:a/b:pull,push repository:c:pull") == frozenset(
        {
            Scope("repository", "a/b", "pull"),
            Scope("repository", "a/b", "push"),
            Scope("repository", "c", "pull"),
        }
    )
    assert Scope.parse("registry:catalog:*") == {Scope("registry", "catalog", "*")}
    assert Scope.parse("garbage") == frozenset()
    scopes = Scope.repository("x", "push", "pull") | Scope.repository("a", "delete", "pull")
    assert scope_strings(scopes) == ["repository:a:pull,delete", "repository:x:pull,push"]


# -- credentials -------------------------------------------------------------------------------


def test_credential_repr_hides_the_secret() -> None:
    credential = Credential("alice", SECRET)
    assert SECRET not in repr(credential)
    assert SECRET not in str(credential)
    assert repr(credential) == "Credential(username='alice', secret=<hidden>)"
    assert credential.basic() == "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert not credential.is_identity_token
    assert Credential("<token>", "x").is_identity_token


def test_environment_credentials() -> None:
    env = {
        "ALPENGLOW_AUTH_GHCR_IO": f"octo:{SECRET}:with:colons",
        "ALPENGLOW_AUTH_LOCALHOST_5000": "local:pw",
        "ALPENGLOW_REGISTRY_USER": "ci",
        "ALPENGLOW_REGISTRY_PASSWORD": "cipw",
    }
    source = EnvironmentCredentials(env)
    assert source.get("ghcr.io") == Credential("octo", f"{SECRET}:with:colons")
    assert source.get("localhost:5000") == Credential("local", "pw")
    assert source.get("quay.io") == Credential("ci", "cipw")
    assert EnvironmentCredentials({}).get("quay.io") is None
    assert EnvironmentCredentials({"ALPENGLOW_REGISTRY_USER": "x"}).get("quay.io") is None
    assert env_var_for("docker.io") == "ALPENGLOW_AUTH_DOCKER_IO"
    assert env_var_for("https://index.docker.io/v1/") == "ALPENGLOW_AUTH_DOCKER_IO"
    with pytest.raises(AlpenglowError, match=r"\$ALPENGLOW_AUTH_QUAY_IO: expected USER:SECRET"):
        EnvironmentCredentials({"ALPENGLOW_AUTH_QUAY_IO": SECRET}).get("quay.io")
    assert SECRET not in repr(source)


def _write_config(path: Path, config: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_docker_config_auths(tmp_path: Path) -> None:
    path = _write_config(
        tmp_path / "config.json",
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": _b64(f"hubuser:{SECRET}")},
                "ghcr.io": {"auth": _b64("gh:tok")},
                "https://quay.io": {"username": "q", "password": "qpw"},
                "reg.example:5000": {"identitytoken": "refresh-me"},
                "empty.example": {},
            }
        },
    )
    source = ConfigCredentials(path)
    assert source.get("docker.io") == Credential("hubuser", SECRET)
    assert source.get("registry-1.docker.io") == Credential("hubuser", SECRET)
    assert source.get("ghcr.io") == Credential("gh", "tok")
    assert source.get("quay.io") == Credential("q", "qpw")
    assert source.get("reg.example:5000") == Credential("<token>", "refresh-me")
    assert source.get("empty.example") is None
    assert source.get("other.example") is None
    assert ConfigCredentials(tmp_path / "missing.json").get("ghcr.io") is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"auths": {"ghcr.io": {"auth": "!!!"}}}', "is not base64"),
        ('{"auths": {"ghcr.io": {"auth": "' + _b64("nocolon") + '"}}}', "is not USER:SECRET"),
    ],
)
def test_docker_config_errors(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(AlpenglowError) as info:
        ConfigCredentials(path).get("ghcr.io")
    assert problem in str(info.value)
    assert str(info.value).startswith(str(path))


HELPER = """#!/bin/sh
[ "$1" = get ] || exit 3
read -r server
case "$server" in
  reg.example:5000) printf '{"ServerURL":"%s","Username":"helper-user","Secret":"%s"}' "$server" "$HELPER_SECRET" ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hub","Secret":"hubpw"}' "$server" ;;
  token.example) printf '{"ServerURL":"%s","Username":"","Secret":"idtok"}' "$server" ;;
  broken.example) echo "oops $HELPER_SECRET" >&2; exit 2 ;;
  garbage.example) echo "not json" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""  # noqa: E501


@pytest.fixture
def helper_env(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("docker-credential-fake", "docker-credential-store"):
        script = bindir / name
        script.write_text(HELPER)
        script.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}", "HELPER_SECRET": SECRET}


def test_credential_helpers(tmp_path: Path, helper_env: dict[str, str]) -> None:
    path = _write_config(
        tmp_path / "config.json",
        {
            "auths": {"ghcr.io": {"auth": _b64("gh:tok")}, "quay.io": {}},
            "credHelpers": {
                "reg.example:5000": "fake",
                "broken.example": "fake",
                "garbage.example": "fake",
                "token.example": "fake",
                "missing.example": "not-installed",
            },
            "credsStore": "store",
        },
    )
    source = ConfigCredentials(path, environ=helper_env)
    assert source.get("reg.example:5000") == Credential("helper-user", SECRET)
    assert source.get("docker.io") == Credential("hub", "hubpw")  # credsStore, Hub's URL
    assert source.get("token.example") == Credential("<token>", "idtok")
    assert source.get("ghcr.io") == Credential("gh", "tok")  # auths before the store
    assert source.get("quay.io") is None  # the store knows nothing of it
    assert source.get("missing.example") is None
    with pytest.raises(AlpenglowError) as info:
        source.get("broken.example")
    assert str(info.value) == "docker-credential-fake failed for broken.example (exit status 2)"
    assert SECRET not in str(info.value) + str(info.value.hint)
    with pytest.raises(AlpenglowError, match="not its JSON format"):
        source.get("garbage.example")


def test_helper_names_are_checked(tmp_path: Path) -> None:
    path = _write_config(tmp_path / "c.json", {"credHelpers": {"x.io": "../evil"}})
    with pytest.raises(AlpenglowError, match="invalid credential helper name"):
        ConfigCredentials(path).get("x.io")


def test_login_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "alpenglow" / "auth.json"
    save_login("ghcr.io", "octo", SECRET, path=path)
    save_login("https://index.docker.io/v1/", "hub", "hubpw", path=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["auth.json"]
    config = json.loads(path.read_text())
    assert config == {
        "auths": {
            "docker.io": {"auth": _b64("hub:hubpw")},
            "ghcr.io": {"auth": _b64(f"octo:{SECRET}")},
        }
    }
    assert ConfigCredentials(path).get("ghcr.io") == Credential("octo", SECRET)
    save_login("ghcr.io", "octo2", "new", path=path)
    assert ConfigCredentials(path).get("ghcr.io") == Credential("octo2", "new")
    assert remove_login("ghcr.io", path=path) is True
    assert remove_login("ghcr.io", path=path) is False
    assert ConfigCredentials(path).get("ghcr.io") is None
    assert ConfigCredentials(path).get("docker.io") == Credential("hub", "hubpw")
    assert remove_login("x.io", path=tmp_path / "none.json") is False
    with pytest.raises(AlpenglowError, match="no ':'"):
        save_login("x.io", "a:b", "pw", path=path)
    with pytest.raises(AlpenglowError, match="empty password"):
        save_login("x.io", "a", "", path=path)


def test_login_file_keeps_other_settings(tmp_path: Path) -> None:
    path = _write_config(
        tmp_path / "auth.json", {"credHelpers": {"a.io": "x"}, "auths": {"b.io": {}}}
    )
    save_login("c.io", "u", "p", path=path)
    config = json.loads(path.read_text())
    assert config["credHelpers"] == {"a.io": "x"}
    assert set(config["auths"]) == {"b.io", "c.io"}


def test_concurrent_logins_keep_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    threads = [
        threading.Thread(target=save_login, args=(f"r{i}.io", "u", "p"), kwargs={"path": path})
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(json.loads(path.read_text())["auths"]) == 8


def test_file_locations(tmp_path: Path) -> None:
    assert alpenglow_auth_file({"ALPENGLOW_AUTH_FILE": "/x/a.json"}) == Path("/x/a.json")
    assert alpenglow_auth_file({"XDG_CONFIG_HOME": "/cfg", "HOME": "/h"}) == Path(
        "/cfg/alpenglow/auth.json"
    )
    assert alpenglow_auth_file({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.config/alpenglow/auth.json"
    )
    assert docker_config_file({"DOCKER_CONFIG": "/d"}) == Path("/d/config.json")
    assert docker_config_file({"HOME": "/h"}) == Path("/h/.docker/config.json")


def test_default_credentials_order(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    save_login("a.io", "mine", "1", path=alpenglow_auth_file(env))
    _write_config(
        docker_config_file(env),
        {"auths": {"a.io": {"auth": _b64("docker:2")}, "b.io": {"auth": _b64("docker:3")}}},
    )
    chain = default_credentials(env)
    assert isinstance(chain, ChainCredentials)
    assert chain.get("a.io") == Credential("mine", "1")
    assert chain.get("b.io") == Credential("docker", "3")
    assert chain.get("c.io") is None
    env["ALPENGLOW_AUTH_B_IO"] = "envuser:4"
    assert default_credentials(env).get("b.io") == Credential("envuser", "4")


# -- the flows -----------------------------------------------------------------------------


def test_anonymous_bearer_pull_with_one_token() -> None:
    with FakeRegistry(auth="bearer") as fake:
        fake.put_blob("public/x", BLOB)
        with client_for(fake) as client:
            for _ in range(5):
                assert client.blob_exists("public/x", BLOB_DIGEST) == len(BLOB)
            assert client.get_blob("public/x", BLOB_DIGEST) == BLOB
            assert client.auth.scheme == "bearer"
        assert fake.token_requests == [
            {
                "method": "GET",
                "account": "",
                "scopes": ["repository:public/x:pull"],
                "service": "fake",
                "status": 200,
            }
        ]
        heads = fake.requests("HEAD")
        assert "authorization" not in heads[0].headers  # the first one is challenged
        assert all(h.headers["authorization"].startswith("Bearer ") for h in heads[1:])
        assert len(heads) == 6


def test_anonymous_is_refused_on_a_private_repository() -> None:
    with FakeRegistry(auth="bearer", users={"u": SECRET}) as fake:
        fake.put_blob("private/x", BLOB)
        with client_for(fake) as client, pytest.raises(RegistryError) as info:
            client.get_blob("private/x", BLOB_DIGEST)
    assert str(info.value) == (
        f"{fake.host}/private/x: blob {BLOB_DIGEST}: HTTP 401 Unauthorized "
        "(UNAUTHORIZED: authentication required)"
    )
    assert info.value.hint == (
        f"log in with `alpenglow login {fake.host}`, or check the credentials"
    )


def test_push_scopes_widen_and_mounts_ask_for_the_source() -> None:
    with FakeRegistry(auth="bearer", users={"alice": SECRET}) as fake:
        fake.put_blob("team/src", BLOB)
        with client_for(fake, Credential("alice", SECRET)) as client:
            assert client.get_blob("team/src", BLOB_DIGEST) == BLOB
            client.upload_blob("team/dst", b"abc", digest_of(b"abc"))
            client.upload_blob("team/dst", b"abcd", digest_of(b"abcd"))  # token reused
            assert client.upload_blob("team/other", BLOB, BLOB_DIGEST, mount_from="team/src") == (
                "mounted"
            )
        scopes = [r["scopes"] for r in fake.token_requests]
        assert scopes == [
            ["repository:team/src:pull"],
            ["repository:team/dst:pull,push"],
            ["repository:team/other:pull,push", "repository:team/src:pull"],
        ]
        assert {r["account"] for r in fake.token_requests} == {"alice"}
        # only the very first request was challenged: later scopes were fetched up front
        assert len([r for r in fake.log if "authorization" not in r.headers]) == 1


def test_a_refused_token_is_replaced_with_wider_scopes() -> None:
    with FakeRegistry(auth="bearer", users={"alice": SECRET}) as fake:
        fake.put_blob("a/b", BLOB)
        with client_for(fake, Credential("alice", SECRET)) as client:
            assert client.blob_exists("a/b", BLOB_DIGEST) is not None
            fake.tokens.clear()  # the registry forgets every token (a restart, a revocation)
            assert client.blob_exists("a/b", BLOB_DIGEST) is not None
        assert len(fake.token_requests) == 2


def test_wrong_password_is_reported_without_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeRegistry(auth="bearer", users={"alice": "right"}) as fake:
        fake.put_blob("a/b", BLOB)
        with client_for(fake, Credential("alice", SECRET)) as client:
            with pytest.raises(RegistryError) as info:
                client.get_blob("a/b", BLOB_DIGEST)
            texts = [str(info.value), str(info.value.hint), repr(info.value), repr(client.auth)]
    assert str(info.value) == (
        f"{fake.host}: the token service at {fake.host} refused the credentials: "
        "HTTP 401 Unauthorized"
    )
    assert info.value.hint == f"check the credentials for {fake.host} (alpenglow login {fake.host})"
    for text in [*texts, caplog.text]:
        assert SECRET not in text
        assert base64.b64encode(f"alice:{SECRET}".encode()).decode() not in text


def test_basic_auth() -> None:
    with FakeRegistry(auth="basic", users={"bob": SECRET}) as fake:
        fake.put_blob("a/b", BLOB)
        with client_for(fake, Credential("bob", SECRET)) as client:
            assert client.get_blob("a/b", BLOB_DIGEST) == BLOB
            assert client.blob_exists("a/b", BLOB_DIGEST) == len(BLOB)
            assert client.auth.scheme == "basic"
        assert len(fake.requests("GET", "/blobs/")) == 2  # challenged once
        with (
            client_for(fake, Credential("bob", "wrong")) as client,
            pytest.raises(RegistryError) as info,
        ):
            client.blob_exists("a/b", BLOB_DIGEST)
        assert info.value.status == 401
        assert "wrong" not in str(info.value)
        with client_for(fake) as client, pytest.raises(RegistryError, match="HTTP 401"):
            client.blob_exists("a/b", BLOB_DIGEST)


def test_identity_token_is_exchanged_with_a_post() -> None:
    with FakeRegistry(auth="bearer", users={"u": "refresh-token"}) as fake:
        fake.put_blob("a/b", BLOB)
        with client_for(fake, Credential("<token>", "refresh-token")) as client:
            assert client.get_blob("a/b", BLOB_DIGEST) == BLOB
        assert [r["method"] for r in fake.token_requests] == ["POST"]
        assert fake.token_requests[0]["scopes"] == ["repository:a/b:pull"]


def test_expired_tokens_are_fetched_again() -> None:
    with FakeRegistry(auth="bearer", users={"u": "p"}, token_lifetime=1) as fake:
        fake.put_blob("a/b", BLOB)
        with client_for(fake, Credential("u", "p")) as client:
            client.blob_exists("a/b", BLOB_DIGEST)
            client.blob_exists("a/b", BLOB_DIGEST)
            assert len(fake.token_requests) == 1
            time.sleep(0.6)
            client.blob_exists("a/b", BLOB_DIGEST)
            assert len(fake.token_requests) == 2


def test_credentials_are_looked_up_only_when_challenged(tmp_path: Path) -> None:
    asked: list[str] = []

    class Source:
        def get(self, registry: str) -> Credential | None:
            asked.append(registry)
            return Credential("u", "p")

    with FakeRegistry() as fake, client_for(fake, Source()) as client:
        client.ping()
        assert asked == []
    with FakeRegistry(auth="basic", users={"u": "p"}) as fake:
        fake.put_blob("a/b", BLOB)
        with client_for(fake, Source()) as client:
            client.blob_exists("a/b", BLOB_DIGEST)
            client.blob_exists("a/b", BLOB_DIGEST)
        assert asked == [fake.host]


def test_plain_http_realm_elsewhere_is_refused() -> None:
    auth = Authenticator("reg.example", Credential("u", SECRET))

    def send(*args: object, **kwargs: object) -> object:
        raise AssertionError("no request may be sent")

    with pytest.raises(RegistryError) as info:
        auth.challenged(
            ['Bearer realm="http://auth.example/token",service="x"'],
            Scope.repository("a", "pull"),
            None,
            send,  # type: ignore[arg-type]
        )
    assert "refusing to send credentials to the plain-HTTP token service at auth.example" in str(
        info.value
    )
    bad_realm = Authenticator("reg.example")
    with pytest.raises(RegistryError, match="token realm is not an http"):
        bad_realm.challenged(['Bearer realm="ftp://x/"'], frozenset(), None, send)  # type: ignore[arg-type]
    assert SECRET not in repr(auth)


def test_unknown_challenge_gives_up() -> None:
    auth = Authenticator("reg.example", Credential("u", "p"))
    assert auth.challenged(["Negotiate"], frozenset(), None, lambda *a, **k: None) is False  # type: ignore[arg-type]
    assert auth.challenged([], frozenset(), None, lambda *a, **k: None) is False  # type: ignore[arg-type]
    assert Challenge("basic").get("realm") == ""


def test_exports() -> None:
    assert sorted(auth_module.__all__) == [
        "Authenticator",
        "ChainCredentials",
        "Challenge",
        "ConfigCredentials",
        "Credential",
        "CredentialSource",
        "EnvironmentCredentials",
        "IDENTITY_TOKEN_USER",
        "Scope",
        "alpenglow_auth_file",
        "default_credentials",
        "docker_config_file",
        "env_var_for",
        "parse_challenges",
        "remove_login",
        "run_credential_helper",
        "save_login",
        "scope_strings",
    ]
    assert sorted(dir(auth_module)) == sorted(auth_module.__all__)


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_check_login(scheme: str) -> None:
    with FakeRegistry(auth=scheme, users={"alice": SECRET}) as fake:
        with client_for(fake, Credential("alice", SECRET)) as client:
            client.check_login()
        with client_for(fake, Credential("alice", "wrong")) as client:
            with pytest.raises(RegistryError) as info:
                client.check_login()
            assert SECRET not in repr(client.auth)
        with client_for(fake) as client, pytest.raises(RegistryError) as anonymous:
            client.check_login()
    if scheme == "basic":
        assert str(info.value) == (
            f"{fake.host}: login failed: the registry refused the credentials "
            "(HTTP 401 UNAUTHORIZED)"
        )
    else:
        assert str(info.value) == (
            f"{fake.host}: the token service at {fake.host} refused the credentials: "
            "HTTP 401 Unauthorized"
        )
        assert fake.token_requests[0]["scopes"] == []
    assert str(anonymous.value) == f"{fake.host}: no credentials to log in with"
    assert "wrong" not in str(info.value)


def test_check_login_without_auth() -> None:
    with FakeRegistry() as fake, client_for(fake, Credential("a", "b")) as client:
        client.check_login()
