"""The upstream registry: the lab's stand-in for the public registries the nodes cannot reach.

It is the lab's ``registry:2`` image run on the outer engine with host networking, serving HTTPS
on 127.0.3.1:5443 with a certificate from the lab CA and htpasswd basic auth (user ``lab``). It
is seeded with the synthetic images of :mod:`fabfile.lab.synthetic`, pushed with
``skopeo copy --all --preserve-digests``; the expected digests are published in
``.lab/upstream.json`` for tests.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from typing import Any

import bcrypt
import httpx

from fabfile.lab import credentials, images, paths, rootfs, synthetic, tls
from fabfile.lab.commands import LabError, docker, run
from fabfile.lab.hosts import (
    UPSTREAM_ADDRESS,
    UPSTREAM_CONTAINER,
    UPSTREAM_HOSTNAME,
    UPSTREAM_PORT,
    UPSTREAM_USER,
)
from fabfile.lab.outcome import Outcome
from fabfile.lab.provision import SPEC_LABEL, container_state

ENDPOINT = f"{UPSTREAM_ADDRESS}:{UPSTREAM_PORT}"
URL = f"https://{ENDPOINT}"
CERTS = paths.UPSTREAM / "certs"
HTPASSWD = paths.UPSTREAM / "auth" / "htpasswd"
# The registry checks the bcrypt hash on every request; a low cost keeps a lab's many requests
# fast, and the password is random and never leaves the machine.
_BCRYPT_ROUNDS = 6
_ACCEPT = ", ".join([synthetic.INDEX, synthetic.MANIFEST])


def ensure(image: str) -> list[Outcome]:
    """Run the upstream registry from ``image`` and seed it; return what changed."""
    outcomes = [_credentials()]
    outcomes.append(_container(image))
    _wait_until_serving()
    outcomes += _seed()
    return outcomes


def password() -> str:
    """The upstream registry's password for user ``lab``."""
    return credentials.password(paths.UPSTREAM_PASSWORD)[0]


def client(auth: bool = True) -> httpx.Client:
    """An HTTP client for the upstream registry that trusts the lab CA only."""
    return httpx.Client(
        base_url=URL,
        verify=ssl.create_default_context(cafile=str(paths.CA_CERT)),
        auth=(UPSTREAM_USER, password()) if auth else None,
        trust_env=False,
        timeout=10,
    )


def _credentials() -> Outcome:
    made_ca = tls.ensure_ca()
    made_cert = tls.ensure_server_cert(
        CERTS / "server.crt", CERTS / "server.key", UPSTREAM_ADDRESS, UPSTREAM_HOSTNAME
    )
    secret, made_password = credentials.password(paths.UPSTREAM_PASSWORD)
    current = HTPASSWD.read_text().strip() if HTPASSWD.exists() else ""
    _, _, hashed = current.partition(":")
    fresh = hashed.startswith(f"$2b${_BCRYPT_ROUNDS:02d}$")
    if not fresh or not bcrypt.checkpw(secret.encode(), hashed.encode()):
        salt = bcrypt.gensalt(rounds=_BCRYPT_ROUNDS)
        line = f"{UPSTREAM_USER}:{bcrypt.hashpw(secret.encode(), salt).decode()}\n"
        paths.write_private(HTPASSWD, line)
        made_password = True
    token = base64.b64encode(f"{UPSTREAM_USER}:{secret}".encode()).decode()
    authfile = json.dumps({"auths": {ENDPOINT: {"auth": token}}}, indent=2) + "\n"
    paths.write_if_changed(paths.UPSTREAM_AUTHFILE, authfile, private=True)
    changed = made_ca or made_cert or made_password
    return Outcome("upstream TLS and auth", changed, "made" if changed else "present")


def _container(image: str) -> Outcome:
    options = [
        "--network=host",
        f"--volume={CERTS}:/certs:ro",
        f"--volume={HTPASSWD.parent}:/auth:ro",
        f"--env=REGISTRY_HTTP_ADDR={ENDPOINT}",
        "--env=REGISTRY_HTTP_TLS_CERTIFICATE=/certs/server.crt",
        "--env=REGISTRY_HTTP_TLS_KEY=/certs/server.key",
        "--env=REGISTRY_AUTH=htpasswd",
        "--env=REGISTRY_AUTH_HTPASSWD_REALM=regtk-lab-upstream",
        "--env=REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
    ]
    inputs = [(CERTS / "server.crt").read_bytes(), HTPASSWD.read_bytes()]
    spec = rootfs.digest_of(image, json.dumps(options), *inputs)
    state, found = container_state(UPSTREAM_CONTAINER)
    if state == "running" and found == spec:
        return Outcome("upstream", False, f"serving {URL}")
    if state != "absent" and found == spec:
        docker("container", "start", UPSTREAM_CONTAINER)
        return Outcome("upstream", True, f"started (was {state})")
    if state != "absent":
        docker("container", "rm", "--force", "--volumes", UPSTREAM_CONTAINER)
    docker(
        "container",
        "run",
        "--detach",
        f"--name={UPSTREAM_CONTAINER}",
        f"--label={images.LABEL}=upstream",
        f"--label={SPEC_LABEL}={spec}",
        *options,
        image,
    )
    return Outcome("upstream", True, f"created, serving {URL}")


def _wait_until_serving(wait: float = 30.0) -> None:
    deadline = time.monotonic() + wait
    with client(auth=False) as http:
        while True:
            try:
                status = http.get("/v2/").status_code
                if status == 401:
                    return
                seen = f"HTTP {status}, not 401"
            except httpx.HTTPError as exc:
                seen = str(exc)
            if time.monotonic() > deadline:
                raise LabError(
                    f"upstream: no answer from {URL}/v2/ ({seen}); "
                    f"see `docker logs {UPSTREAM_CONTAINER}`"
                )
            time.sleep(0.2)


def _seed() -> list[Outcome]:
    layout, expected, built = synthetic.layout()
    outcomes = [Outcome("synthetic images", built, f"layout {layout.name}")]
    with client() as http:
        for ref, info in expected.items():
            repository, _, tag = ref.partition(":")
            reply = http.head(f"/v2/{repository}/manifests/{tag}", headers={"Accept": _ACCEPT})
            if reply.headers.get("Docker-Content-Digest") == info["digest"]:
                outcomes.append(Outcome(f"upstream {ref}", False, info["digest"][:19]))
                continue
            _push(layout.as_posix(), ref, repository, tag)
            outcomes.append(Outcome(f"upstream {ref}", True, f"pushed {info['digest'][:19]}"))
    document = _published(expected)
    changed = paths.write_if_changed(paths.UPSTREAM_JSON, json.dumps(document, indent=2) + "\n")
    outcomes.append(Outcome(str(paths.UPSTREAM_JSON), changed, "expected digests"))
    return outcomes


def _push(layout: str, ref: str, repository: str, tag: str) -> None:
    run(
        [
            "skopeo",
            "copy",
            "--all",
            "--preserve-digests",
            "--quiet",
            f"--dest-cert-dir={paths.CA}",
            f"--dest-authfile={paths.UPSTREAM_AUTHFILE}",
            f"oci:{layout}:{ref}",
            f"docker://{ENDPOINT}/{repository}:{tag}",
        ],
        timeout=300,
    )


def _published(expected: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": URL,
        "endpoint": ENDPOINT,
        "hostname": UPSTREAM_HOSTNAME,
        "ca_file": str(paths.CA_CERT.relative_to(paths.REPO)),
        "username": UPSTREAM_USER,
        "password_file": str(paths.UPSTREAM_PASSWORD.relative_to(paths.REPO)),
        "images": expected,
    }
