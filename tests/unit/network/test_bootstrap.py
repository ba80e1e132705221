"""The network tool's ledger initialisation: every organization admin's signed consent to the
shipped consortium policy, as ``InitLedger`` checks it (the core, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from patchledger.chaincode.lifecycle.ledger import MemoryStore
from patchledger.chaincode.lifecycle.ops import policies
from patchledger.chaincode.lifecycle.queries import get_record
from patchledger.network.bootstrap import admin_consent
from patchledger.network.config import NetworkConfig, StateLayout
from patchledger.network.errors import NetworkError
from patchledger.network.topology import build_topology
from tests.unit.lifecycle.lifecycle_support import NOW, ORGS, TRUST, run, who

CONSORTIUM_POLICY = Path(__file__).parents[3] / "network" / "consortium-policy.json"


def _config(tmp_path: Path) -> NetworkConfig:
    """A network whose organizations' admin MSP directories hold the unit tests' admins
    (issued by the test CAs of :data:`TRUST`)."""
    config = NetworkConfig(state_dir=tmp_path, fabric_home=tmp_path / "fabric",
                           topology=build_topology(), batch_timeout="300ms")
    layout = StateLayout(tmp_path)
    for org in config.topology.peer_orgs:
        admin = who(org.msp_id, "admin")
        msp = layout.user_dir(org.name, "admin") / "msp"
        (msp / "signcerts").mkdir(parents=True)
        (msp / "keystore").mkdir()
        (msp / "signcerts" / "cert.pem").write_bytes(admin.cert_pem)
        (msp / "keystore" / "priv_sk").write_bytes(admin.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    return config


def test_the_consents_the_tool_collects_initialise_the_ledger_with_the_consortium_policy(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    assert tuple(o.msp_id for o in config.topology.peer_orgs) == ORGS
    policy = json.loads(CONSORTIUM_POLICY.read_text())
    consents = [admin_consent(config, org, policy, NOW + 3600) for org in config.topology.peer_orgs]
    store = MemoryStore()
    run(store, who(ORGS[0], "admin"), policies.bootstrap_policy, policy, consents,
        channel_id=config.topology.channel, channel_orgs=ORGS, trust=TRUST)
    written = get_record(store, "Policy", "default").to_dict()
    assert (written["version"], written["organizations"]) == (1, policy["organizations"])
    assert {c["consent"]["msp_id"] for c in consents} == set(ORGS)
    assert all(c["consent"]["expires_at"] == NOW + 3600 for c in consents)


def test_a_missing_admin_key_is_named(tmp_path: Path) -> None:
    config = _config(tmp_path)
    org = config.topology.peer_orgs[1]
    key = StateLayout(tmp_path).user_dir(org.name, "admin") / "msp" / "keystore" / "priv_sk"
    key.unlink()
    with pytest.raises(NetworkError, match=rf"{org.name} \({org.msp_id}\): cannot sign the "
                       "admin's consent.*expected exactly one \\*_sk key, found 0"):
        admin_consent(config, org, json.loads(CONSORTIUM_POLICY.read_text()), NOW + 3600)
