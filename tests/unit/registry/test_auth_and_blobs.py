"""Challenge parsing, streaming verification and manifest reading, as cases."""

from __future__ import annotations

import hashlib
import json

import pytest

from fabfile.registry.auth import Credentials, parse_challenge
from fabfile.registry.blobs import verified_chunks
from fabfile.registry.errors import DigestMismatch, ProtocolError, UnsupportedMediaType
from fabfile.registry.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
)

CHALLENGES = [
    (
        'Bearer realm="https://auth.example.test/token",service="registry.example.test",'
        'scope="repository:library/busybox:pull"',
        "bearer",
        {
            "realm": "https://auth.example.test/token",
            "service": "registry.example.test",
            "scope": "repository:library/busybox:pull",
        },
    ),
    (
        'Bearer realm="https://a.test/t",scope="repository:x:pull,push",error="insufficient_scope"',
        "bearer",
        {
            "realm": "https://a.test/t",
            "scope": "repository:x:pull,push",
            "error": "insufficient_scope",
        },
    ),
    ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
    ("Basic realm=plain", "basic", {"realm": "plain"}),
    ('bearer  realm = "q\\"uoted" , service=svc', "bearer", {"realm": 'q"uoted', "service": "svc"}),
]  # fmt: skip


@pytest.mark.parametrize(("header", "scheme", "params"), CHALLENGES)
def test_parse_challenge(header: str, scheme: str, params: dict[str, str]) -> None:
    challenge = parse_challenge(header)
    assert (challenge.scheme, challenge.params) == (scheme, params)


def test_credentials_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Credentials("ops", "hunter2"))


DATA = b"x" * 5000 + b"y" * 3
GOOD = "sha256:" + hashlib.sha256(DATA).hexdigest()
VERIFY_CASES = [
    ("whole", [DATA], GOOD, len(DATA), None),
    ("chunks", [DATA[:1000], b"", DATA[1000:4000], DATA[4000:]], GOOD, len(DATA), None),
    ("tampered", [DATA[:4000], DATA[4000:-1] + b"z"], GOOD, len(DATA), "hashes to"),
    ("short", [DATA[:1000], DATA[1000:-1]], GOOD, len(DATA), "ended after"),
    ("long", [DATA[:1000], DATA[1000:] + b"extra"], GOOD, len(DATA), "longer than"),
]


@pytest.mark.parametrize(
    ("name", "chunks", "digest", "size", "error"), VERIFY_CASES, ids=[c[0] for c in VERIFY_CASES]
)
def test_verified_chunks(
    name: str, chunks: list[bytes], digest: str, size: int, error: str | None
) -> None:
    passed: list[bytes] = []
    if error is None:
        passed.extend(verified_chunks(chunks, digest, size))
        assert b"".join(passed) == DATA
        return
    with pytest.raises(DigestMismatch, match=error):
        passed.extend(verified_chunks(chunks, digest, size))
    # The final chunk is held back: a consumer never sees the whole of a bad blob.
    assert sum(len(p) for p in passed) < size


def test_only_sha256_digests() -> None:
    with pytest.raises(ProtocolError, match="only sha256"):
        list(verified_chunks([b""], "sha512:" + "0" * 128, 0))


MANIFEST_CASES = [
    ("oci index by header", {"manifests": []}, OCI_INDEX, OCI_INDEX),
    ("list by body", {"mediaType": DOCKER_LIST, "manifests": []}, "application/json", DOCKER_LIST),
    ("docker manifest", {"mediaType": DOCKER_MANIFEST, "config": {}}, None, DOCKER_MANIFEST),
    ("oci manifest without mediaType", {"schemaVersion": 2, "config": {}}, None, OCI_MANIFEST),
    ("oci index without mediaType", {"schemaVersion": 2, "manifests": []}, None, OCI_INDEX),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "body", "content_type", "expected"), MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES]
)
def test_manifest_media_type(
    name: str, body: dict[str, object], content_type: str | None, expected: str
) -> None:
    raw = json.dumps(body).encode()
    manifest = Manifest.from_bytes(raw, content_type)
    assert manifest.media_type == expected
    assert manifest.digest == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_schema1_is_refused_with_its_type() -> None:
    schema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    with pytest.raises(UnsupportedMediaType, match="v1\\+prettyjws"):
        Manifest.from_bytes(json.dumps({"schemaVersion": 1}).encode(), schema1)


def test_platform_subset_writes_a_new_index() -> None:
    amd64 = {"os": "linux", "architecture": "amd64"}
    arm64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "size": 1, "digest": f"sha256:{n * 64}", "platform": p}
            for n, p in (("1", amd64), ("2", arm64))
        ],
    }
    index = Manifest.from_bytes(json.dumps(body).encode())
    assert index.platforms == ["linux/amd64", "linux/arm64/v8"]
    subset = index.select_platforms({"linux/arm64/v8"})
    assert subset.platforms == ["linux/arm64/v8"] and subset.digest != index.digest
    with pytest.raises(UnsupportedMediaType, match="none of the platforms"):
        index.select_platforms({"windows/amd64"})
