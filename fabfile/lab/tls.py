"""The lab's own certificate authority and the upstream registry's server certificate.

The CA certificate is ``.lab/ca/ca.crt`` (a folder that doubles as a ``--cert-dir`` for skopeo
and as a ``certs.d`` entry); its key is kept with the other secrets. The server certificate names
the upstream's address and a host name, so clients may use either.
"""

from __future__ import annotations

from pathlib import Path

from fabfile.deploy import pki
from fabfile.lab import paths


def ensure_ca() -> bool:
    """Make the lab CA unless its certificate and key exist; return whether it was made."""
    return pki.ensure_ca(paths.CA_CERT, paths.CA_KEY, "regtk lab CA")


def ensure_server_cert(cert_path: Path, key_path: Path, address: str, hostname: str) -> bool:
    """Issue a server certificate for ``hostname`` and ``address`` signed by the lab CA, unless
    a matching one exists; return whether it was issued."""
    ca = (paths.CA_CERT, paths.CA_KEY)
    return pki.ensure_server_cert(ca, cert_path, key_path, [hostname, address])
