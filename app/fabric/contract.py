"""A smart contract (chaincode, optionally a named contract within it) on a channel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from patchledger.app.fabric._client import GatewayClient
from patchledger.app.fabric._protos import gateway_pb2, proposal_pb2
from patchledger.app.fabric.commit import SubmittedTransaction
from patchledger.app.fabric.errors import CommitError
from patchledger.app.fabric.proposal import Proposal
from patchledger.app.fabric.transaction_context import (
    Argument,
    TransactionContext,
    build_proposal_bytes,
)


class Contract:
    """Evaluate and submit transactions of one chaincode.

    Every call builds a fresh proposal, hence a fresh transaction id. Per-call ``timeout``
    arguments override the gateway's per-phase defaults.
    """

    def __init__(
        self, client: GatewayClient, channel: str, chaincode_name: str, contract_name: str = ""
    ) -> None:
        self._client = client
        self._channel = channel
        self._chaincode_name = chaincode_name
        self._contract_name = contract_name

    @property
    def chaincode_name(self) -> str:
        """The chaincode name."""
        return self._chaincode_name

    @property
    def contract_name(self) -> str:
        """The contract name within the chaincode ("" for the default contract)."""
        return self._contract_name

    def _qualified(self, name: str) -> str:
        return f"{self._contract_name}:{name}" if self._contract_name else name

    def new_proposal(
        self,
        name: str,
        arguments: Sequence[Argument] = (),
        *,
        transient_data: Mapping[str, bytes] | None = None,
        endorsing_organizations: Sequence[str] = (),
        nonce: bytes | None = None,
    ) -> Proposal:
        """Build an unsigned proposal for the step-by-step or offline-signing flow.

        Args:
            name: the transaction (function) name.
            arguments: its arguments; ``str`` is UTF-8 encoded.
            transient_data: private inputs, not recorded on the ledger.
            endorsing_organizations: MSP ids that must endorse (empty: the gateway plans).
            nonce: a fixed nonce, for tests only; a random 24-byte nonce by default.

        Raises:
            ValueError: an empty transaction name.
        """
        context = TransactionContext.new(self._client.identity.creator, nonce)
        proposal_bytes = build_proposal_bytes(
            context,
            channel=self._channel,
            chaincode=self._chaincode_name,
            transaction_name=self._qualified(name),
            arguments=arguments,
            transient_data=transient_data,
        )
        proposed = gateway_pb2.ProposedTransaction(
            transaction_id=context.transaction_id,
            proposal=proposal_pb2.SignedProposal(proposal_bytes=proposal_bytes),
            endorsing_organizations=list(endorsing_organizations),
        )
        return Proposal(self._client, proposed, self._channel)

    def evaluate_transaction(self, name: str, *arguments: Argument) -> bytes:
        """Evaluate ``name(*arguments)`` and return its result. See :meth:`evaluate`."""
        return self.evaluate(name, arguments)

    def submit_transaction(self, name: str, *arguments: Argument) -> bytes:
        """Submit ``name(*arguments)``, wait for commit, return its result. See :meth:`submit`."""
        return self.submit(name, arguments)

    def evaluate(
        self,
        name: str,
        arguments: Sequence[Argument] = (),
        *,
        transient_data: Mapping[str, bytes] | None = None,
        endorsing_organizations: Sequence[str] = (),
        timeout: float | None = None,
    ) -> bytes:
        """Run a transaction function on one peer without updating the ledger.

        Raises:
            GatewayError: the Evaluate call failed.
            SigningError: no signer is configured.
        """
        proposal = self.new_proposal(
            name,
            arguments,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
        )
        return proposal.evaluate(timeout)

    def submit_async(
        self,
        name: str,
        arguments: Sequence[Argument] = (),
        *,
        transient_data: Mapping[str, bytes] | None = None,
        endorsing_organizations: Sequence[str] = (),
        endorse_timeout: float | None = None,
        submit_timeout: float | None = None,
    ) -> SubmittedTransaction:
        """Endorse and submit a transaction without waiting for its commit.

        Returns:
            a handle with the endorsed ``result`` and ``get_status()`` to await the commit.

        Raises:
            EndorseError: the endorse invocation failed.
            SubmitError: the submit invocation failed.
            SigningError: no signer is configured.
        """
        proposal = self.new_proposal(
            name,
            arguments,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
        )
        return proposal.endorse(endorse_timeout).submit(submit_timeout)

    def submit(
        self,
        name: str,
        arguments: Sequence[Argument] = (),
        *,
        transient_data: Mapping[str, bytes] | None = None,
        endorsing_organizations: Sequence[str] = (),
        endorse_timeout: float | None = None,
        submit_timeout: float | None = None,
        commit_status_timeout: float | None = None,
    ) -> bytes:
        """Endorse, submit, wait for the commit; return the transaction function's result.

        Raises:
            EndorseError: the endorse invocation failed.
            SubmitError: the submit invocation failed.
            CommitStatusError: the commit status invocation failed (e.g. its deadline passed).
            CommitError: the transaction committed unsuccessfully (e.g. MVCC_READ_CONFLICT).
            SigningError: no signer is configured.
        """
        submitted = self.submit_async(
            name,
            arguments,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
            endorse_timeout=endorse_timeout,
            submit_timeout=submit_timeout,
        )
        status = submitted.get_status(commit_status_timeout)
        if not status.successful:
            raise CommitError(
                status.transaction_id, status.code, status.code_name, status.block_number
            )
        return submitted.result
