"""The registry client against real distribution registries: auth, TLS, paging, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fabfile.registry.client import RegistryClient
from fabfile.registry.errors import (
    AccessDenied,
    AuthenticationRequired,
    DeletionRefused,
    NotFound,
    RegistryUnavailable,
)
from fabfile.registry.manifest import OCI_INDEX
from tests.registry import images
from tests.registry.servers import Certificate, Registry, TokenServer

Start = Callable[..., Registry]
Clients = Callable[[Any], RegistryClient]
PASSWORD = "s3cret-Pa55"


@pytest.fixture
def token_server() -> Any:
    server = TokenServer(
        users={"pusher": (PASSWORD, {"pull", "push", "*"}), "reader": (PASSWORD, {"pull"})},
        anonymous={"pull"},
    )
    yield server
    server.close()


def _round_trip(client: RegistryClient) -> None:
    image = images.make_index()
    images.push(client, "team/pause", "3.10", image)
    head = client.head_manifest("team/pause", "3.10")
    assert head is not None and head.digest == image.digest and head.media_type == OCI_INDEX
    assert client.get_manifest("team/pause", "3.10").raw == image.top.raw


def test_tls_with_basic_auth(
    start_registry: Start, clients: Clients, ca: tuple[Certificate, Certificate, str]
) -> None:
    _, server, ca_file = ca
    registry = start_registry(tls=server, ca_file=ca_file, htpasswd={"pusher": PASSWORD})
    client = clients(registry.endpoint(username="pusher", password=PASSWORD))
    assert client.ping().auth_scheme == "basic"
    _round_trip(client)


@pytest.mark.parametrize(
    ("username", "password", "error"),
    [
        (None, None, "asks for a user name and password and none are configured"),
        ("pusher", "wrong-password", "rejected the password of user 'pusher'"),
    ],
    ids=["no-credentials", "wrong-password"],
)
def test_basic_auth_failures_name_the_cause_not_the_password(
    start_registry: Start, clients: Clients, username: str, password: str, error: str
) -> None:
    registry = start_registry(htpasswd={"pusher": PASSWORD})
    client = clients(registry.endpoint(username=username, password=password))
    with pytest.raises(AuthenticationRequired, match=error) as caught:
        client.tags("team/pause")
    assert PASSWORD not in str(caught.value) and "wrong-password" not in str(caught.value)


def test_tls_with_untrusted_ca_is_refused(
    start_registry: Start, clients: Clients, ca: tuple[Certificate, Certificate, str]
) -> None:
    _, server, ca_file = ca
    registry = start_registry(tls=server, ca_file=ca_file)
    with pytest.raises(RegistryUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        clients(registry.endpoint(ca_file=None)).ping()


def test_bearer_token_with_credentials(
    start_registry: Start, clients: Clients, token_server: TokenServer
) -> None:
    registry = start_registry(token=token_server)
    client = clients(registry.endpoint(username="pusher", password=PASSWORD))
    _round_trip(client)
    assert client.ping().auth_scheme == "bearer"
    assert {r["user"] for r in token_server.requests} == {"pusher"}
    assert client.catalog() == ["team/pause"]
    # One token per scope set, cached: far fewer token requests than registry requests.
    assert len(token_server.requests) <= 6


def test_bearer_token_anonymous_pull_and_refused_push(
    start_registry: Start, clients: Clients, token_server: TokenServer
) -> None:
    registry = start_registry(token=token_server)
    _round_trip(clients(registry.endpoint(username="pusher", password=PASSWORD)))

    anonymous = clients(registry.endpoint())
    assert anonymous.head_manifest("team/pause", "3.10") is not None
    reader = clients(registry.endpoint(username="reader", password=PASSWORD))
    with pytest.raises(AccessDenied, match="granted less than repository:team/pause:pull,push"):
        reader.start_upload("team/pause")
    stranger = clients(registry.endpoint(username="reader", password="nope"))
    with pytest.raises(AuthenticationRequired, match="refused user 'reader'") as caught:
        stranger.tags("team/pause")
    assert "nope" not in str(caught.value)


def test_catalog_and_tags_follow_pagination(start_registry: Start, clients: Clients) -> None:
    registry = start_registry(maxentries=2)
    client = clients(registry.endpoint())
    image = images.make_image()
    repositories = [f"repo{n}" for n in range(5)]
    for repository in repositories:
        images.push(client, repository, "1", image)
    tags = [f"v{n}" for n in range(7)]
    for tag in tags:
        client.put_manifest("repo0", tag, image.top)

    assert client.catalog() == repositories
    assert sorted(client.tags("repo0", page_size=2)) == sorted([*tags, "1"])
    pages = [line for line in registry.access_log() if "GET /v2/_catalog" in line]
    assert len(pages) >= 3


def test_not_found_names_registry_repository_and_reference(
    start_registry: Start, clients: Clients
) -> None:
    registry = start_registry()
    client = clients(registry.endpoint())
    with pytest.raises(NotFound, match=rf"{registry.address}/absent:1\.0: GET .* 404 .*UNKNOWN"):
        client.get_manifest("absent", "1.0")
    assert client.head_manifest("absent", "1.0") is None


@pytest.mark.parametrize(
    ("options", "reason", "text"),
    [
        ({"delete": False}, "disabled", "storage.delete.enabled: true"),
        ({"proxy": "upstream"}, "pull-through-cache", "pull-through cache"),
        ({"readonly": True}, "read-only", "read-only maintenance mode"),
    ],
    ids=["deletion-disabled", "pull-through-cache", "read-only"],
)
def test_delete_refusals_say_why(
    start_registry: Start, clients: Clients, options: dict[str, Any], reason: str, text: str
) -> None:
    upstream = start_registry("upstream")
    image = images.make_image()
    images.push(clients(upstream.endpoint()), "pause", "3.10", image)
    if options.get("proxy"):
        options = {**options, "proxy": upstream.url}
    registry = start_registry("subject", **options)
    client = clients(registry.endpoint())
    with pytest.raises(DeletionRefused, match=text) as caught:
        client.delete_manifest("pause", image.digest)
    assert caught.value.reason == reason
    assert not client.deletion_enabled("pause")


class _Flaky(httpx.BaseTransport):
    """A real transport that first drops a connection and then answers 503 once."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.failures = ["drop", "503"]
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.failures:
            failure = self.failures.pop(0)
            if failure == "drop":
                raise httpx.RemoteProtocolError("connection dropped", request=request)
            return httpx.Response(503, request=request)
        return self.inner.handle_request(request)


def test_retries_dropped_connections_and_5xx(start_registry: Start) -> None:
    registry = start_registry()
    flaky = _Flaky()
    with RegistryClient(registry.endpoint(transport=flaky), backoff_s=0.01) as client:
        assert client.ping().status == 200
    assert flaky.calls == 3
