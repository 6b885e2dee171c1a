"""Send an httpx client's connections for one host to another address (a tunnel's local port).

The request keeps its URL and Host header, and TLS gets the real name as SNI and for the
certificate check, so a registry reached through a port forward is verified as itself.
"""

from __future__ import annotations

import httpx


class ForwardingTransport(httpx.BaseTransport):
    """Send requests for `host` to `address` instead; other hosts pass through unchanged."""

    def __init__(self, inner: httpx.BaseTransport, host: str, address: tuple[str, int]) -> None:
        self._inner = inner
        self._host = host
        self._address = address

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != self._host:
            return self._inner.handle_request(request)
        forwarded = httpx.Request(
            request.method,
            request.url.copy_with(host=self._address[0], port=self._address[1]),
            headers=request.headers,
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": self._host},
        )
        return self._inner.handle_request(forwarded)

    def close(self) -> None:
        self._inner.close()
