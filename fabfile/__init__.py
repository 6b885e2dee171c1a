"""regtk: stand up a private container registry and prepare Kubernetes nodes to use it, over SSH.

The package holds the task modules (``fabfile.tasks``), the library they stand on
(``fabfile.core``: inventory, SSH sessions, change steps, results), the registry client
(``fabfile.registry``), the runtime configuration rules (``fabfile.runtimes``) and the local lab
(``fabfile.lab``).
"""
