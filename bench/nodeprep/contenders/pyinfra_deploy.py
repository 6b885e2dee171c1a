"""Contender P: the bench's node preparation as a pyinfra deploy, written the usual way.

Operations per host: a template and two puts (each creates its directory), the image pull only
when the marker file is missing (a File fact), and the restart only when one of the three file
operations changed something. The inventory the bench writes gives every host its data.
"""

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

data = host.data
root = f"{data.root_base}/{host.name}"

config = files.template(
    name="containerd configuration",
    src=f"{data.files}/containerd-config.toml.j2",
    dest=f"{root}/etc/containerd/config.toml",
    mode="644",
    node_name=host.name,
    node_ip=data.node_ip,
    sandbox_image=data.sandbox_image,
)
kubelet = files.put(
    name="kubelet configuration",
    src=f"{data.files}/kubelet-config.yaml",
    dest=f"{root}/var/lib/kubelet/config.yaml",
    mode="644",
)
sysctl = files.put(
    name="Kernel settings",
    src=f"{data.files}/99-kubernetes.conf",
    dest=f"{root}/etc/sysctl.d/99-kubernetes.conf",
    mode="644",
)
if not host.get_fact(File, path=f"{root}/images/{data.image_digest}"):
    server.shell(
        name="Pause image present",
        commands=[f"{data.fleet_bin}/fleet-pull {root} {data.image_digest}"],
    )
server.shell(
    name="Restart kubelet",
    commands=[f"{data.fleet_bin}/fleet-kubelet restart {root}"],
    _if=any_changed(config, kubelet, sysctl),
)
