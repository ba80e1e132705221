"""A smart contract (chaincode, optionally a named contract within it) on a channel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from patchledger.app.fabric._client import GatewayClient
from patchledger.app.fabric._protos import gateway_pb2, proposal_pb2
from patchledger.app.fabric.commit import SubmittedTransaction
from patchledger.app.fabric.errors import CommitError
from patchledger.app.fabric.proposal import Proposal, ProposalKeywords, ProposalOptions
from patchledger.app.fabric.transaction_context import (
    Argument,
    TransactionContext,
    build_proposal_bytes,
)


class Contract:
    """Evaluate and submit transactions of one chaincode.

    Every call builds a fresh proposal, hence a fresh transaction id. What a proposal carries
    is one :class:`ProposalOptions`: :meth:`new_proposal`, :meth:`evaluate`,
    :meth:`submit_async` and :meth:`submit` take it as their second argument, or the argument
    list there and the other options as keywords (``transient_data``,
    ``endorsing_organizations``). Per-call ``timeout`` arguments override the gateway's
    per-phase defaults.
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
        arguments: Sequence[Argument] | ProposalOptions = (),
        *,
        nonce: bytes | None = None,
        **options: Unpack[ProposalKeywords],
    ) -> Proposal:
        """Build an unsigned proposal for the step-by-step or offline-signing flow.

        Args:
            name: the transaction (function) name.
            arguments: a :class:`ProposalOptions`, or the arguments (``str`` is UTF-8 encoded).
            nonce: a fixed nonce, for tests only; a random 24-byte nonce by default.
            options: ``transient_data`` and ``endorsing_organizations``, replacing those of
                ``arguments`` (see :class:`ProposalOptions`).

        Raises:
            ValueError: an empty transaction name.
            TypeError: an unknown option.
        """
        resolved = ProposalOptions.of(arguments, **options)
        context = TransactionContext.new(self._client.identity.creator, nonce)
        proposal_bytes = build_proposal_bytes(
            context,
            channel=self._channel,
            chaincode=self._chaincode_name,
            transaction_name=self._qualified(name),
            arguments=resolved.arguments,
            transient_data=resolved.transient_data,
        )
        proposed = gateway_pb2.ProposedTransaction(
            transaction_id=context.transaction_id,
            proposal=proposal_pb2.SignedProposal(proposal_bytes=proposal_bytes),
            endorsing_organizations=list(resolved.endorsing_organizations),
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
        arguments: Sequence[Argument] | ProposalOptions = (),
        *,
        timeout: float | None = None,
        **options: Unpack[ProposalKeywords],
    ) -> bytes:
        """Run a transaction function on one peer without updating the ledger. ``arguments``
        and ``options`` as for :meth:`new_proposal`.

        Raises:
            GatewayError: the Evaluate call failed.
            SigningError: no signer is configured.
        """
        return self.new_proposal(name, arguments, **options).evaluate(timeout)

    def submit_async(
        self,
        name: str,
        arguments: Sequence[Argument] | ProposalOptions = (),
        *,
        endorse_timeout: float | None = None,
        submit_timeout: float | None = None,
        **options: Unpack[ProposalKeywords],
    ) -> SubmittedTransaction:
        """Endorse and submit a transaction without waiting for its commit. ``arguments`` and
        ``options`` as for :meth:`new_proposal`.

        Returns:
            a handle with the endorsed ``result`` and ``get_status()`` to await the commit.

        Raises:
            EndorseError: the endorse invocation failed.
            SubmitError: the submit invocation failed.
            SigningError: no signer is configured.
        """
        proposal = self.new_proposal(name, arguments, **options)
        return proposal.endorse(endorse_timeout).submit(submit_timeout)

    def submit(
        self,
        name: str,
        arguments: Sequence[Argument] | ProposalOptions = (),
        *,
        endorse_timeout: float | None = None,
        submit_timeout: float | None = None,
        commit_status_timeout: float | None = None,
        **options: Unpack[ProposalKeywords],
    ) -> bytes:
        """Endorse, submit, wait for the commit; return the transaction function's result.
        ``arguments`` and ``options`` as for :meth:`new_proposal`.

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
            endorse_timeout=endorse_timeout,
            submit_timeout=submit_timeout,
            **options,
        )
        status = submitted.get_status(commit_status_timeout)
        if not status.successful:
            raise CommitError(
                status.transaction_id, status.code, status.code_name, status.block_number
            )
        return submitted.result
