"""A registry v2 HTTP client on httpx: manifests as exact bytes, blobs as streams.

Every manifest HEAD and GET sends the full Accept list (OCI index, Docker manifest list, OCI
manifest, Docker v2 manifest), so a tag resolves to the digest of the object it really points
at. Requests whose body can be replayed are retried with backoff on 5xx answers and dropped
connections; blob uploads are retried as a whole by their caller. One `RegistryClient` may be
used from several threads at once.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import certifi
import httpx

from fabfile.registry.auth import Authenticator, Credentials
from fabfile.registry.blobs import check_digest, verified_chunks
from fabfile.registry.errors import (
    AccessDenied,
    AuthenticationRequired,
    DeletionRefused,
    DigestMismatch,
    NotFound,
    ProtocolError,
    RegistryError,
    RegistryUnavailable,
    UnsupportedMediaType,
)
from fabfile.registry.forwarding import ForwardingTransport
from fabfile.registry.manifest import MANIFEST_ACCEPT, Manifest
from fabfile.registry.reference import DOCKER_HUB

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({500, 502, 503, 504})
_DOCKER_HUB_API = "https://registry-1.docker.io"
_ZERO_DIGEST = "sha256:" + "0" * 64
_DELETION_REFUSED = {
    "disabled": "deletion is disabled on this registry (405 UNSUPPORTED); set"
    " storage.delete.enabled: true in its config.yml (and check that no"
    " REGISTRY_STORAGE_DELETE_ENABLED variable overrides it), then restart the registry",
    "pull-through-cache": "the registry is a pull-through cache (proxy.remoteurl is set) and"
    " refuses every delete (405 UNSUPPORTED); delete on the upstream registry instead",
    "read-only": "the registry is in read-only maintenance mode"
    " (storage.maintenance.readonly.enabled) and refuses deletes (405); turn read-only off"
    " and restart it",
}


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach one registry.

    `url` is `http://host:port` or `https://host:port`. `connect_to` sends every connection for
    that host to another address (a local tunnel port) while the Host header, SNI and certificate
    check keep the real name. `transport` replaces the HTTP transport entirely.
    """

    url: str
    ca_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify: bool = True
    connect_to: tuple[str, int] | None = None
    transport: httpx.BaseTransport | None = None
    timeout: float = 60.0

    @classmethod
    def for_registry(cls, registry: str, *, plain_http: bool = False, **options: Any) -> Endpoint:
        """The endpoint for a registry name as it appears in image references."""
        if registry == DOCKER_HUB:
            return cls(_DOCKER_HUB_API, **options)
        return cls(f"{'http' if plain_http else 'https'}://{registry}", **options)

    @property
    def host(self) -> str:
        """`host:port` as written in image references for this registry."""
        return httpx.URL(self.url).netloc.decode("ascii")


@dataclass(frozen=True)
class PingResult:
    """What `GET /v2/` showed: status, API version header, and the auth scheme asked for."""

    url: str
    status: int
    api_version: str
    auth_scheme: str


@dataclass(frozen=True)
class ManifestHead:
    """A manifest's identity from HEAD, without its body."""

    digest: str
    media_type: str
    size: int


def _pull(repository: str) -> tuple[str, ...]:
    return (f"repository:{repository}:pull",)


def _push(repository: str) -> tuple[str, ...]:
    return (f"repository:{repository}:pull,push",)


class RegistryClient:
    """Client for one registry endpoint; see the module docstring."""

    def __init__(self, endpoint: Endpoint, *, retries: int = 4, backoff_s: float = 0.25) -> None:
        self.endpoint = endpoint
        self.registry = endpoint.host
        self._base = endpoint.url.rstrip("/")
        self._retries = retries
        self._backoff_s = backoff_s
        self._http = httpx.Client(
            transport=self._transport(endpoint),
            timeout=httpx.Timeout(endpoint.timeout, connect=10.0),
            trust_env=False,
        )
        credentials = (
            Credentials(endpoint.username, endpoint.password or "") if endpoint.username else None
        )
        self._auth = Authenticator(self.registry, credentials, self._http)

    @staticmethod
    def _transport(endpoint: Endpoint) -> httpx.BaseTransport:
        verify: ssl.SSLContext | bool = False
        if endpoint.verify:
            verify = _ssl_context(endpoint.ca_file)
        transport = endpoint.transport or httpx.HTTPTransport(
            verify=verify, limits=httpx.Limits(max_connections=32, max_keepalive_connections=16)
        )
        if endpoint.connect_to:
            url = httpx.URL(endpoint.url)
            transport = ForwardingTransport(transport, url.host, endpoint.connect_to)
        return transport

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the API -------------------------------------------------------------------------------

    def ping(self) -> PingResult:
        """`GET /v2/` with authentication; a registry that answers at all is reported."""
        response = self._request("GET", "/v2/", scopes=(), ok=(200,))
        scheme = self._auth.scheme
        return PingResult(
            url=f"{self._base}/v2/",
            status=response.status_code,
            api_version=response.headers.get("Docker-Distribution-API-Version", ""),
            auth_scheme=scheme or "anonymous",
        )

    def catalog(self, page_size: int | None = None) -> list[str]:
        """Every repository, following `Link` pagination to the end.

        Without `page_size` the registry picks the page size; asking for more than its
        `catalog.maxentries` is an error on distribution.
        """
        return self._paginate("/v2/_catalog", "repositories", ("registry:catalog:*",), page_size)

    def tags(self, repository: str, page_size: int | None = None) -> list[str]:
        """Every tag of `repository`, following pagination; empty when it has none."""
        return self._paginate(
            f"/v2/{repository}/tags/list", "tags", _pull(repository), page_size, repository
        )

    def head_manifest(self, repository: str, reference: str) -> ManifestHead | None:
        """Digest, media type and size of a manifest, or None when it does not exist."""
        try:
            response = self._request(
                "HEAD",
                f"/v2/{repository}/manifests/{reference}",
                scopes=_pull(repository),
                headers={"Accept": MANIFEST_ACCEPT},
                ok=(200,),
                context=(repository, reference),
            )
        except NotFound:
            return None
        digest = response.headers.get("Docker-Content-Digest", "")
        if not digest:
            digest = self.get_manifest(repository, reference).digest
        return ManifestHead(
            digest=digest,
            media_type=response.headers.get("Content-Type", "").split(";")[0],
            size=int(response.headers.get("Content-Length", "0")),
        )

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest's exact bytes, its digest verified against the body."""
        response = self._request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scopes=_pull(repository),
            headers={"Accept": MANIFEST_ACCEPT},
            ok=(200,),
            context=(repository, reference),
        )
        try:
            manifest = Manifest.from_bytes(response.content, response.headers.get("Content-Type"))
        except UnsupportedMediaType as exc:
            raise UnsupportedMediaType(
                str(exc), registry=self.registry, repository=repository, reference=reference
            ) from None
        announced = response.headers.get("Docker-Content-Digest")
        expected = reference if reference.startswith("sha256:") else announced
        if expected and expected != manifest.digest:
            raise DigestMismatch(
                f"manifest body hashes to {manifest.digest}, not to {expected}",
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        return manifest

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> str:
        """Push the exact bytes under a tag or digest; returns the digest the registry stored."""
        response = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scopes=_push(repository),
            headers={"Content-Type": manifest.media_type},
            content=manifest.raw,
            ok=(201,),
            context=(repository, reference),
        )
        stored = response.headers.get("Docker-Content-Digest", manifest.digest)
        if stored != manifest.digest:
            raise DigestMismatch(
                f"the registry stored the manifest as {stored}, not as {manifest.digest}",
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        return stored

    def delete_manifest(self, repository: str, reference: str) -> None:
        """DELETE a manifest by digest (or by tag, where the registry supports that).

        A 405 becomes DeletionRefused saying why: deletion disabled, or a registry that refuses
        every write (a pull-through cache, or read-only maintenance mode).
        """
        try:
            self._request(
                "DELETE",
                f"/v2/{repository}/manifests/{reference}",
                scopes=_push(repository),
                ok=(202,),
                context=(repository, reference),
            )
        except DeletionRefused as refused:
            reason = refused.reason or self._why_deletion_refused(repository)
            raise DeletionRefused(
                _DELETION_REFUSED[reason],
                reason=reason,
                registry=self.registry,
                repository=repository,
                reference=reference,
            ) from None

    def require_deletion(self, repository: str) -> None:
        """Raise DeletionRefused (with its reason) unless this registry accepts deletes.

        The probe deletes a digest no manifest has: 404 means deletes work, 405 that they don't.
        """
        try:
            self.delete_manifest(repository, _ZERO_DIGEST)
        except NotFound:
            return

    def deletion_enabled(self, repository: str) -> bool:
        try:
            self.require_deletion(repository)
        except DeletionRefused:
            return False
        return True

    def blob_exists(self, repository: str, digest: str) -> bool:
        try:
            self._request(
                "HEAD",
                f"/v2/{repository}/blobs/{digest}",
                scopes=_pull(repository),
                ok=(200,),
                context=(repository, digest),
            )
        except NotFound:
            return False
        return True

    def start_upload(
        self, repository: str, mount: str | None = None, mount_from: str | None = None
    ) -> str | None:
        """POST an upload; with `mount`, try a cross-repository mount first.

        Returns None when the blob was mounted (201), else the upload location (202).
        """
        params = {"mount": mount, "from": mount_from} if mount and mount_from else None
        scopes = _push(repository) + (_pull(mount_from) if params and mount_from else ())
        response = self._request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            scopes=scopes,
            params=params,
            ok=(201, 202),
            context=(repository, mount or ""),
        )
        if response.status_code == 201:
            return None
        location = response.headers.get("Location")
        if not location:
            raise ProtocolError("upload started without a Location header", registry=self.registry)
        return location

    def mount_blob(self, repository: str, digest: str, mount_from: str) -> bool:
        """Mount `digest` from another repository; False (session cancelled) when not mounted."""
        location = self.start_upload(repository, digest, mount_from)
        if location is None:
            return True
        self.cancel_upload(repository, location)
        return False

    def upload_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        chunks: Iterable[bytes],
        location: str | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        """Monolithic upload (POST, then PUT ?digest= with Content-Length), streamed.

        The body is verified while it streams and its last chunk is held back until the digest
        matches, so a wrong blob is never committed. `on_bytes(n)` reports progress.
        """
        check_digest(digest)
        if location is None:
            location = self.start_upload(repository)
            assert location is not None
        url = self._absolute(location).copy_merge_params({"digest": digest})
        try:
            self._request(
                "PUT",
                url,
                scopes=_push(repository),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                content=verified_chunks(chunks, digest, size, on_bytes),
                ok=(201,),
                context=(repository, digest),
            )
        except BaseException:
            self.cancel_upload(repository, location)
            raise

    def cancel_upload(self, repository: str, location: str) -> None:
        """Best effort: abandon an upload session so the registry can drop it."""
        try:
            self._request("DELETE", location, scopes=_push(repository), ok=(200, 202, 204, 404))
        except RegistryError:
            return

    @contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[Iterator[bytes]]:
        """Stream a blob's bytes (following redirects to storage); the caller verifies them."""
        response = self._request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scopes=_pull(repository),
            ok=(200,),
            stream=True,
            context=(repository, digest),
        )
        try:
            yield response.iter_raw()
        finally:
            response.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _absolute(self, location: str | httpx.URL) -> httpx.URL:
        return httpx.URL(self._base).join(location)

    def _paginate(
        self,
        path: str,
        key: str,
        scopes: tuple[str, ...],
        page_size: int | None,
        repository: str = "",
    ) -> list[str]:
        found: list[str] = []
        first = self._absolute(path)
        url: httpx.URL | None = first.copy_merge_params({"n": page_size}) if page_size else first
        while url is not None:
            response = self._request("GET", url, scopes=scopes, ok=(200,), context=(repository, ""))
            try:
                found.extend(response.json().get(key) or [])
            except (ValueError, AttributeError):
                raise ProtocolError(
                    f"{path} answered with a body that is not the expected JSON",
                    registry=self.registry,
                    repository=repository,
                ) from None
            following = response.links.get("next", {}).get("url")
            url = self._absolute(following) if following else None
        return found

    def _request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        scopes: tuple[str, ...],
        ok: tuple[int, ...],
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        stream: bool = False,
        context: tuple[str, str] = ("", ""),
    ) -> httpx.Response:
        """Send with auth, retries and backoff; return the response or raise a typed error."""
        replayable = content is None or isinstance(content, bytes)
        target = self._absolute(url)
        attempt = 0
        answered_challenge = False
        while True:
            request = self._http.build_request(
                method,
                target,
                params=params,
                headers={**(headers or {}), **self._auth.headers(scopes)},
                content=content,
            )
            try:
                response = self._http.send(request, stream=True, follow_redirects=method == "GET")
            except httpx.TransportError as exc:
                tls_error = _tls_error(exc)
                if tls_error:
                    raise RegistryUnavailable(
                        f"TLS with {target.host} failed: {tls_error}; give the CA that signed the"
                        " registry certificate as ca_file, and use the name the certificate is for",
                        registry=self.registry,
                    ) from None
                if replayable and attempt < self._retries:
                    attempt += 1
                    log.debug("%s %s: %s, retry %d", method, target.path, exc, attempt)
                    time.sleep(self._backoff_s * 2 ** (attempt - 1))
                    continue
                raise RegistryUnavailable(
                    f"{method} {target.path} failed: {type(exc).__name__}: {exc}",
                    registry=self.registry,
                    repository=context[0],
                    reference=context[1],
                ) from None
            status = response.status_code
            if status in ok:
                if not stream:
                    response.read()
                    response.close()
                return response
            response.read()
            response.close()
            if status == 401 and not answered_challenge and replayable:
                answered_challenge = True
                self._auth.answer(response, scopes)
                continue
            if status in _RETRY_STATUS and replayable and attempt < self._retries:
                attempt += 1
                log.debug("%s %s: HTTP %d, retry %d", method, target.path, status, attempt)
                time.sleep(self._backoff_s * 2 ** (attempt - 1))
                continue
            raise self._error(method, target, response, scopes, context)

    def _error(
        self,
        method: str,
        url: httpx.URL,
        response: httpx.Response,
        scopes: tuple[str, ...],
        context: tuple[str, str],
    ) -> RegistryError:
        status = response.status_code
        detail = _error_text(response) or response.reason_phrase
        where = {"registry": self.registry, "repository": context[0], "reference": context[1]}
        what = f"{method} {url.path} answered {status} {detail}"
        if status == 401 and "insufficient_scope" in response.headers.get("WWW-Authenticate", ""):
            needed = " ".join(scopes)
            return AccessDenied(f"{what}; the token service granted less than {needed}", **where)
        if status == 401:
            return AuthenticationRequired(f"{what}; {self._auth.refusal(scopes)}", **where)
        if status == 403:
            needed = " ".join(scopes) or "this operation"
            return AccessDenied(f"{what}; the account lacks the permission for {needed}", **where)
        if status == 404:
            return NotFound(what, **where)
        if status == 405 and method == "DELETE":
            # Read-only maintenance mode answers 405 from the router, with an Allow header.
            reason = "read-only" if "Allow" in response.headers else ""
            return DeletionRefused(what, reason=reason, **where)
        if status == 415:
            return UnsupportedMediaType(what, **where)
        if status >= 500:
            return RegistryUnavailable(f"{what} (after {self._retries} retries)", **where)
        return ProtocolError(what, **where)

    def _why_deletion_refused(self, repository: str) -> str:
        """Tell a pull-through cache (which refuses uploads too) from deletion disabled."""
        try:
            location = self.start_upload(repository)
        except RegistryError:
            return "pull-through-cache"
        if location:
            self.cancel_upload(repository, location)
        return "disabled"


_SSL_CONTEXTS: dict[str | None, ssl.SSLContext] = {}
_SSL_LOCK = threading.Lock()


def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """One verifying context per CA file (None: certifi's bundle), shared by all clients."""
    with _SSL_LOCK:
        if ca_file not in _SSL_CONTEXTS:
            _SSL_CONTEXTS[ca_file] = ssl.create_default_context(cafile=ca_file or certifi.where())
        return _SSL_CONTEXTS[ca_file]


def _tls_error(exc: BaseException) -> str:
    """The TLS failure behind a transport error, if that is what it is (never worth a retry)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return ""


def _error_text(response: httpx.Response) -> str:
    """`CODE: message` from a distribution error body, else empty."""
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = [
        f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
        for e in errors
        if isinstance(e, dict)
    ]
    return "(" + "; ".join(parts) + ")" if parts else ""
