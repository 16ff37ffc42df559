"""Registry credentials and the authentication handshake.

Credentials come from, in this order (:func:`default_credentials`):

1. the environment, for CI: ``ALPENGLOW_AUTH_<HOST>=USER:SECRET`` for one registry, where
   ``<HOST>`` is the registry upper-cased with every other character than a letter or digit
   turned into ``_`` (``ghcr.io`` -> ``ALPENGLOW_AUTH_GHCR_IO``, ``localhost:5000`` ->
   ``ALPENGLOW_AUTH_LOCALHOST_5000``, Docker Hub is ``ALPENGLOW_AUTH_DOCKER_IO``); then
   ``ALPENGLOW_REGISTRY_USER`` and ``ALPENGLOW_REGISTRY_PASSWORD`` for every registry
   (use the scoped form when a job talks to several registries);
2. alpenglow's own file, written by ``alpenglow login`` (:func:`save_login`):
   ``$ALPENGLOW_AUTH_FILE``, else ``$XDG_CONFIG_HOME/alpenglow/auth.json``, else
   ``~/.config/alpenglow/auth.json``; the format of Docker's ``config.json``, mode 0600;
3. Docker's ``$DOCKER_CONFIG/config.json`` (else ``~/.docker/config.json``): a per-registry
   helper in ``credHelpers``, the base64 ``auth`` (or ``identitytoken``) of ``auths``, the
   store named by ``credsStore``. Helpers are run as ``docker-credential-NAME get`` with the
   server URL on stdin, as Docker runs them.

A registry asks for credentials with a ``WWW-Authenticate`` challenge (:func:`parse_challenges`):
``Basic`` (the credentials go with every request) or ``Bearer realm=...,service=...,scope=...``
(a token is fetched from the realm for the scopes a request needs and cached until it
expires; an ``identitytoken`` is exchanged with an OAuth2 ``refresh_token`` POST).
:class:`Authenticator` keeps that state for one registry.

Secrets never appear in a ``repr``, an error message or anything the library reports: a
:class:`Credential` shows only its user name, and errors name the registry, the realm's
host and the status.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from alpenglow.distribution.reference import (
    DOCKER_HUB,
    is_insecure_default,
    normalize_registry,
)
from alpenglow.errors import AlpenglowError, RegistryError

if TYPE_CHECKING:
    from alpenglow.http_client import Response

__all__ = [
    "IDENTITY_TOKEN_USER",
    "Authenticator",
    "ChainCredentials",
    "Challenge",
    "ConfigCredentials",
    "Credential",
    "CredentialSource",
    "EnvironmentCredentials",
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


def __dir__() -> list[str]:
    return __all__


IDENTITY_TOKEN_USER = "<token>"
"""The user name credential helpers give for an identity (refresh) token."""

_DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_HELPER_TIMEOUT = 30.0
_DEFAULT_TOKEN_LIFETIME = 60.0
_TOKEN_MARGIN = 10.0


# --------------------------------------------------------------------------------------------
# Credentials


@dataclass(frozen=True, slots=True)
class Credential:
    """A user name and a secret (a password or token). The secret is left out of ``repr``.

    A user name of ``<token>`` means the secret is an identity (refresh) token.
    """

    username: str
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, secret=<hidden>)"

    @property
    def is_identity_token(self) -> bool:
        return self.username == IDENTITY_TOKEN_USER

    def basic(self) -> str:
        """The value of an ``Authorization: Basic`` header."""
        raw = f"{self.username}:{self.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


class CredentialSource(Protocol):
    """Where credentials for a registry come from."""

    def get(self, registry: str) -> Credential | None:
        """The credential for ``registry`` (``docker.io``, ``ghcr.io``, ``HOST:PORT``), or
        None when this source has none."""
        ...


class ChainCredentials:
    """The first source that has a credential wins."""

    def __init__(self, sources: Sequence[CredentialSource]) -> None:
        self.sources = tuple(sources)

    def __repr__(self) -> str:
        return f"ChainCredentials({list(self.sources)!r})"

    def get(self, registry: str) -> Credential | None:
        for source in self.sources:
            found = source.get(registry)
            if found is not None:
                return found
        return None


def env_var_for(registry: str) -> str:
    """The scoped environment variable of ``registry``.

    >>> env_var_for("ghcr.io"), env_var_for("localhost:5000")
    ('ALPENGLOW_AUTH_GHCR_IO', 'ALPENGLOW_AUTH_LOCALHOST_5000')
    """
    host = normalize_registry(registry)
    return "ALPENGLOW_AUTH_" + re.sub(r"[^A-Z0-9]", "_", host.upper())


class EnvironmentCredentials:
    """Credentials from environment variables (see the module docstring)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __repr__(self) -> str:
        return "EnvironmentCredentials()"

    def get(self, registry: str) -> Credential | None:
        name = env_var_for(registry)
        scoped = self._environ.get(name)
        if scoped:
            user, sep, secret = scoped.partition(":")
            if not sep or not user:
                raise AlpenglowError(f"${name}: expected USER:SECRET")
            return Credential(user, secret)
        user = self._environ.get("ALPENGLOW_REGISTRY_USER", "")
        secret = self._environ.get("ALPENGLOW_REGISTRY_PASSWORD", "")
        if user and secret:
            return Credential(user, secret)
        return None


class ConfigCredentials:
    """Credentials from a file in Docker's ``config.json`` format (``auths``,
    ``credHelpers``, ``credsStore``). The file is read once, when first needed; a missing
    file has no credentials."""

    def __init__(
        self,
        path: Path | str,
        *,
        environ: Mapping[str, str] | None = None,
        helper_timeout: float = _HELPER_TIMEOUT,
    ) -> None:
        self.path = Path(path)
        self._environ = environ
        self._timeout = helper_timeout
        self._config: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ConfigCredentials({str(self.path)!r})"

    def _load(self) -> dict[str, Any]:
        with self._lock:
            if self._config is None:
                self._config = _read_config(self.path)
            return self._config

    def get(self, registry: str) -> Credential | None:
        config = self._load()
        wanted = normalize_registry(registry)
        helpers = config.get("credHelpers")
        if isinstance(helpers, dict):
            for key, helper in helpers.items():
                if normalize_registry(str(key)) == wanted and isinstance(helper, str):
                    return self._from_helper(helper, wanted)
        entry = _auth_entry(config, wanted)
        if entry is not None:
            found = _decode_entry(entry, self.path, wanted)
            if found is not None:
                return found
        store = config.get("credsStore")
        if isinstance(store, str) and store:
            return self._from_helper(store, wanted)
        return None

    def _from_helper(self, helper: str, registry: str) -> Credential | None:
        return run_credential_helper(helper, registry, environ=self._environ, timeout=self._timeout)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AlpenglowError(f"{path}: cannot read: {exc.strerror}") from None
    if not data.strip():
        return {}
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AlpenglowError(f"{path}: not valid JSON") from None
    if not isinstance(obj, dict):
        raise AlpenglowError(f"{path}: expected a JSON object")
    return obj


def _auth_entry(config: Mapping[str, Any], registry: str) -> dict[str, Any] | None:
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if normalize_registry(str(key)) == registry and isinstance(entry, dict):
            return entry
    return None


def _decode_entry(entry: Mapping[str, Any], path: Path, registry: str) -> Credential | None:
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        return Credential(IDENTITY_TOKEN_USER, token)
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            text = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise AlpenglowError(f"{path}: auths[{registry!r}].auth is not base64") from None
        user, sep, secret = text.partition(":")
        if not sep:
            raise AlpenglowError(f"{path}: auths[{registry!r}].auth is not USER:SECRET")
        return Credential(user, secret)
    name, password = entry.get("username"), entry.get("password")
    if isinstance(name, str) and isinstance(password, str) and name:
        return Credential(name, password)
    return None


def run_credential_helper(
    helper: str,
    registry: str,
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = _HELPER_TIMEOUT,
) -> Credential | None:
    """Ask ``docker-credential-<helper>`` for ``registry``'s credentials (Docker's
    protocol: ``get``, the server URL on stdin, JSON ``{Username, Secret}`` on stdout).

    A helper that is not installed, or that knows no credentials for the registry, gives
    None; a failing helper is an :class:`AlpenglowError` naming it (its output is not
    shown, as it may hold a secret)."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", helper):
        raise AlpenglowError(f"invalid credential helper name {helper!r}")
    import shutil  # here, not at start-up: few registries need a helper
    import subprocess

    program = f"docker-credential-{helper}"
    path = shutil.which(program, path=(environ or os.environ).get("PATH"))
    if path is None:
        return None
    server = _DOCKER_HUB_SERVER if registry == DOCKER_HUB else registry
    try:
        result = subprocess.run(
            [path, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=timeout,
            env=dict(environ) if environ is not None else None,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AlpenglowError(f"{program} did not answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise AlpenglowError(f"{program}: cannot run: {exc.strerror}") from None
    if result.returncode != 0:
        if b"credentials not found" in result.stdout + result.stderr:
            return None
        raise AlpenglowError(
            f"{program} failed for {registry} (exit status {result.returncode})",
            hint=f"try `{program} list`, or log in again",
        )
    try:
        obj = json.loads(result.stdout)
        user, secret = obj["Username"], obj["Secret"]
    except (ValueError, KeyError, TypeError):
        raise AlpenglowError(f"{program} gave an answer that is not its JSON format") from None
    if not isinstance(user, str) or not isinstance(secret, str) or not secret:
        return None
    return Credential(user or IDENTITY_TOKEN_USER, secret)


# --------------------------------------------------------------------------------------------
# Files and the login/logout functions


def alpenglow_auth_file(environ: Mapping[str, str]) -> Path:
    """``$ALPENGLOW_AUTH_FILE``, else ``$XDG_CONFIG_HOME/alpenglow/auth.json``, else
    ``$HOME/.config/alpenglow/auth.json``."""
    explicit = environ.get("ALPENGLOW_AUTH_FILE")
    if explicit:
        return Path(explicit)
    config_home = environ.get("XDG_CONFIG_HOME", "")
    if config_home and Path(config_home).is_absolute():
        return Path(config_home) / "alpenglow" / "auth.json"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".config" / "alpenglow" / "auth.json"


def docker_config_file(environ: Mapping[str, str]) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``$HOME/.docker/config.json``."""
    directory = environ.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".docker" / "config.json"


def default_credentials(environ: Mapping[str, str]) -> ChainCredentials:
    """The environment, then alpenglow's auth file, then Docker's config."""
    return ChainCredentials(
        [
            EnvironmentCredentials(environ),
            ConfigCredentials(alpenglow_auth_file(environ), environ=environ),
            ConfigCredentials(docker_config_file(environ), environ=environ),
        ]
    )


@contextlib.contextmanager
def _locked_dir(directory: Path) -> Any:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _update_auth_file(path: Path, change: Callable[[dict[str, Any]], bool]) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise AlpenglowError(f"{path.parent}: cannot create: {exc.strerror}") from None
    with _locked_dir(path.parent):
        config = _read_config(path)
        if not change(config):
            return False
        data = json.dumps(config, indent=2, sort_keys=True).encode() + b"\n"
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise AlpenglowError(f"{path}: cannot write: {exc.strerror}") from None
    return True


def save_login(registry: str, username: str, secret: str, *, path: Path) -> None:
    """Store ``username``/``secret`` for ``registry`` in the auth file ``path`` (created
    with mode 0600; replaced atomically; other entries kept)."""
    if not username or ":" in username:
        raise AlpenglowError("a registry user name must be non-empty and have no ':'")
    if not secret:
        raise AlpenglowError("an empty password or token cannot be stored")
    key = normalize_registry(registry)
    encoded = base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")

    def change(config: dict[str, Any]) -> bool:
        auths = config.get("auths")
        if not isinstance(auths, dict):
            auths = config["auths"] = {}
        for old in [k for k in auths if normalize_registry(str(k)) == key]:
            del auths[old]
        auths[key] = {"auth": encoded}
        return True

    _update_auth_file(path, change)


def remove_login(registry: str, *, path: Path) -> bool:
    """Forget ``registry``'s credentials in the auth file ``path``; False when there were
    none."""
    key = normalize_registry(registry)
    if not path.exists():
        return False

    def change(config: dict[str, Any]) -> bool:
        auths = config.get("auths")
        if not isinstance(auths, dict):
            return False
        old = [k for k in auths if normalize_registry(str(k)) == key]
        for name in old:
            del auths[name]
        return bool(old)

    return _update_auth_file(path, change)


# --------------------------------------------------------------------------------------------
# Challenges


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: ``scheme`` lower-cased, ``params`` as pairs with
    lower-cased names."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.params:
            if key == name:
                return value
        return default


_TOKEN_CHARS = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def parse_challenges(headers: str | Iterable[str]) -> tuple[Challenge, ...]:
    """Parse ``WWW-Authenticate`` header values (RFC 7235): several challenges may share a
    value, parameters are tokens or quoted strings (which may hold commas and ``\\``
    escapes). Unparseable trailing text is ignored.

    >>> parse_challenges('Bearer realm="https://a/t",service="r",scope="repository:x:pull,push"')
    (Challenge(scheme='bearer', params=(('realm', 'https://a/t'), ('service', 'r'), ('scope', 'repository:x:pull,push'))),)
    >>> [c.scheme for c in parse_challenges('Basic realm="x", Bearer realm="y"')]
    ['basic', 'bearer']
    """  # noqa: E501
    values = [headers] if isinstance(headers, str) else list(headers)
    out: list[Challenge] = []
    for value in values:
        out.extend(_parse_header(value))
    return tuple(out)


def _parse_header(text: str) -> list[Challenge]:
    out: list[Challenge] = []
    pos, n = 0, len(text)

    def skip(chars: str = " \t") -> None:
        nonlocal pos
        while pos < n and text[pos] in chars:
            pos += 1

    while pos < n:
        skip(" \t,")
        match = _TOKEN_CHARS.match(text, pos)
        if not match:
            break
        scheme = match.group().lower()
        pos = match.end()
        params: list[tuple[str, str]] = []
        skip()
        while pos < n:
            start = pos
            skip(" \t,")
            name_match = _TOKEN_CHARS.match(text, pos)
            if not name_match:
                pos = start
                break
            after = name_match.end()
            look = after
            while look < n and text[look] in " \t":
                look += 1
            if look >= n or text[look] != "=":
                pos = start  # the next challenge's scheme
                break
            name = name_match.group().lower()
            pos = look + 1
            skip()
            if pos < n and text[pos] == '"':
                value, pos = _quoted(text, pos)
            else:
                value_match = _TOKEN68.match(text, pos) or _TOKEN_CHARS.match(text, pos)
                value = value_match.group() if value_match else ""
                pos = value_match.end() if value_match else pos
            params.append((name, value))
            skip()
            if pos < n and text[pos] != ",":
                break
        out.append(Challenge(scheme, tuple(params)))
    return out


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """The quoted string starting at ``text[pos] == '"'`` and the position after it."""
    chars: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            chars.append(text[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(chars), pos + 1
        chars.append(char)
        pos += 1
    return "".join(chars), pos


# --------------------------------------------------------------------------------------------
# Scopes and tokens


_ACTION_ORDER = {"pull": 0, "push": 1, "delete": 2, "*": 3}


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    """One permission a token grants: ``repository:library/alpine:pull``."""

    resource: str
    name: str
    action: str

    @staticmethod
    def repository(name: str, *actions: str) -> frozenset[Scope]:
        return frozenset(Scope("repository", name, action) for action in actions)

    @staticmethod
    def parse(text: str) -> frozenset[Scope]:
        """``repository:NAME:pull,push`` (several separated by spaces) as scopes; parts
        that are not of that form are ignored."""
        out: set[Scope] = set()
        for item in text.split():
            resource, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if resource and name:
                out.update(Scope(resource, name, a) for a in actions.split(",") if a)
        return frozenset(out)


def scope_strings(scopes: Iterable[Scope]) -> list[str]:
    """The ``scope`` parameters for a token request: one per resource, actions joined."""
    grouped: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        grouped.setdefault((scope.resource, scope.name), set()).add(scope.action)
    return [
        f"{resource}:{name}:{','.join(sorted(actions, key=lambda a: (_ACTION_ORDER.get(a, 9), a)))}"
        for (resource, name), actions in sorted(grouped.items())
    ]


def _covers(granted: frozenset[Scope], wanted: frozenset[Scope]) -> bool:
    if wanted <= granted:
        return True
    wildcard = {(s.resource, s.name) for s in granted if s.action == "*"}
    return all(s in granted or (s.resource, s.name) in wildcard for s in wanted)


class _Token:
    """A bearer token, the scopes it grants and when it expires (monotonic clock). A plain
    slotted class, not a dataclass: one generated class fewer at start-up."""

    __slots__ = ("expires", "scopes", "value")

    def __init__(self, value: str, scopes: frozenset[Scope], expires: float) -> None:
        self.value = value
        self.scopes = scopes
        self.expires = expires

    def __repr__(self) -> str:
        return f"_Token(value=<hidden>, scopes={sorted(self.scopes)!r}, expires={self.expires!r})"


Send = Callable[..., "Response"]
"""``send(method, url, *, params=None, headers=None, data=None) -> Response`` with
retries, no registry authorization and no redirects to other hosts carrying credentials."""


class Authenticator:
    """The authentication state of one registry: which challenge it sent, the credential
    (looked up once, when first challenged) and the tokens fetched so far, each with the
    scopes it grants. Thread-safe.

    ``insecure`` allows sending credentials to a plain-HTTP token realm on a host that is
    not a loopback one.
    """

    def __init__(
        self,
        registry: str,
        credentials: Credential | CredentialSource | None = None,
        *,
        insecure: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = normalize_registry(registry)
        self._source = credentials
        self._credential: Credential | None = None
        self._looked_up = False
        self._insecure = insecure
        self._clock = clock
        self._challenge: Challenge | None = None
        self._tokens: list[_Token] = []
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        scheme = self._challenge.scheme if self._challenge else "unknown"
        return f"Authenticator({self.registry!r}, scheme={scheme!r}, tokens={len(self._tokens)})"

    @property
    def credential(self) -> Credential | None:
        """The registry's credential from the source (looked up once)."""
        with self._lock:
            if not self._looked_up:
                source = self._source
                if isinstance(source, Credential) or source is None:
                    self._credential = source
                else:
                    self._credential = source.get(self.registry)
                self._looked_up = True
            return self._credential

    @property
    def scheme(self) -> str:
        """``basic``, ``bearer``, or "" before any challenge."""
        return self._challenge.scheme if self._challenge else ""

    def authorization(self, scopes: frozenset[Scope], send: Send) -> str | None:
        """The ``Authorization`` header value for a request needing ``scopes``, fetching a
        token if the registry is known to want one and none cached covers them; None while
        the registry has not challenged."""
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return None
            if challenge.scheme == "basic":
                credential = self.credential
                return credential.basic() if credential is not None else None
            token = self._cached(scopes)
            if token is None:
                token = self._fetch(challenge, scopes, send)
            return f"Bearer {token.value}"

    def challenged(
        self, headers: Sequence[str], scopes: frozenset[Scope], sent: str | None, send: Send
    ) -> bool:
        """Handle a ``401``: remember the challenge and get what it asks for. Returns True
        when the request is worth sending again (its authorization would now differ from
        ``sent``), False when nothing more can be done."""
        challenges = parse_challenges(headers)
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or next(
            (c for c in challenges if c.scheme == "basic"), None
        )
        if chosen is None:
            return False
        with self._lock:
            self._challenge = chosen
            if chosen.scheme == "basic":
                credential = self.credential
                if credential is None or credential.is_identity_token:
                    return False
                return credential.basic() != sent
            wanted = scopes | Scope.parse(chosen.get("scope"))
            if sent is not None and sent.startswith("Bearer "):
                # the token we sent was refused: drop it, widen the scopes once
                self._tokens = [t for t in self._tokens if f"Bearer {t.value}" != sent]
            token = self._fetch(chosen, wanted, send)
            return f"Bearer {token.value}" != sent

    def _cached(self, scopes: frozenset[Scope]) -> _Token | None:
        now = self._clock()
        self._tokens = [t for t in self._tokens if t.expires > now]
        for token in reversed(self._tokens):
            if _covers(token.scopes, scopes):
                return token
        return None

    def _fetch(self, challenge: Challenge, scopes: frozenset[Scope], send: Send) -> _Token:
        realm = challenge.get("realm")
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryError(
                f"{self.registry}: the registry's token realm is not an http(s) URL",
                registry=self.registry,
            )
        credential = self.credential
        if (
            parts.scheme == "http"
            and credential is not None
            and not self._insecure
            and not is_insecure_default(parts.netloc)
        ):
            raise RegistryError(
                f"{self.registry}: refusing to send credentials to the plain-HTTP token "
                f"service at {parts.netloc}",
                hint="allow it with --insecure for this registry if that is intended",
                registry=self.registry,
            )
        service = challenge.get("service")
        scope_params = scope_strings(scopes)
        if credential is not None and credential.is_identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credential.secret,
                "client_id": "alpenglow",
                "service": service,
                "scope": " ".join(scope_params),
            }
            response = send("POST", realm, data=form)
        else:
            params: list[tuple[str, str]] = []
            if service:
                params.append(("service", service))
            params.extend(("scope", s) for s in scope_params)
            headers = {}
            if credential is not None:
                params.append(("account", credential.username))
                headers["Authorization"] = credential.basic()
            response = send("GET", realm, params=params, headers=headers)
        if response.status != 200:
            what = "refused the credentials" if credential is not None else "refused"
            hint = (
                f"check the credentials for {self.registry} (alpenglow login {self.registry})"
                if response.status in (401, 403)
                else None
            )
            raise RegistryError(
                f"{self.registry}: the token service at {parts.netloc} {what}: "
                f"HTTP {response.status}{_reason(response)}",
                hint=hint,
                registry=self.registry,
                status=response.status,
            )
        try:
            obj = json.loads(response.content)
            value = obj.get("token") or obj.get("access_token")
            lifetime = obj.get("expires_in", _DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError):
            value, lifetime = None, None
        if not isinstance(value, str) or not value:
            raise RegistryError(
                f"{self.registry}: the token service at {parts.netloc} sent no token",
                registry=self.registry,
            )
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = _DEFAULT_TOKEN_LIFETIME
        expires = self._clock() + max(float(lifetime) - _TOKEN_MARGIN, float(lifetime) / 2)
        token = _Token(value, scopes, expires)
        self._tokens.append(token)
        return token


def _reason(response: Response) -> str:
    phrase = response.reason
    return f" {phrase}" if phrase else ""
