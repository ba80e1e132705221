"""The agent relay: what an organization's app does for its agents, as library functions the
app's agent endpoints call (and the fleet simulator calls in-process, the seam where HTTP
would be).

- :meth:`AgentRelay.poll`: the host's current order from the dispatcher's ``orders.json``
  (and the poll is noted in ``seen.json``, so the dispatcher knows the host is online);
- :meth:`AgentRelay.download`: the artifact, from a content-addressed directory (files named
  by their SHA-256; the agent checks digest and size against the attested patch anyway);
- :meth:`AgentRelay.attest`: the agent's ``(host_id, nonce)`` attested by the named
  organizations' peers (endorsed, never submitted). Requests of the same rollout that arrive
  while one is being gathered share one ``AttestDeployments`` (:class:`AttestationBatcher`:
  one chaincode execution per endorsing peer for the whole batch instead of one per host);
  every agent of the batch receives the same bundle and finds its own nonce in it;
- :meth:`AgentRelay.report`: a run's signed reports, stored durably in the dispatcher's inbox
  before the call returns; the dispatcher batches them onto the ledger.

Nothing the relay serves is trusted by the agent without the attestation.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchledger.app.dispatch.board import Board, Order
from patchledger.app.errors import UserError
from patchledger.app.fabric import Contract
from patchledger.app.fabric.attest import attest_deployment, attest_deployments
from patchledger.chaincode.lifecycle.attestation import MAX_ATTEST_BATCH

__all__ = ["AgentRelay", "ArtifactDirectory", "AttestationBatcher", "RelayError"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class RelayError(UserError):
    """A relay request that cannot be served (unknown artifact, bad digest); named."""


@dataclass(frozen=True)
class ArtifactDirectory:
    """Artifacts stored by SHA-256 under ``root``."""

    root: Path

    def put(self, data: bytes) -> str:
        """Store ``data``; return its SHA-256.

        Raises:
            OSError: the directory cannot be written.
        """
        digest = hashlib.sha256(data).hexdigest()
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / digest
        if not path.exists():
            tmp = self.root / f".{digest}.tmp"
            tmp.write_bytes(data)
            tmp.replace(path)
        return digest

    def get(self, digest: str) -> bytes:
        """The artifact with that digest.

        Raises:
            RelayError: the digest is malformed or unknown.
        """
        if not _DIGEST.match(digest):
            raise RelayError(f"artifact digest {digest!r} is not a SHA-256 hex digest")
        path = self.root / digest
        if not path.is_file():
            raise RelayError(f"no artifact {digest} in {self.root}")
        return path.read_bytes()


#: ``(rollout_id, [(host_id, nonce), ...]) -> bundle``: one endorsed AttestDeployments.
BatchAttestor = Callable[[str, Sequence[tuple[str, str]]], Mapping[str, Any]]


class _Batch:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.done = threading.Event()
        self.closed = False
        self.bundle: Mapping[str, Any] | None = None
        self.error: BaseException | None = None


class AttestationBatcher:
    """Gathers agents' attestation requests per rollout into one ``AttestDeployments``.

    The first request of a rollout opens a batch and waits up to ``linger`` seconds (or until
    ``max_batch`` requests joined) before it asks the peers, on behalf of all; the others
    wait for that answer. A host already in the open batch (a second request of the same
    agent) waits for the next one. Batches of different rollouts, and the next batch of the
    same rollout, go in parallel with one in flight. Nothing is cached: each batch is a new
    endorsement that answers exactly its requests' nonces, so an agent's attestation is never
    older than its own request (docs/security.md, "Batched attestations").
    """

    def __init__(self, attest: BatchAttestor, *, linger: float = 0.05,
                 max_batch: int = MAX_ATTEST_BATCH) -> None:
        """Args:
        attest: one endorsed ``AttestDeployments`` call.
        linger: seconds the first request of a batch waits for others.
        max_batch: requests per batch (1 to the contract's MAX_ATTEST_BATCH).

        Raises:
            UserError: ``max_batch`` or ``linger`` out of range.
        """
        if not 1 <= max_batch <= MAX_ATTEST_BATCH:
            raise UserError(f"max_batch must be 1 to {MAX_ATTEST_BATCH}, not {max_batch}")
        if linger < 0:
            raise UserError(f"linger must be 0 or more seconds, not {linger}")
        self._attest = attest
        self.linger = linger
        self.max_batch = max_batch
        self._lock = threading.Condition()
        self._open: dict[str, _Batch] = {}
        self.calls = 0

    def attest(self, host_id: str, rollout_id: str, nonce: str) -> Mapping[str, Any]:
        """The bundle answering ``(host_id, nonce)`` among its batch's requests.

        Raises:
            Exception: whatever the batch's call raised (every request of the batch gets it).
        """
        with self._lock:
            while True:
                batch = self._open.get(rollout_id)
                if batch is None or batch.closed:
                    batch = self._open[rollout_id] = _Batch()
                if all(h != host_id for h, _ in batch.requests):
                    break
                self._lock.wait(0.01)  # the same host twice: join the next batch
            batch.requests.append((host_id, nonce))
            leader = len(batch.requests) == 1
            if len(batch.requests) >= self.max_batch:
                batch.closed = True
                self._lock.notify_all()
            if leader:
                deadline = time.monotonic() + self.linger
                while not batch.closed and (left := deadline - time.monotonic()) > 0:
                    self._lock.wait(left)
                batch.closed = True
                if self._open.get(rollout_id) is batch:
                    del self._open[rollout_id]
        if leader:
            try:
                batch.bundle = self._attest(rollout_id, list(batch.requests))
                self.calls += 1
            except BaseException as exc:  # handed to every waiting agent, then re-raised
                batch.error = exc
            finally:
                batch.done.set()
        else:
            batch.done.wait()
        if batch.error is not None:
            raise batch.error
        assert batch.bundle is not None
        return batch.bundle


@dataclass
class AgentRelay:
    """One organization's relay for its agents (module docstring).

    Attributes:
        board: the dispatcher's shared files.
        contract: the chaincode through the app's own identity and peer.
        artifacts: the artifact store.
        endorsing_organizations: whose peers endorse attestations (every voting organization).
        attest_linger: seconds an attestation request waits for others of the same rollout
            to share one ``AttestDeployments`` (:class:`AttestationBatcher`); 0 with
            ``attest_batch`` 1 asks ``AttestDeployment`` per host, as before.
        attest_batch: most requests per ``AttestDeployments``.
    """

    board: Board
    contract: Contract
    artifacts: ArtifactDirectory
    endorsing_organizations: Sequence[str]
    attest_linger: float = 0.05
    attest_batch: int = MAX_ATTEST_BATCH
    _batcher: AttestationBatcher | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        """Raises:
        UserError: ``attest_batch`` or ``attest_linger`` out of range.
        """
        if self.attest_batch > 1 or self.attest_linger > 0:
            self._batcher = AttestationBatcher(
                lambda rollout_id, requests: attest_deployments(
                    self.contract, rollout_id, requests,
                    endorsing_organizations=self.endorsing_organizations),
                linger=self.attest_linger, max_batch=self.attest_batch)

    @property
    def attestations(self) -> int:
        """Endorsed batches asked for so far (0 when not batching)."""
        return self._batcher.calls if self._batcher is not None else 0

    def poll(self, host_id: str) -> Order | None:
        """The host's order, or ``None``; notes the poll.

        Raises:
            BoardError: ``orders.json`` is unreadable.
        """
        self.board.mark_seen(host_id)
        return self.board.order_for(host_id)

    def flush_seen(self) -> None:
        """Write the polls noted so far to ``seen.json`` now.

        Raises:
            OSError: the state directory cannot be written.
        """
        self.board.flush_seen()

    def download(self, order: Order) -> bytes:
        """The order's artifact.

        Raises:
            RelayError: unknown artifact.
        """
        return self.artifacts.get(order.artifact_sha256)

    def attest(self, host_id: str, rollout_id: str, nonce: str) -> Mapping[str, Any]:
        """The endorsed bundle answering the agent's ``(host_id, nonce)``: a shared
        ``AttestDeployments`` (batching on), else its own ``AttestDeployment``.

        Raises:
            EndorseError: a peer refused or could not be reached.
        """
        if self._batcher is not None:
            return self._batcher.attest(host_id, rollout_id, nonce)
        return attest_deployment(self.contract, host_id, rollout_id, nonce,
                                 endorsing_organizations=self.endorsing_organizations)

    def report(self, reports: Sequence[Mapping[str, Any]]) -> None:
        """Store a run's signed reports durably for the dispatcher (empty: nothing).

        Raises:
            OSError: the inbox cannot be written.
        """
        if reports:
            self.board.put_reports(reports)
