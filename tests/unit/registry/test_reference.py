"""Image reference parsing, Docker Hub normalisation and target names, as cases."""

from __future__ import annotations

import pytest

from fabfile.registry.reference import InvalidReference, parse_reference, target_reference

DIGEST = "sha256:" + "ab" * 32

PARSE_CASES = [
    ("registry.k8s.io/pause:3.10", ("registry.k8s.io", "pause", "3.10", None)),
    ("busybox", ("docker.io", "library/busybox", "latest", None)),
    ("busybox:1.36", ("docker.io", "library/busybox", "1.36", None)),
    ("docker.io/busybox", ("docker.io", "library/busybox", "latest", None)),
    ("index.docker.io/library/busybox:1", ("docker.io", "library/busybox", "1", None)),
    ("bitnami/redis:7", ("docker.io", "bitnami/redis", "7", None)),
    ("localhost/app:1", ("localhost", "app", "1", None)),
    ("localhost:5000/app", ("localhost:5000", "app", "latest", None)),
    (f"127.0.1.2:5000/pause@{DIGEST}", ("127.0.1.2:5000", "pause", None, DIGEST)),
    (f"quay.io/a/b/c:v1@{DIGEST}", ("quay.io", "a/b/c", "v1", DIGEST)),
    ("reg.example.test:5000/k8s/pause:3.10", ("reg.example.test:5000", "k8s/pause", "3.10", None)),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse(text: str, expected: tuple[str, str, str | None, str | None]) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == expected


INVALID_CASES = [
    ("", "empty"),
    (" registry.example.test:5000/pause:3.10", "whitespace"),
    ("http://registry.example.test:5000/pause", "URL scheme"),
    ("registry.example.test/Pause:1", "lower-case"),
    ("pause@sha256:abc", "not a sha256 digest"),
    ("pause:bad/tag", "bad registry"),
    ("pause:-x", "not a valid tag"),
]


@pytest.mark.parametrize(("text", "message"), INVALID_CASES, ids=[c[1] for c in INVALID_CASES])
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message):
        parse_reference(text)


TARGET_CASES = [
    ("registry.k8s.io/pause:3.10", "", "127.0.1.2:5000/pause:3.10"),
    ("registry.k8s.io/pause:3.10", "k8s", "127.0.1.2:5000/k8s/pause:3.10"),
    ("registry.k8s.io/coredns/coredns:v1.11.1", "", "127.0.1.2:5000/coredns/coredns:v1.11.1"),
    ("busybox", "", "127.0.1.2:5000/busybox:latest"),
    ("bitnami/redis:7", "/mirror/", "127.0.1.2:5000/mirror/bitnami/redis:7"),
    (f"registry.k8s.io/pause@{DIGEST}", "", f"127.0.1.2:5000/pause@{DIGEST}"),
    (f"registry.k8s.io/pause:3.10@{DIGEST}", "", "127.0.1.2:5000/pause:3.10"),
]


@pytest.mark.parametrize(("source", "prefix", "expected"), TARGET_CASES)
def test_target_names(source: str, prefix: str, expected: str) -> None:
    assert str(target_reference(parse_reference(source), "127.0.1.2:5000", prefix)) == expected


@pytest.mark.parametrize("text", [c[0] for c in PARSE_CASES if c[0] != "busybox"])
def test_str_round_trips(text: str) -> None:
    ref = parse_reference(text)
    assert parse_reference(str(ref)) == ref
