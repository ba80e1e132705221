"""Checking recorded deployment statuses against their hosts' signatures.

Deployment records carry no key-level endorsement policy: their writes are validated by the
chaincode's endorsement policy (a majority of the channel's organizations), which the peers
evaluate once per transaction, not once per key (docs/benchmarks.md, "Host-report throughput").
An honest majority's chaincode writes a status only from a host's signed report, so one
compromised organization cannot write or rewrite a deployment. Against a colluding majority
(endorsing what its own modified chaincode wrote) the status is *self-certifying*: every
reported state keeps the host's signature over the report that set it
(:meth:`~chaincode.lifecycle.deployment.Deployment.signed_report`), and the records it is
checked against, the Host (the host's certificate) and the Rollout (its waves), keep the
owner's peer AND a majority as their key-level policy.

:func:`check_deployment` checks one version of a record; :func:`check_history` every version of
one key, oldest first, which also catches a status rolled back to an older genuine report or a
signed report moved into another version out of order. Both are pure and return the problems
found (empty: the record is genuine), each naming the deployment and what is wrong; they raise
nothing for a forged record, since reporting forgeries is their purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

from patchledger.chaincode.lifecycle.deployment import MACHINE, Deployment
from patchledger.chaincode.lifecycle.errors import LifecycleError
from patchledger.chaincode.lifecycle.host import EMPTY_INVENTORY, Host
from patchledger.chaincode.lifecycle.rollout import Rollout

__all__ = ["check_deployment", "check_history"]


def _name(deployment: Deployment) -> str:
    return f"deployment {deployment.rollout_id}/{deployment.host_id}"


def check_deployment(
    deployment: Deployment,
    host: Host,
    rollout: Rollout,
    *,
    host_certs: Sequence[str] = (),
) -> list[str]:
    """The problems of one version of ``deployment`` (empty when it is genuine).

    Genuine means: ``host`` and ``rollout`` are the deployment's; the rollout lists the host in
    the deployment's wave and deploys its patch; the deployment is owned by the host's owner;
    a SCHEDULED status carries no report (sequence 0, no signature, no report time, the empty
    inventory digest, no detail); any other status carries a signature by the host's key over
    the report rebuilt from the record.

    Args:
        deployment: the version to check.
        host: the host's record (as of now; its key-level policy is the owner AND a majority).
        rollout: the deployment's rollout record.
        host_certs: the PEM certificates the host had over time (its Host record's history);
            default: ``host.cert_pem`` only. The signature must verify with one of them.
    """
    name = _name(deployment)
    if (deployment.host_id, deployment.rollout_id) != (host.host_id, rollout.rollout_id):
        return [f"{name}: checked against host {host.host_id!r} and rollout "
                f"{rollout.rollout_id!r}, not its own"]
    problems = []
    if deployment.patch_id != rollout.patch_id:
        problems.append(f"{name}: patch {deployment.patch_id!r}, but its rollout deploys "
                        f"{rollout.patch_id!r}")
    if deployment.owner_msp != host.owner_msp:
        problems.append(f"{name}: owned by {deployment.owner_msp}, but host "
                        f"{host.host_id!r} belongs to {host.owner_msp}")
    waves = rollout.waves
    if not (0 <= deployment.wave < len(waves) and host.host_id in waves[deployment.wave].hosts):
        problems.append(f"{name}: rollout {rollout.rollout_id!r} has no host "
                        f"{host.host_id!r} in wave {deployment.wave}")
    if deployment.status == MACHINE.initial:
        unreported = (deployment.report_sequence, deployment.report_signature,
                      deployment.reported_at, deployment.inventory_sha256, deployment.detail)
        if unreported != (0, "", 0, EMPTY_INVENTORY, ""):
            problems.append(f"{name}: {deployment.status} with report fields set "
                            "(no report sets that state)")
        return problems
    problems += _signature_problems(deployment, host, host_certs or (host.cert_pem,))
    return problems


def _signature_problems(deployment: Deployment, host: Host, certs: Sequence[str]) -> list[str]:
    name = _name(deployment)
    what = f"{name}: status {deployment.status} (report {deployment.report_sequence})"
    try:
        signed = deployment.signed_report()
    except LifecycleError as exc:
        return [f"{what}: the recorded report is not valid: {exc}"]
    if signed is None:
        return [f"{what} carries no signature of host {host.host_id!r}"]
    for cert in certs:
        try:
            signed.verify_signature(cert.encode("ascii"), what)
        except (LifecycleError, UnicodeError):
            continue
        return []
    return [f"{what}: the recorded signature does not verify with host "
            f"{host.host_id!r}'s certificate (not signed by the host, or altered)"]


def check_history(
    versions: Sequence[Deployment],
    host: Host,
    rollout: Rollout,
    *,
    host_certs: Sequence[str] = (),
) -> list[str]:
    """The problems of every version of one deployment key, oldest first (empty: genuine).

    Each version must pass :func:`check_deployment`; the first must be SCHEDULED (created by
    ``AdvanceRollout``); each later one a move the deployment's state machine allows with a
    report sequence strictly above the previous version's (as the contract's replay check
    requires), so a status set back to an older genuine report is caught too.

    Args:
        versions: the record's versions, oldest first (``GetHistory``); a deletion is given as
            no version at all (the caller reports it: a deployment is never deleted).
        host, rollout, host_certs: as for :func:`check_deployment`.
    """
    problems: list[str] = []
    previous: Deployment | None = None
    for index, version in enumerate(versions):
        found = check_deployment(version, host, rollout, host_certs=host_certs)
        problems += [f"version {index + 1}: {p}" for p in found]
        name = _name(version)
        if previous is None:
            if version.status != MACHINE.initial:
                problems.append(f"version {index + 1}: {name} was created {version.status}, "
                                f"not {MACHINE.initial}")
        else:
            if not MACHINE.allows(previous.status, version.status):
                problems.append(f"version {index + 1}: {name} moved {previous.status} -> "
                                f"{version.status}, which no report does")
            if version.report_sequence <= previous.report_sequence:
                problems.append(f"version {index + 1}: {name} report sequence "
                                f"{version.report_sequence} is not above the previous "
                                f"version's {previous.report_sequence} (a replay or a "
                                "rewrite)")
        previous = version
    return problems
