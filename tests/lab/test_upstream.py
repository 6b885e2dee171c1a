"""The upstream registry: TLS from the lab CA, basic auth, and the synthetic images it holds."""

from __future__ import annotations

import json

import httpx
import pytest

from fabfile.lab import HostStatus, paths, synthetic, upstream

pytestmark = pytest.mark.lab

ACCEPT = f"{synthetic.INDEX}, {synthetic.MANIFEST}"


def test_upstream_refuses_without_auth_and_answers_with_it(lab: list[HostStatus]) -> None:
    with upstream.client(auth=False) as anonymous:
        refused = anonymous.get("/v2/")
    with upstream.client() as authed:
        answered = authed.get("/v2/")
    assert refused.status_code == 401
    assert "Basic" in refused.headers["WWW-Authenticate"]
    assert answered.status_code == 200


def test_upstream_certificate_is_not_trusted_without_the_lab_ca(lab: list[HostStatus]) -> None:
    with (
        httpx.Client(base_url=upstream.URL, trust_env=False) as http,
        pytest.raises(httpx.ConnectError),
    ):
        http.get("/v2/")


def _expected() -> list[tuple[str, dict[str, object]]]:
    published = json.loads(paths.UPSTREAM_JSON.read_text()) if paths.UPSTREAM_JSON.exists() else {}
    return sorted(published.get("images", {}).items())


@pytest.mark.parametrize("spec", synthetic.SPECS, ids=lambda s: s.ref)
def test_upstream_serves_each_image_with_the_published_digest(
    lab: list[HostStatus], spec: synthetic.Spec
) -> None:
    expected = dict(_expected())[spec.ref]
    with upstream.client() as http:
        reply = http.get(f"/v2/{spec.repository}/manifests/{spec.tag}", headers={"Accept": ACCEPT})
    assert reply.status_code == 200
    assert reply.headers["Docker-Content-Digest"] == expected["digest"]
    document = reply.json()
    if len(spec.platforms) > 1:
        assert document["mediaType"] == synthetic.INDEX
        platforms = {
            f"{m['platform']['os']}/{m['platform']['architecture']}" for m in document["manifests"]
        }
        assert platforms == set(spec.platforms)
    else:
        sizes = [layer["size"] for layer in document["layers"]]
        assert len(sizes) == len(spec.layers)
        assert all(size > 0.9 * want for size, want in zip(sizes, spec.layers, strict=True))
