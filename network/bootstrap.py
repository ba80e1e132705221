"""Initialising the ledger at network creation: the first policy with every organization's
signed consent.

``InitLedger`` writes the first policy only with the signed consent of a majority (at least 2)
of the channel's organizations' admins (docs/security.md, "Bootstrap"). The network tool holds
every organization's admin identity, so it collects each admin's
:class:`~chaincode.lifecycle.consent.SignedConsent` over the policy's digest and the channel,
then submits ``InitLedger(policy, consents)`` as the first organization's admin.
"""

from __future__ import annotations

import json
import time
from typing import Any

from patchledger.app.fabric import EcdsaSigner, IdentityError
from patchledger.chaincode.lifecycle import LifecycleError
from patchledger.chaincode.lifecycle.consent import new_consent
from patchledger.network.config import NetworkConfig, StateLayout
from patchledger.network.errors import NetworkError
from patchledger.network.peercli import invoke
from patchledger.network.topology import Org

__all__ = ["CONSENT_VALIDITY", "admin_consent", "every_admins_consent", "init_ledger"]

#: How long the consents collected at creation stay valid (they are used at once).
CONSENT_VALIDITY = 3600


def admin_consent(config: NetworkConfig, org: Org, policy: dict[str, Any],
                  expires_at: int) -> dict[str, Any]:
    """``org``'s admin's signed consent to the first policy ``policy`` on this channel.

    Raises:
        NetworkError: the admin's key or certificate cannot be read, or the policy or
            certificate is refused by the consent rules (the message names the organization).
    """
    msp_dir = StateLayout(config.state_dir).user_dir(org.name, "admin") / "msp"
    try:
        cert_pem = (msp_dir / "signcerts" / "cert.pem").read_bytes()
        key = EcdsaSigner.from_msp_dir(msp_dir).private_key
        return new_consent(policy, key=key, cert_pem=cert_pem, msp_id=org.msp_id,
                           channel_id=config.topology.channel, expires_at=expires_at)
    except (OSError, IdentityError, LifecycleError) as exc:
        raise NetworkError(f"{org.name} ({org.msp_id}): cannot sign the admin's consent to the "
                           f"first policy: {exc}") from exc


def every_admins_consent(config: NetworkConfig, policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The consent of every peer organization's admin to ``policy``, valid
    :data:`CONSENT_VALIDITY` seconds from now: ``InitLedger``'s ``consents`` argument.

    Raises:
        NetworkError: a consent cannot be signed (see :func:`admin_consent`).
    """
    expires_at = int(time.time()) + CONSENT_VALIDITY
    return [admin_consent(config, org, policy, expires_at) for org in config.topology.peer_orgs]


def init_ledger(config: NetworkConfig, policy: dict[str, Any]) -> None:
    """Submit ``InitLedger(policy, consents)`` with the consent of every peer organization's
    admin, endorsed by the first two organizations (the chaincode's MAJORITY of three).

    Raises:
        NetworkError: a consent cannot be signed, or the peer CLI reported a failure.
    """
    orgs = config.topology.peer_orgs
    consents = every_admins_consent(config, policy)
    invoke(config, (orgs[0], orgs[1]), "InitLedger", [json.dumps(policy), json.dumps(consents)])
