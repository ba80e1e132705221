"""EnrollHost, UpdateInventoryDigest and DecommissionHost.

A host is enrolled by its owner organization (the caller's MSP id) with the certificate its
organization's CA issued to it: the certificate must carry ``role=host`` and the same
``host_id`` attribute, an ECDSA P-256 key, be valid at the transaction time and be directly
issued by one of the owner organization's root certificates (:class:`~..trust.OrgTrust`, given
to the chaincode at deployment; no roots for that organization: refused). The certificate is
data, not the transaction creator, so Fabric's MSP validation does not cover it. Every host
write names the owner organization so the contract gives the key a key-level endorsement policy
requiring that organization's peer.
"""

from __future__ import annotations

from collections.abc import Sequence

from patchledger.chaincode.lifecycle.authz import authorize, require_org
from patchledger.chaincode.lifecycle.errors import (
    AlreadyExistsError,
    AuthorizationError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.fields import id_tuple, sha256_hex
from patchledger.chaincode.lifecycle.host import EMPTY_INVENTORY, Host
from patchledger.chaincode.lifecycle.identity import (
    Caller,
    Role,
    certificate_attributes,
    load_certificate,
)
from patchledger.chaincode.lifecycle.ledger import Change, TxLedger
from patchledger.chaincode.lifecycle.signatures import public_key_of
from patchledger.chaincode.lifecycle.trust import OrgTrust


def _check_host_certificate(
    host_id: str, cert_pem: str, owner_msp: str, trust: OrgTrust, now: int
) -> None:
    if not cert_pem.isascii():
        raise ValidationError("cert_pem", "is not a PEM X.509 certificate (non-ASCII text)")
    cert = load_certificate(cert_pem.encode("ascii"), "cert_pem")
    attrs = certificate_attributes(cert)
    if attrs.get("role") != Role.HOST.value or attrs.get("host_id") != host_id:
        raise ValidationError(
            "cert_pem", f"must carry the attributes role=host and host_id={host_id}"
        )
    public_key_of(cert_pem.encode("ascii"), "cert_pem")
    trust.check_issued(
        cert,
        owner_msp,
        now=now,
        argument="cert_pem",
        what=f"certificate of host {host_id!r} ({owner_msp})",
    )


def enroll_host(
    tx: TxLedger,
    host_id: str,
    cert_pem: str,
    *,
    trust: OrgTrust,
    groups: Sequence[str] = (),
    maintenance_window: str = "",
    inventory_sha256: str = EMPTY_INVENTORY,
) -> list[Change]:
    """Enroll a host owned by the caller's organization.

    ``trust`` holds the organizations' root certificates; the host certificate must be
    directly issued by one of the caller's organization's roots.

    Raises:
        AuthorizationError: the caller is not an admin or operator.
        ValidationError: malformed fields, a certificate without the host attributes, or one
            that is expired or not yet valid at the transaction time.
        SignatureError: the certificate's key is not P-256, no root of the caller's
            organization is configured, or none of its roots issued the certificate.
        AlreadyExistsError: the host id is taken (also by a decommissioned host).
    """
    authorize(tx.caller, "enroll_host")
    host = Host(
        host_id=host_id,
        owner_msp=tx.caller.msp_id,
        cert_pem=cert_pem,
        groups=id_tuple("groups", groups),
        maintenance_window=maintenance_window,
        inventory_sha256=inventory_sha256,
    )
    _check_host_certificate(host_id, cert_pem, host.owner_msp, trust, tx.now)
    if tx.find(Host, host_id) is not None:
        raise AlreadyExistsError("Host", host_id)
    tx.save(host, owner_org=host.owner_msp)
    return tx.changes


def check_host_access(caller: Caller, host: Host) -> None:
    """Refuse unless the caller is the host itself or a member of its owner organization.

    Raises:
        AuthorizationError: another organization, or another host.
    """
    require_org(caller, host.owner_msp, f"host {host.host_id!r}")
    if caller.role == Role.HOST and caller.host_id != host.host_id:
        raise AuthorizationError(f"host {caller.host_id!r} cannot act for {host.host_id!r}")


def update_inventory_digest(tx: TxLedger, host_id: str, inventory_sha256: str) -> list[Change]:
    """Record the digest of the host's current (off-ledger) inventory.

    Raises:
        AuthorizationError: wrong role, another organization's host, or another host.
        ValidationError: malformed digest.
        NotFoundError: unknown host.
        TransitionError: the host is decommissioned.
    """
    authorize(tx.caller, "update_inventory_digest")
    sha256_hex("inventory_sha256", inventory_sha256)
    host = tx.load(Host, host_id)
    check_host_access(tx.caller, host)
    tx.save(host.evolve(inventory_sha256=inventory_sha256), owner_org=host.owner_msp)
    return tx.changes


def decommission_host(tx: TxLedger, host_id: str) -> list[Change]:
    """Retire a host for good.

    Raises:
        AuthorizationError: wrong role or another organization's host.
        NotFoundError: unknown host.
        TransitionError: already decommissioned.
    """
    authorize(tx.caller, "decommission_host")
    host = tx.load(Host, host_id)
    check_host_access(tx.caller, host)
    tx.save(host.evolve(status="DECOMMISSIONED"), owner_org=host.owner_msp)
    return tx.changes
