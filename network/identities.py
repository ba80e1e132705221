"""Issuing the network's identities from the organizations' Fabric CAs.

Every identity (orderers, peers, admins, the chaincode servers' TLS certificates) is registered
with and enrolled from its organization's CA using ``fabric-ca-client``; nothing comes from
cryptogen. The files are then arranged in the layout Fabric's nodes and tools expect:

- ``msp/`` with ``signcerts/cert.pem``, ``keystore/*_sk``, ``cacerts/ca.pem`` and a
  ``config.yaml`` enabling NodeOUs (client, peer, admin, orderer are told apart by the OU the CA
  writes into each certificate from the identity's type);
- ``tls/`` with ``server.crt``, ``server.key`` and ``ca.crt`` (a certificate from the CA's
  ``tls`` profile, with the node's host names as SANs).

Each organization's CA issues both its enrollment and its TLS certificates (one root per
organization).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from patchledger.network.config import NetworkConfig, StateLayout
from patchledger.network.errors import NetworkError
from patchledger.network.topology import Node, NodeKind, Org

NODE_OUS = """NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: orderer
"""

#: Attributes of an organization admin: it may register and revoke every identity type and
#: attribute (the app registers users and hosts with it), and carries role=admin.
ADMIN_ATTRS = (
    "hf.Registrar.Roles=*,hf.Registrar.Attributes=*,hf.Revoker=true,hf.GenCRL=true,"
    "role=admin:ecert"
)


class EnrollmentError(NetworkError):
    """A fabric-ca-client call failed; the message names the CA, the identity and the reason."""


@dataclass(frozen=True)
class CaClient:
    """Runs ``fabric-ca-client`` against one organization's CA."""

    config: NetworkConfig
    org: Org
    bootstrap_secret: str

    @property
    def layout(self) -> StateLayout:
        return StateLayout(self.config.state_dir)

    @property
    def url(self) -> str:
        return f"https://{self.org.ca.address}"

    def _run(self, what: str, args: list[str], home: Path,
             secret_env: dict[str, str] | None = None) -> None:
        """Run fabric-ca-client; secrets travel in ``secret_env`` (its FABRIC_CA_CLIENT_*
        variables), never on the command line where `ps` would show them."""
        home.mkdir(parents=True, exist_ok=True)
        argv = [str(self.config.binary("fabric-ca-client")), *args,
                "--tls.certfiles", str(self.layout.ca_cert(self.org.name)), "-H", str(home)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FABRIC_CA_CLIENT_")}
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                    check=False, env=env | (secret_env or {}))
        except subprocess.TimeoutExpired as exc:
            raise EnrollmentError(f"CA {self.org.ca.name} ({self.url}): {what}: no answer "
                                  "within 60 s") from exc
        if result.returncode != 0:
            lines = [ln for ln in result.stderr.splitlines() if "Error" in ln] or \
                result.stderr.strip().splitlines()[-1:]
            reason = lines[-1] if lines else f"exit status {result.returncode}"
            raise EnrollmentError(f"CA {self.org.ca.name} ({self.url}): {what}: {reason}")

    def _with_secret(self, enrollment_id: str, secret: str) -> dict[str, str]:
        return {"FABRIC_CA_CLIENT_URL": f"https://{enrollment_id}:{secret}@{self.org.ca.address}"}

    @property
    def registrar_home(self) -> Path:
        return self.layout.ca_home(self.org.name) / "clients" / "registrar"

    def enroll_registrar(self) -> None:
        """Enroll the CA's bootstrap admin, whose identity registers all others."""
        self._run("enroll bootstrap admin", ["enroll"], self.registrar_home,
                  self._with_secret("admin", self.bootstrap_secret))

    def register(self, enrollment_id: str, secret: str, id_type: str, attrs: str = "") -> None:
        """Register an identity of ``id_type`` (peer, orderer, admin, client)."""
        args = ["register", "-u", self.url, "--id.name", enrollment_id, "--id.type", id_type]
        if attrs:
            args += ["--id.attrs", attrs]
        self._run(f"register {enrollment_id}", args, self.registrar_home,
                  {"FABRIC_CA_CLIENT_ID_SECRET": secret})

    def enroll_msp(self, enrollment_id: str, secret: str, msp_dir: Path) -> None:
        """Enroll an identity into ``msp_dir`` and make it a NodeOUs MSP."""
        home = self.layout.ca_home(self.org.name) / "clients" / enrollment_id
        self._run(f"enroll {enrollment_id}", ["enroll", "-M", str(msp_dir)], home,
                  self._with_secret(enrollment_id, secret))
        _normalise_msp(msp_dir)

    def enroll_tls(self, enrollment_id: str, secret: str, hosts: list[str], tls_dir: Path) -> None:
        """Enroll a TLS certificate for ``hosts`` into ``tls_dir`` (server.crt/key, ca.crt)."""
        home = self.layout.ca_home(self.org.name) / "clients" / enrollment_id
        scratch = tls_dir.parent / (tls_dir.name + ".enroll")
        self._run(f"enroll TLS certificate for {enrollment_id}",
                  ["enroll", "--enrollment.profile", "tls", "--csr.hosts", ",".join(hosts),
                   "-M", str(scratch)], home, self._with_secret(enrollment_id, secret))
        tls_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(scratch / "signcerts" / "cert.pem", tls_dir / "server.crt")
        shutil.copy(_only(scratch / "keystore", "*_sk"), tls_dir / "server.key")
        shutil.copy(_only(scratch / "tlscacerts", "*.pem"), tls_dir / "ca.crt")
        shutil.rmtree(scratch)


def _only(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        raise EnrollmentError(f"expected one {pattern} in {directory}, found {len(found)}")
    return found[0]


def _normalise_msp(msp_dir: Path) -> None:
    """Give the CA certificate a fixed name and enable NodeOUs."""
    cacert = _only(msp_dir / "cacerts", "*.pem")
    if cacert.name != "ca.pem":
        cacert.rename(msp_dir / "cacerts" / "ca.pem")
    (msp_dir / "config.yaml").write_text(NODE_OUS)


def write_org_msp(layout: StateLayout, org: Org) -> None:
    """Write the organization MSP used in the channel configuration."""
    msp = layout.org_msp(org.name)
    for sub in ("cacerts", "tlscacerts"):
        (msp / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(layout.ca_cert(org.name), msp / sub / "ca.pem")
    (msp / "config.yaml").write_text(NODE_OUS)


def tls_hosts(node: Node) -> list[str]:
    """SANs of a node's TLS certificate: its host, its certificate name, and loopback names."""
    return sorted({node.host, node.fqdn, node.name, "localhost", "127.0.0.1"})


def issue_org_identities(client: CaClient, passwords: dict[str, str]) -> None:
    """Register and enroll every identity of one organization (its CA must be running).

    ``passwords`` maps enrollment id to the secret to register it with; it is filled in for
    identities not yet present (callers persist it).
    """
    layout, org = client.layout, client.org
    client.enroll_registrar()
    write_org_msp(layout, org)
    admin_secret = passwords.setdefault(f"{org.name}/admin", _secret())
    client.register(f"{org.name}-admin", admin_secret, "admin", ADMIN_ATTRS)
    admin_dir = layout.user_dir(org.name, "admin")
    client.enroll_msp(f"{org.name}-admin", admin_secret, admin_dir / "msp")
    client.enroll_tls(f"{org.name}-admin", admin_secret, ["localhost", "127.0.0.1"],
                      admin_dir / "tls")
    for node in org.nodes:
        secret = passwords.setdefault(f"{org.name}/{node.name}", _secret())
        id_type = {NodeKind.ORDERER: "orderer", NodeKind.PEER: "peer"}.get(node.kind, "client")
        client.register(node.name, secret, id_type)
        if node.kind is not NodeKind.CHAINCODE:
            client.enroll_msp(node.name, secret, layout.node_msp(node.name))
        client.enroll_tls(node.name, secret, tls_hosts(node), layout.node_tls(node.name))


def _secret() -> str:
    return secrets.token_urlsafe(18)
