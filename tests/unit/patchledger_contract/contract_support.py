"""Driving the patchledger contract through the runtime's in-process fake peer.

:class:`Ledger` runs a :class:`~chaincode.runtime.PeerSession` serving the contract over a
:class:`~tests.support.chaincode_runtime.FakePeer` inside one ``asyncio.run``; each call is one
transaction with the given identity (``tests.unit.lifecycle.lifecycle_support`` identities: real
P-256 keys, certificates with Fabric CA attributes issued by each organization's test CA) and
transaction time. The contract is built over the organizations' test CA roots
(``lifecycle_support.TRUST``) unless a scenario gives another trust.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from patchledger.chaincode.lifecycle import OrgTrust
from patchledger.chaincode.patchledger.contract import build_contract
from patchledger.chaincode.runtime import Contract, PeerSession
from tests.support.chaincode_runtime import FakePeer, make_creator, parse_response
from tests.unit.lifecycle.lifecycle_support import NOW, TRUST, Identity

T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """One transaction's answer: status, message, JSON payload and event."""

    status: int
    message: str
    payload: Any
    event_name: str
    event: Any

    @property
    def ok(self) -> bool:
        """True for status 200."""
        return self.status == 200


def at(seconds: int) -> dt.datetime:
    """The transaction timestamp of ``seconds`` since the epoch."""
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


class Ledger:
    """A running contract session over a fake peer (use inside :func:`scenario`)."""

    def __init__(self, peer: FakePeer) -> None:
        self.peer = peer

    async def call(
        self, who: Identity | bytes, function: str, *args: Any, now: int = NOW
    ) -> Reply:
        """Run ``function`` as ``who`` (an identity, or raw creator bytes) at ``now``.

        Non-string arguments are sent as JSON.
        """
        creator = who if isinstance(who, bytes) else make_creator(who.caller.msp_id, who.cert_pem)
        raw = [a if isinstance(a, str) else json.dumps(a) for a in args]
        message = await self.peer.transact(function, *raw, creator=creator, timestamp=at(now))
        response = parse_response(message)
        event = message.chaincode_event
        return Reply(
            response.status,
            response.message,
            json.loads(response.payload) if response.payload else None,
            event.event_name,
            json.loads(event.payload) if event.payload else None,
        )

    async def ok(self, who: Identity | bytes, function: str, *args: Any, now: int = NOW) -> Any:
        """Run ``function`` and return its payload; fail the test on a refusal."""
        reply = await self.call(who, function, *args, now=now)
        assert reply.ok, f"{function}: {reply.status} {reply.message}"
        return reply.payload


def scenario(
    body: Callable[[Ledger], Awaitable[T]],
    peer: FakePeer | None = None,
    *,
    trust: OrgTrust = TRUST,
    contract: Contract | None = None,
) -> T:
    """Run ``body`` against a fresh session of ``contract`` (default: the contract built over
    ``trust``) and return its result."""
    fake = peer or FakePeer(batch_size=3)
    contract = contract or build_contract(trust)

    async def main() -> T:
        session = PeerSession(fake, "patchledger:1", contract, request_timeout=10)
        task = asyncio.create_task(session.run())
        try:
            return await body(Ledger(fake))
        finally:
            fake.close()
            await task

    return asyncio.run(main())
