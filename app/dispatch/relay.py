"""The agent relay: what an organization's app does for its agents, as library functions the
app's agent endpoints call (and the fleet simulator calls in-process, the seam where HTTP
would be).

- :meth:`AgentRelay.poll`: the host's current order from the dispatcher's ``orders.json``
  (and the poll is noted in ``seen.json``, so the dispatcher knows the host is online);
- :meth:`AgentRelay.download`: the artifact, from a content-addressed directory (files named
  by their SHA-256; the agent checks digest and size against the attested patch anyway);
- :meth:`AgentRelay.attest`: ``AttestDeployment`` endorsed (never submitted) by the named
  organizations' peers (:func:`app.fabric.attest.attest_deployment`);
- :meth:`AgentRelay.report`: a run's signed reports, stored durably in the dispatcher's inbox
  before the call returns; the dispatcher batches them onto the ledger.

Nothing the relay serves is trusted by the agent without the attestation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchledger.app.dispatch.board import Board, Order
from patchledger.app.errors import UserError
from patchledger.app.fabric import Contract
from patchledger.app.fabric.attest import attest_deployment

__all__ = ["AgentRelay", "ArtifactDirectory", "RelayError"]

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


@dataclass
class AgentRelay:
    """One organization's relay for its agents (module docstring).

    Attributes:
        board: the dispatcher's shared files.
        contract: the chaincode through the app's own identity and peer.
        artifacts: the artifact store.
        endorsing_organizations: whose peers endorse attestations (every voting organization).
    """

    board: Board
    contract: Contract
    artifacts: ArtifactDirectory
    endorsing_organizations: Sequence[str]

    def poll(self, host_id: str) -> Order | None:
        """The host's order, or ``None``; notes the poll.

        Raises:
            BoardError: ``orders.json`` is unreadable.
        """
        self.board.mark_seen(host_id)
        return self.board.order_for(host_id)

    def download(self, order: Order) -> bytes:
        """The order's artifact.

        Raises:
            RelayError: unknown artifact.
        """
        return self.artifacts.get(order.artifact_sha256)

    def attest(self, host_id: str, rollout_id: str, nonce: str) -> Mapping[str, Any]:
        """The endorsed ``AttestDeployment`` bundle.

        Raises:
            EndorseError: a peer refused or could not be reached.
        """
        return attest_deployment(self.contract, host_id, rollout_id, nonce,
                                 endorsing_organizations=self.endorsing_organizations)

    def report(self, reports: Sequence[Mapping[str, Any]]) -> None:
        """Store a run's signed reports durably for the dispatcher (empty: nothing).

        Raises:
            OSError: the inbox cannot be written.
        """
        if reports:
            self.board.put_reports(reports)
