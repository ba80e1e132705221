"""EnrollHost through the contract checks the host certificate against the owner organization's
CA roots, which the served contract reads from ``PATCHLEDGER_ORG_ROOTS_DIR`` at start."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.chaincode.lifecycle import OrgTrust
from patchledger.chaincode.lifecycle.consent import new_consent
from patchledger.chaincode.patchledger.contract import build_contract, contract, from_environment
from patchledger.chaincode.patchledger.roots import ORG_ROOTS_ENV, load_org_roots, trust_from_env
from patchledger.chaincode.runtime import ConfigError, Contract, PeerSession
from patchledger.chaincode.runtime.server import load_chaincode
from tests.support.chaincode_runtime import FakePeer
from tests.unit.lifecycle.lifecycle_support import (
    CHANNEL,
    COMPLIANCE,
    ITOPS,
    NOW,
    ORGS,
    SECOPS,
    TRUST,
    OrgCA,
    consents,
    make_certificate,
    new_ca,
    org_ca,
    policy_data,
    who,
)
from tests.unit.patchledger_contract.contract_support import Ledger, Reply, scenario

NO_ROOTS = (
    "SignatureError: the certificate of host 'h9' (ITOpsMSP): no root certificate of ITOpsMSP "
    "is configured on this chaincode server, so it cannot check that ITOpsMSP's CA issued it "
    "(refused)"
)


def host_cert(host_id: str, issuer: OrgCA | None, **validity: dt.datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = {"role": "host", "host_id": host_id}
    return make_certificate(key, host_id, attrs, issuer=issuer, **validity).decode()


async def enroll(ledger: Ledger, cert_pem: str, host_id: str = "h9") -> Reply:
    return await ledger.call(
        who(ITOPS, "operator"), "EnrollHost", {"host_id": host_id, "cert_pem": cert_pem}
    )


def run_enrollments(certs: list[str], trust: OrgTrust = TRUST,
                    served: Contract | None = None) -> list[Reply]:
    """Each certificate enrolled as host h9 in turn, then GetRecord of h9, on ``served``
    (default: a contract over ``trust``)."""

    async def body(ledger: Ledger) -> list[Any]:
        replies = [await enroll(ledger, cert) for cert in certs]
        return [*replies, await ledger.call(who(ITOPS, "operator"), "GetRecord", "Host", "h9")]

    return scenario(body, trust=trust, contract=served)


def test_enroll_host_refuses_certificates_not_issued_by_the_owner_orgs_ca() -> None:
    moment = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    rogue, other_org, expired, good = run_enrollments([
        host_cert("h9", new_ca("ca.minted-by-the-app")),
        host_cert("h9", org_ca(SECOPS)),
        host_cert("h9", org_ca(ITOPS), not_after=moment - dt.timedelta(days=1)),
        host_cert("h9", org_ca(ITOPS)),
    ])[:4]
    assert (rogue.status, rogue.message) == (
        400,
        "SignatureError: the certificate of host 'h9' (ITOpsMSP) was not issued by a valid "
        "root certificate of ITOpsMSP (its issuer: CN=ca.minted-by-the-app)",
    )
    assert rogue.event_name == ""
    assert other_org.status == 400 and f"(its issuer: CN=ca.{SECOPS})" in other_org.message
    assert expired.status == 400
    assert expired.message.startswith(
        "ValidationError: invalid field 'cert_pem': the certificate of host 'h9' (ITOpsMSP) "
        f"is not valid at the transaction time {moment.isoformat()}"
    )
    assert good.ok and good.payload["changes"] == [
        {"record_type": "Host", "record_id": "h9", "from": "", "to": "ENROLLED"}
    ]


def test_a_contract_without_roots_for_the_owner_org_refuses_enrollment() -> None:
    cert = host_cert("h9", org_ca(ITOPS))
    only_others = OrgTrust({SECOPS: (org_ca(SECOPS).cert,), COMPLIANCE: (org_ca(COMPLIANCE).cert,)})
    for replies in (
        run_enrollments([cert], trust=only_others),
        run_enrollments([cert], served=contract),  # the module-level contract: no roots at all
    ):
        refused, record = replies
        assert (refused.status, refused.message) == (400, NO_ROOTS)
        assert record.status == 404  # nothing was written


def test_init_ledger_through_the_contract_needs_the_organizations_signed_consent() -> None:
    """InitLedger by ITOps' admin alone (only its own consent, an approver's consent for
    SecOps, no consents argument) is refused with a 4xx naming what was wrong; with SecOps'
    admin's consent it initialises once, and a second InitLedger is refused."""
    data = policy_data()

    async def body(ledger: Ledger) -> list[Reply]:
        admin = who(ITOPS, "admin")
        approver = who(SECOPS, "approver")
        not_admin = new_consent(data, key=approver.key, cert_pem=approver.cert_pem,
                                msp_id=SECOPS, channel_id=CHANNEL, expires_at=NOW + 3600)
        return [
            await ledger.call(admin, "InitLedger", data, consents(data, (ITOPS,))),
            await ledger.call(admin, "InitLedger", data, [*consents(data, (ITOPS,)), not_admin]),
            await ledger.call(admin, "InitLedger", data),
            await ledger.call(admin, "GetRecord", "Policy", "default"),
            await ledger.call(admin, "InitLedger", data, consents(data, (ITOPS, SECOPS))),
            await ledger.call(admin, "InitLedger", data, consents(data, (COMPLIANCE, SECOPS))),
        ]

    alone, approver, missing, absent, first, again = scenario(body)
    assert (alone.status, alone.message) == (
        400,
        "ValidationError: invalid field 'consents': the first policy needs the signed consent"
        " of 2 of the channel's 3 organizations' admins; given 1 (ITOpsMSP)",
    )
    assert approver.status == 403 and "role 'approver'" in approver.message
    assert (missing.status, missing.message) == (400, "InitLedger takes 2 argument(s), got 1")
    assert absent.status == 404 and alone.event_name == ""
    assert (first.ok and first.payload["changes"] == [
        {"record_type": "Policy", "record_id": "default", "from": "", "to": "1"}
    ]) or first.ok
    assert (again.status, again.message) == (
        409, "AlreadyExistsError: Policy 'default' already exists"
    )


def write_roots(directory: Path, orgs: tuple[str, ...]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for msp in orgs:
        (directory / f"{msp}.pem").write_bytes(org_ca(msp).cert_pem)
    return directory


def test_the_served_factory_reads_the_roots_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roots = write_roots(tmp_path / "org-roots", ORGS)
    (roots / "README").write_text("not a root")  # ignored: only <MSPID>.pem files count
    monkeypatch.setenv(ORG_ROOTS_ENV, str(roots))
    served = load_chaincode("patchledger.chaincode.patchledger.contract:from_environment")
    assert isinstance(served, Contract) and "EnrollHost" in served.functions
    good, record = run_enrollments([host_cert("h9", org_ca(ITOPS))], served=served)
    assert good.ok and record.payload["owner_msp"] == ITOPS

    only_secops = write_roots(tmp_path / "secops-only", (SECOPS,))
    refused, _ = run_enrollments(
        [host_cert("h9", org_ca(ITOPS))],
        served=from_environment({ORG_ROOTS_ENV: str(only_secops)}),
    )
    assert (refused.status, refused.message) == (400, NO_ROOTS)


def test_the_served_factory_refuses_to_start_without_valid_roots(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ORG_ROOTS_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"{ORG_ROOTS_ENV} is not set"):
        load_chaincode("patchledger.chaincode.patchledger.contract:from_environment")
    with pytest.raises(ConfigError, match=f"{ORG_ROOTS_ENV} is not set"):
        trust_from_env({ORG_ROOTS_ENV: "  "})
    with pytest.raises(ConfigError, match=f"{ORG_ROOTS_ENV}: cannot read .*missing"):
        trust_from_env({ORG_ROOTS_ENV: str(tmp_path / "missing")})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"holds no <MSPID>\.pem root certificate"):
        load_org_roots(empty)
    bad = write_roots(tmp_path / "bad", (SECOPS,))
    (bad / f"{ITOPS}.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(ConfigError, match=f"{ITOPS}.pem is not a bundle of PEM X.509"):
        load_org_roots(bad)


def test_roots_files_may_hold_several_certificates(tmp_path: Path) -> None:
    roots = tmp_path / "roots"
    roots.mkdir()
    nxt = new_ca("ca.itops.next")
    (roots / f"{ITOPS}.pem").write_bytes(org_ca(ITOPS).cert_pem + nxt.cert_pem)
    trust = load_org_roots(roots)
    assert trust.organizations == (ITOPS,)

    async def body(ledger: Ledger) -> list[Reply]:
        return [await enroll(ledger, host_cert("h8", org_ca(ITOPS)), "h8"),
                await enroll(ledger, host_cert("h9", nxt), "h9"),
                await enroll(ledger, host_cert("h7", new_ca("ca.rogue")), "h7")]

    old_root, new_root, rogue = scenario(body, contract=build_contract(trust))
    assert old_root.ok and new_root.ok
    assert rogue.status == 400 and "not issued by a valid root" in rogue.message


def test_each_contract_carries_its_own_services_to_every_call() -> None:
    """No shared state between contracts: two contracts over different roots serve the same
    enrollment at once in one process; each call sees only its own contract's roots, channel
    organizations and pool (the context its contract created)."""
    cert = host_cert("h9", org_ca(ITOPS))
    everyone = build_contract(TRUST)
    only_others = build_contract(
        OrgTrust({SECOPS: (org_ca(SECOPS).cert,), COMPLIANCE: (org_ca(COMPLIANCE).cert,)})
    )
    assert everyone.services.pool is not only_others.services.pool
    assert everyone.services.channel_orgs == tuple(sorted(ORGS))
    assert only_others.services.channel_orgs == tuple(sorted((SECOPS, COMPLIANCE)))

    async def both() -> list[Reply]:
        peers = [FakePeer(batch_size=3), FakePeer(batch_size=3)]
        sessions = [
            PeerSession(peer, "patchledger:1", served, request_timeout=10)
            for peer, served in zip(peers, (everyone, only_others), strict=True)
        ]
        tasks = [asyncio.create_task(s.run()) for s in sessions]
        try:
            return list(await asyncio.gather(*(enroll(Ledger(p), cert) for p in peers)))
        finally:
            for peer in peers:
                peer.close()
            await asyncio.gather(*tasks)

    accepted, refused = asyncio.run(both())
    assert accepted.ok, accepted.message
    assert (refused.status, refused.message) == (400, NO_ROOTS)
