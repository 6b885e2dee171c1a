"""The Invoke entry point: ``inv --list`` shows every task, ``inv --help TASK`` its flags."""

from invoke import Collection

from fabfile.tasks import remote

ns = Collection()
ns.add_task(remote.run)
ns.add_task(remote.put)
ns.add_task(remote.get)
