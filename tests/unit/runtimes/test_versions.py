"""Version parsing and the version facts tables."""

from __future__ import annotations

import pytest

from fabfile.runtimes.findings import UnsupportedVersionError
from fabfile.runtimes.versions import (
    FlagAction,
    Version,
    containerd_default_sandbox,
    containerd_default_schema,
    containerd_pins_sandbox,
    containerd_readable_schemas,
    containerd_refuses_tag_and_digest,
    kubeadm_pause_version,
    kubelet_flag_action,
    parse_containerd_version,
    parse_docker_version,
    parse_kubelet_version,
    pause_from_kubeadm_images,
)

PARSE_CASES = [
    (parse_kubelet_version, "Kubernetes v1.28.15", Version(1, 28, 15)),
    (parse_kubelet_version, "Kubernetes v1.35.0-alpha.3", Version(1, 35, 0)),
    (parse_containerd_version, "containerd containerd.io 1.6.20 2806fc1", Version(1, 6, 20)),
    (
        parse_containerd_version,
        "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1",
        Version(1, 6, 20),
    ),
    (
        parse_containerd_version,
        "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7",
        Version(2, 1, 4),
    ),
    (parse_docker_version, "Docker version 20.10.24+dfsg1, build 297e128", Version(20, 10, 24)),
    (parse_docker_version, "Docker version 28.2.2, build e6534b4", Version(28, 2, 2)),
]


@pytest.mark.parametrize(("parser", "text", "expected"), PARSE_CASES)
def test_parse_versions(parser, text, expected):
    assert parser(text) == expected


def test_parse_without_number_names_the_command():
    with pytest.raises(UnsupportedVersionError, match="kubelet --version"):
        parse_kubelet_version("command not found")


PAUSE_CASES = [
    ("1.23.17", "3.6"),
    ("1.24.0", "3.7"),
    ("1.25.3", "3.8"),
    ("1.26.1", "3.9"),
    ("1.28.15", "3.9"),
    ("1.30.0", "3.9"),
    ("1.31.2", "3.10"),
    ("1.33.0", "3.10"),
    ("1.34.1", "3.10.1"),
    ("1.35.0", "3.10.1"),
    ("1.36.0", "3.10.2"),
]


@pytest.mark.parametrize(("kubernetes", "pause"), PAUSE_CASES)
def test_kubeadm_pause_version(kubernetes, pause):
    assert kubeadm_pause_version(parse_kubelet_version(kubernetes)) == pause


@pytest.mark.parametrize("kubernetes", ["1.22.0", "1.37.0"])
def test_kubeadm_pause_version_outside_table_is_refused(kubernetes):
    with pytest.raises(UnsupportedVersionError, match="kubeadm config images list"):
        kubeadm_pause_version(parse_kubelet_version(kubernetes))


def test_pause_from_kubeadm_images_list():
    listing = (
        "registry.example.test:5000/k8s/kube-apiserver:v1.28.15\n"
        "registry.example.test:5000/k8s/pause:3.9\n"
        "registry.example.test:5000/k8s/etcd:3.5.15-0\n"
    )
    assert pause_from_kubeadm_images(listing) == "registry.example.test:5000/k8s/pause:3.9"


PIN_CASES = [
    ("1.5.13", False),
    ("1.6.20", False),
    ("1.6.21", False),
    ("1.6.22", True),
    ("1.7.2", False),
    ("1.7.3", True),
    ("2.0.0", True),
    ("2.3.1", True),
]


@pytest.mark.parametrize(("containerd", "pins"), PIN_CASES)
def test_containerd_pins_sandbox(containerd, pins):
    assert containerd_pins_sandbox(parse_containerd_version(containerd)) is pins


SCHEMA_CASES = [
    ("1.6.20", 2, {1, 2}),
    ("1.7.27", 2, {1, 2}),
    ("2.0.0", 3, {2, 3}),
    ("2.2.1", 3, {2, 3}),
    ("2.3.0", 4, {2, 3, 4}),
]


@pytest.mark.parametrize(("containerd", "default", "readable"), SCHEMA_CASES)
def test_containerd_schemas(containerd, default, readable):
    version = parse_containerd_version(containerd)
    assert containerd_default_schema(version) == default
    assert containerd_readable_schemas(version) == readable


DEFAULT_SANDBOX_CASES = [
    ("1.6.8", "k8s.gcr.io/pause:3.6"),
    ("1.6.20", "registry.k8s.io/pause:3.6"),
    ("1.7.0", "registry.k8s.io/pause:3.8"),
    ("2.1.0", "pause:3.10"),
    ("2.2.0", "pause:3.10.1"),
    ("2.3.2", "pause:3.10.2"),
]


@pytest.mark.parametrize(("containerd", "image"), DEFAULT_SANDBOX_CASES)
def test_containerd_default_sandbox(containerd, image):
    assert containerd_default_sandbox(parse_containerd_version(containerd)) == image


@pytest.mark.parametrize(
    ("containerd", "refuses"),
    [("2.2.9", False), ("2.3.0", True), ("2.3.4", True), ("2.4.0", False)],
)
def test_tag_and_digest_refused_on_2_3(containerd, refuses):
    assert containerd_refuses_tag_and_digest(parse_containerd_version(containerd)) is refuses


FLAG_CASES = [
    ("1.23.17", FlagAction.SET),
    ("1.28.15", FlagAction.SET),
    ("1.29.0", FlagAction.LEAVE),
    ("1.34.9", FlagAction.LEAVE),
    ("1.35.0", FlagAction.REMOVE),
    ("1.36.1", FlagAction.REMOVE),
]


@pytest.mark.parametrize(("kubelet", "action"), FLAG_CASES)
def test_kubelet_flag_action(kubelet, action):
    assert kubelet_flag_action(parse_kubelet_version(kubelet)) is action
