"""Inspect, delete and untag against real registries, on the field cases about deletes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fabfile.registry.client import RegistryClient
from fabfile.registry.errors import DeletionRefused
from fabfile.registry.upkeep import UnsafeDelete, delete, inspect, plan_delete, untag
from tests.registry import images
from tests.registry.servers import Registry

Start = Callable[..., Registry]


@pytest.fixture
def seeded(start_registry: Start) -> Iterator[tuple[RegistryClient, Any, Any]]:
    """`app` with tags 1.0 and stable on one digest, 2.0 on another; `pause:3.10` an index."""
    registry = start_registry()
    client = RegistryClient(registry.endpoint())
    app1, app2 = images.make_image(), images.make_image()
    images.push(client, "app", "1.0", app1)
    client.put_manifest("app", "stable", app1.top)
    images.push(client, "app", "2.0", app2)
    pause = images.make_index()
    images.push(client, "pause", "3.10", pause)
    yield client, app1, pause
    client.close()


def test_inspect_shows_platforms_size_and_sibling_tags(seeded: tuple) -> None:
    client, _, pause = seeded
    info = inspect(client, "pause", "3.10")
    assert info.digest == pause.digest and info.platforms == ["linux/amd64", "linux/arm64"]
    assert [platform for platform, _ in info.children] == info.platforms
    assert info.size == len(pause.top.raw) + sum(len(c.raw) for c in pause.children) + sum(
        len(b) for b in pause.blobs.values()
    )
    assert inspect(client, "app", "1.0").tags == ["1.0", "stable"]


def test_delete_takes_sibling_tags_and_reports_the_observed_result(seeded: tuple) -> None:
    client, app1, _ = seeded
    plan = plan_delete(client, "app", "stable")
    assert plan.digest == app1.digest and plan.tags == ["1.0", "stable"]
    outcome = delete(client, plan)
    assert outcome.ok and outcome.digest_gone and outcome.tags_gone == ["1.0", "stable"]
    assert client.tags("app") == ["2.0"]


def test_delete_of_an_index_child_is_refused_unless_forced(seeded: tuple) -> None:
    client, _, pause = seeded
    child = pause.children[1].digest
    plan = plan_delete(client, "pause", child)
    assert plan.parents == ["3.10"]
    with pytest.raises(UnsafeDelete, match=r"listed by the index tagged 3\.10"):
        delete(client, plan)
    assert client.head_manifest("pause", child) is not None


def test_index_tag_resolves_to_the_index_digest_not_a_child(seeded: tuple) -> None:
    client, _, pause = seeded
    plan = plan_delete(client, "pause", "3.10")
    assert plan.digest == pause.digest and plan.parents == []


def test_untag_keeps_the_sibling_on_distribution_2(seeded: tuple) -> None:
    client, app1, _ = seeded
    outcome = untag(client, "app", "stable")
    assert outcome.siblings == ["1.0"]
    assert sorted(client.tags("app")) == ["1.0", "2.0"]
    head = client.head_manifest("app", "1.0")
    assert head is not None and head.digest == app1.digest


def test_untag_on_a_registry_without_delete_changes_nothing(start_registry: Start) -> None:
    registry = start_registry(delete=False)
    with RegistryClient(registry.endpoint()) as client:
        image = images.make_image()
        images.push(client, "app", "1.0", image)
        client.put_manifest("app", "stable", image.top)
        with pytest.raises(DeletionRefused, match="deletion is disabled"):
            untag(client, "app", "stable")
        head = client.head_manifest("app", "stable")
        assert head is not None and head.digest == image.digest
