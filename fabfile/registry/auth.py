"""Registry authentication: anonymous, basic, and bearer tokens from a token service.

The registry's first 401 says which scheme it wants (`WWW-Authenticate`). For Basic, the
credentials are sent on every later request. For Bearer, a token is fetched from the realm for
the scopes a request needs (with the credentials as Basic, when there are any) and cached per
scope until shortly before it expires. The password is held only here and never formatted into a
message or a log line.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass, field

import httpx

from fabfile.registry.errors import AccessDenied, AuthenticationRequired, ProtocolError

_PARAM = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
_TOKEN_MARGIN_S = 10.0
_DEFAULT_TOKEN_LIFETIME_S = 60.0


@dataclass(frozen=True)
class Challenge:
    """A parsed `WWW-Authenticate` header: the scheme and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge:
    """Parse `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`."""
    header = header.strip()
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if not match or match.end() == position:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params[match.group(1).lower()] = value
        position = match.end()
    return Challenge(scheme.lower(), params)


@dataclass(frozen=True)
class Credentials:
    """A user name and password; the password is left out of `repr`."""

    username: str
    password: str = field(repr=False)


class Authenticator:
    """Decides the Authorization header for each request and answers 401 challenges."""

    def __init__(self, registry: str, credentials: Credentials | None, http: httpx.Client) -> None:
        self._registry = registry
        self._credentials = credentials
        self._http = http
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}

    @property
    def scheme(self) -> str:
        """The scheme the registry asked for so far: `basic`, `bearer`, or empty."""
        with self._lock:
            return self._challenge.scheme if self._challenge else ""

    def headers(self, scopes: tuple[str, ...]) -> dict[str, str]:
        """The Authorization header for `scopes`, fetching a token when one is due."""
        with self._lock:
            challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            return self._basic_header()
        token = self._cached_token(scopes)
        if token is None:
            token = self._fetch_token(challenge, scopes)
        return {"Authorization": f"Bearer {token}"}

    def answer(self, response: httpx.Response, scopes: tuple[str, ...]) -> None:
        """Learn from a 401 so that the request can be sent once more.

        Raises AuthenticationRequired when retrying cannot help: no credentials for Basic, a
        password already refused, or an unknown scheme.
        """
        header = response.headers.get("WWW-Authenticate", "")
        challenge = parse_challenge(header) if header else Challenge("")
        if challenge.scheme == "basic":
            if self._credentials is None:
                raise AuthenticationRequired(
                    "the registry asks for a user name and password and none are configured",
                    registry=self._registry,
                )
            sent = response.request.headers.get("Authorization", "").lower().startswith("basic ")
            with self._lock:
                # Parallel requests all meet the first 401; only one sent with the password
                # proves the password wrong.
                if sent and self._challenge is not None and self._challenge.scheme == "basic":
                    raise AuthenticationRequired(
                        "the registry rejected the password of user"
                        f" {self._credentials.username!r}",
                        registry=self._registry,
                    )
                self._challenge = challenge
            return
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise AuthenticationRequired(
                f"the registry answered 401 with an unusable challenge {challenge.scheme!r}",
                registry=self._registry,
            )
        with self._lock:
            self._challenge = challenge
            self._tokens.pop(scopes, None)

    def refusal(self, scopes: tuple[str, ...]) -> str:
        """Why a request still got 401 after its challenge was answered, for the message."""
        who = f"user {self._credentials.username!r}" if self._credentials else "anonymous access"
        scheme = self.scheme
        if scheme == "basic":
            return f"the registry rejected the password of {who}"
        if scheme == "bearer":
            wanted = " ".join(scopes) or "the API"
            return f"the registry refused the token issued to {who} for {wanted}"
        return "the registry requires authentication; configure a user name and password"

    def _basic_header(self) -> dict[str, str]:
        assert self._credentials is not None
        pair = f"{self._credentials.username}:{self._credentials.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}

    def _cached_token(self, scopes: tuple[str, ...]) -> str | None:
        cached = self._tokens.get(scopes)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        return None

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> str:
        params: list[tuple[str, str | int | float | bool | None]] = []
        if "service" in challenge.params:
            params.append(("service", challenge.params["service"]))
        wanted = scopes or tuple(challenge.params.get("scope", "").split())
        params.extend(("scope", scope) for scope in wanted)
        auth = (
            httpx.BasicAuth(self._credentials.username, self._credentials.password)
            if self._credentials
            else None
        )
        realm = challenge.params["realm"]
        try:
            response = self._http.get(realm, params=params, auth=auth)
        except httpx.HTTPError as exc:
            raise AuthenticationRequired(
                f"the token service {realm} could not be reached ({type(exc).__name__})",
                registry=self._registry,
            ) from None
        if response.status_code in (401, 403):
            who = f"user {self._credentials.username!r}" if self._credentials else "anonymous"
            error = AuthenticationRequired if response.status_code == 401 else AccessDenied
            raise error(
                f"the token service {realm} refused {who} for {' '.join(wanted) or 'the API'}"
                f" (HTTP {response.status_code})",
                registry=self._registry,
            )
        try:
            body = response.json()
            token = str(body.get("token") or body["access_token"])
        except (ValueError, KeyError, AttributeError):
            raise ProtocolError(
                f"the token service {realm} answered HTTP {response.status_code} without a token",
                registry=self._registry,
            ) from None
        lifetime = float(body.get("expires_in") or _DEFAULT_TOKEN_LIFETIME_S)
        with self._lock:
            expiry = time.monotonic() + max(lifetime - _TOKEN_MARGIN_S, 1.0)
            self._tokens[scopes] = (token, expiry)
        return token
