"""Enrolling simulated hosts as real hosts are: a key generated locally, a certificate from the
organization's Fabric CA (registered by the organization's registrar with ``role=host`` and
``host_id``), written as the host's MSP directory, then ``EnrollHost`` on the ledger by an
operator with the host's groups and maintenance window. A host already enrolled in the state
directory is loaded again, not enrolled twice."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.agent.config import AgentConfig
from patchledger.app.dispatch.ledger import LedgerPort
from patchledger.app.errors import UserError
from patchledger.app.fabric import (
    Attribute,
    CAClient,
    EcdsaSigner,
    Identity,
    RegistrationRequest,
)
from patchledger.app.fleet.simulator import HostSpec, SimulatedHost

__all__ = ["enroll_fleet", "load_host"]


def _config(spec: HostSpec, root: Path, channel: str) -> AgentConfig:
    home = root / spec.host_id
    return AgentConfig(host_id=spec.host_id, target=home / "target" / "app",
                       state_dir=home / "agent", maintenance_window=spec.maintenance_window,
                       channel=channel)


def load_host(spec: HostSpec, root: Path, channel: str) -> SimulatedHost | None:
    """The host enrolled earlier under ``root`` (``None`` when it never was).

    Raises:
        UserError: its key is unreadable.
    """
    key_path = root / spec.host_id / "msp" / "keystore" / "priv_sk"
    if not (root / spec.host_id / "enrolled").exists():
        return None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise UserError(f"simulated host {spec.host_id}: key {key_path} unreadable: {exc}") \
            from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UserError(f"simulated host {spec.host_id}: {key_path} is not an EC key")
    host = SimulatedHost(spec, _config(spec, root, channel), key)
    host.load_done()
    return host


def enroll_fleet(specs: Sequence[HostSpec], root: Path, *, ca: CAClient, registrar: Identity,
                 registrar_signer: EcdsaSigner, operator: LedgerPort, channel: str,
                 workers: int = 8) -> list[SimulatedHost]:
    """Enroll every host of ``specs`` not enrolled under ``root`` yet (module docstring).

    Raises:
        CAError: the CA refused a registration or an enrollment.
        SubmitFailed: ``EnrollHost`` was refused.
    """
    def one(spec: HostSpec) -> SimulatedHost:
        found = load_host(spec, root, channel)
        if found is not None:
            return found
        home = root / spec.host_id
        secret = ca.register(registrar, registrar_signer, RegistrationRequest(
            spec.host_id, attributes=[Attribute("role", "host", ecert=True),
                                      Attribute("host_id", spec.host_id, ecert=True)]))
        enrollment = ca.enroll(spec.host_id, secret)
        enrollment.write_msp_dir(home / "msp")
        operator.submit("EnrollHost", {"host_id": spec.host_id,
                                       "cert_pem": enrollment.certificate.decode(),
                                       "groups": list(spec.groups),
                                       "maintenance_window": spec.maintenance_window})
        (home / "enrolled").write_text("1")
        return SimulatedHost(spec, _config(spec, root, channel), enrollment.signer.private_key)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, specs))
