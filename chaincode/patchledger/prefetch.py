"""Reading a ReportDeployments batch's keys in a few requests instead of one per key (and, the
same way, the Host records a wave start reads, :func:`prefetch_advance`, and the records an
``AttestDeployments`` batch reads, :func:`prefetch_attestations`).

:func:`chaincode.lifecycle.ops.deployments.report_deployments` reads, per report, the Host
record of the reported host, then (host found, ENROLLED and of the caller's organization) the
Deployment record ``(rollout_id, host_id)``, then (deployment found) the Rollout record, then
(the rollout takes the report and the deployment is of the reported patch) the Patch record.
Each read is a round trip to the peer. :func:`prefetch_reports` reads the same keys beforehand
with :meth:`~chaincode.patchledger.bridge.StubStore.prefetch`, in four steps that mirror those
conditions (hosts; deployments; rollouts; patches), so the transaction's read set holds exactly the
keys the core reads and nothing more: an extra read would only add MVCC conflicts.

Prefetching is an optimization only: it never refuses anything (a report that does not parse,
a host that does not decode... are skipped here and refused by the core with its own message).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from patchledger.chaincode.lifecycle import LifecycleError, TxLedger
from patchledger.chaincode.lifecycle.deployment import Deployment
from patchledger.chaincode.lifecycle.host import Host
from patchledger.chaincode.lifecycle.host_report import HostReport, SignedReport
from patchledger.chaincode.lifecycle.identity import Role
from patchledger.chaincode.lifecycle.ops.deployments import MAX_BATCH, takes_report
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.record import Key
from patchledger.chaincode.lifecycle.rollout import Rollout
from patchledger.chaincode.patchledger.bridge import StubStore

__all__ = ["prefetch_advance", "prefetch_attestations", "prefetch_reports"]


def _reports(tx: TxLedger, raw_reports: Any) -> list[HostReport]:
    """The reports whose host record the core will read (parsed, and the caller's own when
    the caller is a host)."""
    if not isinstance(raw_reports, list | tuple) or not 1 <= len(raw_reports) <= MAX_BATCH:
        return []
    out = []
    for raw in raw_reports:
        if not isinstance(raw, Mapping):
            continue
        try:
            report = SignedReport.from_dict(raw).report
        except LifecycleError:
            continue
        if tx.caller.role == Role.HOST and tx.caller.host_id != report.host_id:
            continue
        out.append(report)
    return out


def _record(tx: TxLedger, store: StubStore, cls: type[Any], *parts: str) -> Any:
    """The cached record at ``parts`` (None when absent or not decodable), parsed through the
    transaction's cache (:meth:`TxLedger.parse`), so the core does not parse it again and a
    rollout read for every report of a batch is parsed once."""
    key = Key(cls.RECORD_TYPE, parts)
    raw = store.get(key)
    if raw is None:
        return None
    try:
        return tx.parse(cls, key, raw)
    except LifecycleError:
        return None


def prefetch_reports(tx: TxLedger, raw_reports: Any) -> int:
    """Prefetch the keys :func:`report_deployments` will read for ``raw_reports`` into the
    transaction's :class:`StubStore` (no-op for another store); return how many keys were read.

    Runs in the worker thread, before the operation.

    Raises:
        PeerError, StreamClosedError: the peer failed the read.
    """
    store = tx.store
    if not isinstance(store, StubStore):
        return 0
    reports = _reports(tx, raw_reports)
    read = store.prefetch([Key(Host.RECORD_TYPE, (r.host_id,)) for r in reports])
    reporting: list[HostReport] = []
    for report in reports:
        host = _record(tx, store, Host, report.host_id)
        if host is not None and host.status == "ENROLLED" and host.owner_msp == tx.caller.msp_id:
            reporting.append(report)
    read += store.prefetch(
        [Key(Deployment.RECORD_TYPE, (r.rollout_id, r.host_id)) for r in reporting]
    )
    found = ((r, _record(tx, store, Deployment, r.rollout_id, r.host_id)) for r in reporting)
    deployed = [(r, d) for r, d in found if d is not None]
    rollouts: Sequence[Key] = [Key(Rollout.RECORD_TYPE, (d.rollout_id,)) for _, d in deployed]
    read += store.prefetch(rollouts)
    patches = []
    for report, deployment in deployed:
        rollout = _record(tx, store, Rollout, deployment.rollout_id)
        if (
            rollout is not None
            and takes_report(rollout, report.outcome)
            and deployment.patch_id == report.patch_id
        ):
            patches.append(Key(Patch.RECORD_TYPE, (deployment.patch_id,)))
    return read + store.prefetch(patches)


def prefetch_advance(tx: TxLedger, rollout_id: Any) -> int:
    """Prefetch the Host records ``advance_rollout`` reads when it starts the next wave of
    ``rollout_id`` (one per host of that wave: 7,400 round trips for a wave of 7,400 hosts
    otherwise); only when the rollout is PLANNED or RUNNING with a next wave, the state in
    which the core reads them. Return how many keys were read.

    Raises:
        PeerError, StreamClosedError: the peer failed the read.
    """
    store = tx.store
    if not isinstance(store, StubStore) or not isinstance(rollout_id, str):
        return 0
    try:
        rollout = _record(tx, store, Rollout, rollout_id)
    except (LifecycleError, ValueError):
        return 0
    if rollout is None or rollout.status not in ("PLANNED", "RUNNING"):
        return 0
    nxt = rollout.current_wave + 1
    if not 0 <= nxt < len(rollout.waves):
        return 0
    return store.prefetch([Key(Host.RECORD_TYPE, (h,)) for h in rollout.waves[nxt].hosts])


def prefetch_attestations(store: Any, rollout_id: Any, pairs: Sequence[tuple[str, str]]) -> int:
    """Prefetch the Host and Deployment records ``attest_deployments`` reads for ``pairs``
    (two round trips for the batch instead of two per host); return how many were read."""
    if not isinstance(store, StubStore) or not isinstance(rollout_id, str):
        return 0
    keys = [Key(Host.RECORD_TYPE, (h,)) for h, _ in pairs]
    keys += [Key(Deployment.RECORD_TYPE, (rollout_id, h)) for h, _ in pairs]
    try:
        return store.prefetch(keys)
    except ValueError:  # an id no key can hold: the core refuses it with its own message
        return 0
