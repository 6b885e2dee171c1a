"""The Invoke entry point: ``inv --list`` shows every task, ``inv --help TASK`` its flags."""

from invoke import Collection

from fabfile.lab.tasks import ns as lab
from fabfile.tasks import mirror, nodes, registry, remote, upkeep

ns = Collection()
ns.add_task(registry.deploy_registry)
ns.add_task(nodes.prepare_nodes)
ns.add_task(nodes.trust_registry)
ns.add_task(mirror.mirror)
ns.add_task(mirror.bundle)
ns.add_task(remote.run)
ns.add_task(remote.put)
ns.add_task(remote.get)
ns.add_collection(
    Collection(
        "registry",
        registry.config,
        upkeep.catalog,
        upkeep.tags,
        upkeep.inspect,
        upkeep.delete,
        upkeep.untag,
        upkeep.gc,
    )
)
ns.add_collection(Collection("nodes", nodes.report))
ns.add_collection(lab, "lab")
