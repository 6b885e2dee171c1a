"""Real servers for the registry tests, all on loopback: distribution, a token service, sshd.

Each server runs from a temporary directory with its own config and is stopped by the fixture
that started it. Addresses are in 127.0.4.0/24, ports are picked free at start.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from fabfile.registry.client import Endpoint

HOST = "127.0.4.1"
REGISTRY_BINARY = "/usr/bin/docker-registry"
SSHD_BINARY = "/usr/sbin/sshd"
TLS_NAME = "registry.regtk.test"


def free_port(host: str = HOST) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on {host}:{port} did not start: {log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- certificates ------------------------------------------------------------------------------


@dataclass
class Certificate:
    cert_pem: bytes
    key_pem: bytes
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def make_certificate(
    name: str, issuer: Certificate | None = None, *, is_ca: bool = False, ip: str = HOST
) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(ip))]
            ),
            critical=False,
        )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Certificate(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        key,
        cert,
    )


# -- token service -----------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues ES256 JWTs the way a registry token service does, for users in `users`.

    `users` maps user name to (password, allowed actions); anonymous callers get `anonymous`.
    """

    def __init__(
        self,
        users: dict[str, tuple[str, set[str]]],
        anonymous: set[str] | None = None,
        service: str = "regtk-test",
    ) -> None:
        self.users = users
        self.anonymous = anonymous or set()
        self.service = service
        self.issuer = "regtk-test-issuer"
        self.signer = make_certificate("token-signer", is_ca=True)
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.handle(self)

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.realm = f"http://{HOST}:{self.port}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlparse(request.path).query)
        allowed = self.anonymous
        user = ""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            known = self.users.get(user)
            if known is None or known[0] != password:
                request.send_response(401)
                request.end_headers()
                return
            allowed = known[1]
        scopes = query.get("scope", [])
        self.requests.append({"user": user, "scopes": scopes})
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            granted = [a for a in actions.split(",") if a in allowed or "*" in allowed]
            access.append({"type": kind, "name": name, "actions": granted})
        body = json.dumps({"token": self.token(user, access), "expires_in": 300}).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def token(self, subject: str, access: list[dict[str, Any]]) -> str:
        der = self.signer.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        der_signature = self.signer.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der_signature)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# -- distribution registry ---------------------------------------------------------------------


@dataclass
class Registry:
    """One running `docker-registry` process."""

    process: subprocess.Popen[bytes]
    root: Path
    host: str
    port: int
    scheme: str
    log: Path
    ca_file: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"

    def endpoint(self, **options: Any) -> Endpoint:
        options.setdefault("ca_file", self.ca_file)
        return Endpoint(self.url, **options)

    def access_log(self) -> list[str]:
        """Access-log lines (method and path) written so far."""
        return [
            line for line in self.log.read_text().splitlines() if '"' in line and "HTTP/1" in line
        ]

    def stop(self) -> None:
        stop(self.process)


def start_registry(
    workdir: Path,
    *,
    tls: Certificate | None = None,
    ca_file: str | None = None,
    htpasswd: dict[str, str] | None = None,
    token: TokenServer | None = None,
    delete: bool = True,
    proxy: str | None = None,
    readonly: bool = False,
    maxentries: int | None = None,
) -> Registry:
    """Start distribution with a config assembled from the options (JSON is valid YAML)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    storage: dict[str, Any] = {"filesystem": {"rootdirectory": str(workdir / "data")}}
    storage["delete"] = {"enabled": delete}
    if readonly:
        storage["maintenance"] = {"readonly": {"enabled": True}}
    http: dict[str, Any] = {"addr": f"{HOST}:{port}", "secret": secrets.token_hex(16)}
    if tls:
        (workdir / "cert.pem").write_bytes(tls.cert_pem)
        (workdir / "key.pem").write_bytes(tls.key_pem)
        http["tls"] = {"certificate": str(workdir / "cert.pem"), "key": str(workdir / "key.pem")}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": storage,
        "http": http,
    }
    if htpasswd:
        lines = [
            f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(5)).decode()}"
            for u, p in htpasswd.items()
        ]
        (workdir / "htpasswd").write_text("\n".join(lines) + "\n")
        config["auth"] = {"htpasswd": {"realm": "regtk-test", "path": str(workdir / "htpasswd")}}
    if token:
        (workdir / "token-ca.pem").write_bytes(token.signer.cert_pem)
        config["auth"] = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(workdir / "token-ca.pem"),
            }
        }
    if proxy:
        config["proxy"] = {"remoteurl": proxy}
    if maxentries:
        config["catalog"] = {"maxentries": maxentries}
    (workdir / "config.yml").write_text(json.dumps(config, indent=2))
    log = workdir / "registry.log"
    process = subprocess.Popen(
        [REGISTRY_BINARY, "serve", str(workdir / "config.yml")],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    wait_for_port(HOST, port, process, log)
    return Registry(process, workdir, HOST, port, "https" if tls else "http", log, ca_file, config)


# -- sshd --------------------------------------------------------------------------------------


@dataclass
class Sshd:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    user: str
    key_file: Path

    def stop(self) -> None:
        stop(self.process)


def start_sshd(workdir: Path) -> Sshd:
    """A throwaway sshd with its own host key and one authorized client key, forwarding on."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / name)], check=True
        )
    shutil.copy(workdir / "client_key.pub", workdir / "authorized_keys")
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {HOST}:{port}",
                f"HostKey {workdir / 'host_key'}",
                f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                f"PidFile {workdir / 'sshd.pid'}",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "AllowTcpForwarding yes",
                "StrictModes no",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    log = workdir / "sshd.log"
    process = subprocess.Popen(
        [SSHD_BINARY, "-D", "-e", "-f", str(config)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_for_port(HOST, port, process, log)
    return Sshd(process, HOST, port, pwd.getpwuid(os.getuid()).pw_name, workdir / "client_key")
