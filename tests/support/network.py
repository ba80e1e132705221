"""Helpers for tests that run against a local network: a handle on a running network and a
configuration factory for networks in temporary state directories.

The test port base comes from ``PATCHLEDGER_TEST_PORT_BASE`` (default 27000), so a developer's
demo network on the default ports is not disturbed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import grpc

from patchledger.app.fabric import (
    Attribute,
    CAClient,
    CAError,
    EcdsaSigner,
    EndorseError,
    Gateway,
    Identity,
    RegistrationRequest,
    connect,
    create_channel,
)
from patchledger.network.config import NetworkConfig, StateLayout, config_from_env
from patchledger.network.manager import Manager
from patchledger.network.topology import Org

TEST_PORT_BASE = "27000"


class EnrolledUser(NamedTuple):
    """An identity issued by an organization's CA: what a client needs to transact as it."""

    identity: Identity
    signer: EcdsaSigner
    cert_pem: bytes
    msp_dir: Path


@dataclass
class LocalNetwork:
    """Handle on a running network."""

    manager: Manager

    @property
    def config(self) -> NetworkConfig:
        return self.manager.config

    @property
    def layout(self) -> StateLayout:
        return self.manager.layout

    def org(self, name: str) -> Org:
        """The organization called ``name`` (short name or MSP id)."""
        return self.config.topology.org(name)

    def admin_msp(self, org: str) -> Path:
        """The organization admin's MSP directory (signcerts/, keystore/, cacerts/)."""
        return self.layout.user_dir(self.org(org).name, "admin") / "msp"

    def admin_tls(self, org: str) -> Path:
        """The organization admin's TLS client material (server.crt, server.key, ca.crt)."""
        return self.layout.user_dir(self.org(org).name, "admin") / "tls"

    def ca_cert(self, org: str) -> Path:
        """The organization's root certificate (its CA; trust anchor for TLS too)."""
        return self.layout.ca_cert(self.org(org).name)

    def open_gateway(self, org: str, identity: Identity | None = None,
                     signer: EcdsaSigner | None = None) -> tuple[Gateway, grpc.Channel]:
        """A gateway on ``org``'s own peer, as its admin unless an identity is given; the
        caller closes the returned gRPC channel."""
        peer_org = self.org(org)
        msp = self.admin_msp(org)
        channel = create_channel(peer_org.peer.address,
                                 tls_root_certificates=self.ca_cert(org).read_bytes())
        gateway = connect(identity or Identity.from_msp_dir(msp, peer_org.msp_id),
                          signer or EcdsaSigner.from_msp_dir(msp), channel,
                          endpoint=peer_org.peer.address)
        return gateway, channel

    def ca_bootstrap_secret(self, org: str) -> str:
        """The bootstrap admin secret of the organization's CA (for registering test users)."""
        secrets: dict[str, str] = json.loads(self.layout.secrets.read_text())
        return secrets[f"{self.org(org).name}/ca-bootstrap"]

    def ca_client(self, org: str) -> CAClient:
        """A client of the organization's CA (HTTPS, trusting exactly its root)."""
        return CAClient(f"https://{self.org(org).ca.address}",
                        tls_ca_certificate=self.ca_cert(org).read_bytes())

    def enroll_user(self, org: str, enrollment_id: str, role: str,
                    attrs: Mapping[str, str] | None = None) -> EnrolledUser:
        """Register ``enrollment_id`` with the organization admin as registrar and enroll it.

        The certificate carries ``role`` and every attribute of ``attrs`` (e.g. ``host_id``)
        in its Fabric CA attribute extension. The MSP directory is written under
        ``orgs/<org>/users/<enrollment_id>/msp``. Enrollment ids must be new to the CA.

        Raises:
            CAError: the CA refused the registration or the enrolment.
        """
        o = self.org(org)
        admin = self.admin_msp(org)
        registrar = Identity.from_msp_dir(admin, o.msp_id)
        registrar_signer = EcdsaSigner.from_msp_dir(admin)
        ca = self.ca_client(org)
        wanted = {"role": role, **dict(attrs or {})}
        request = RegistrationRequest(
            enrollment_id,
            attributes=[Attribute(k, v, ecert=True) for k, v in wanted.items()],
        )
        secret = ca.register(registrar, registrar_signer, request)
        if not secret:
            raise CAError(f"registration of {enrollment_id} returned no secret",
                          url=f"https://{o.ca.address}")
        enrollment = ca.enroll(enrollment_id, secret)
        msp_dir = enrollment.write_msp_dir(self.layout.user_dir(o.name, enrollment_id) / "msp")
        return EnrolledUser(enrollment.identity(o.msp_id), enrollment.signer,
                            enrollment.certificate, msp_dir)


def make_network_config(state_dir: Path, env: dict[str, str] | None = None) -> NetworkConfig:
    """Configuration of a test network in ``state_dir`` on the test port base.

    Raises:
        ValueError: no Fabric install is known, or a variable is invalid.
    """
    env = dict(os.environ if env is None else env)
    env["PATCHLEDGER_STATE_DIR"] = str(state_dir)
    env["PATCHLEDGER_PORT_BASE"] = env.get("PATCHLEDGER_TEST_PORT_BASE", TEST_PORT_BASE)
    env["PATCHLEDGER_LEDGER_POLICY"] = ""  # tests bootstrap the policy they need
    return config_from_env(env)


def wait_until_endorsable(gateway: Gateway, channel: str, chaincode: str, function: str,
                          args: list[str], timeout: float = 60) -> None:
    """Submit ``function(args)`` until the gateway's peer can plan its endorsement: right after
    a chaincode is deployed, gossip has not yet told the peer which other peers run it, and
    Endorse fails with FAILED_PRECONDITION.

    Raises:
        EndorseError: another failure, or still not endorsable after ``timeout`` seconds.
    """
    contract = gateway.get_network(channel).get_contract(chaincode)
    deadline = time.monotonic() + timeout
    while True:
        try:
            contract.submit(function, args)
            return
        except EndorseError as exc:
            if exc.code != grpc.StatusCode.FAILED_PRECONDITION or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
