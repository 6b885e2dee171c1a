"""``deploy-registry`` and the ``registry.*`` tasks: the registry host and its config.yml."""

from __future__ import annotations

import shlex

from invoke import Context

from ..core.cli import Fleet, finish, fleet_task
from ..core.steps import HostContext
from ..deploy.deploy import deploy
from ..deploy.patch import patch
from ..deploy.reachability import check_from_nodes
from ..deploy.settings import registry_settings
from ..registry.config import parse_assignments


@fleet_task(
    default_group="registry",
    help={"skip_node_check": "do not check GET /v2/ from the nodes afterwards"},
)
def deploy_registry(c: Context, skip_node_check: bool = False, *, fleet: Fleet) -> None:
    """Run the distribution registry on the registry hosts, as the inventory describes it.

    Renders config.yml (and TLS and htpasswd files) from the inventory, makes the image present
    (pull, or upload an archive when the host cannot pull), creates or updates the container,
    and waits for GET /v2/ to answer. A second run changes nothing and leaves the container
    running. If the registry does not come back healthy, the old files are restored.
    """

    def one(ctx: HostContext) -> None:
        deploy(ctx, registry_settings(fleet.inventory, ctx.host))

    reports = fleet.run(one, "deploy-registry", show=not fleet.as_json)
    if not skip_node_check and not fleet.options.check:
        has_nodes = "nodes" in fleet.inventory.groups
        nodes = fleet.inventory.select(default_group="nodes") if has_nodes else []
        if nodes:
            settings = registry_settings(fleet.inventory)
            node_reports = check_from_nodes(fleet, nodes, settings)
            if not fleet.as_json:
                fleet.emit(node_reports, f"GET {settings.url}/v2/ from the nodes")
            reports = [*reports, *node_reports]
    if fleet.as_json:
        fleet.emit(reports, "deploy-registry")
    finish(reports)


@fleet_task(
    default_group="registry",
    positional=["assignments"],
    help={
        "assignments": "KEY=VALUE: a dotted config.yml key and its value; quote several together",
        "test_container": "first start a throwaway container of the same image with the result",
    },
)
def config(c: Context, assignments: str, test_container: bool = False, *, fleet: Fleet) -> None:
    """Patch config.yml of the running registry: inv registry.config storage.delete.enabled=true.

    Keeps comments and order, checks the result before it replaces the old file, restarts the
    registry, checks its health and the effect, and restores the old file if it does not come
    back healthy. --check shows the diff and changes nothing.
    """
    values = parse_assignments(shlex.split(assignments))

    def one(ctx: HostContext) -> None:
        patch(ctx, registry_settings(fleet.inventory, ctx.host), values, test_container)

    finish(fleet.run(one, "registry.config"))
