"""The liveness pair used by ``patchledger network smoke``: ``Ping`` and ``GetPing``.

``Ping(nonce)`` may be called by any member of a channel organization (no ``role`` needed;
Fabric already checked the creator against the channel's writers policy). It writes a small
health record under the composite key ``("Ping", <caller's MSP id>)``: the MSP id, the nonce,
the transaction time (seconds since the epoch) and the transaction id, and sets the usual
``patchledger`` event. ``GetPing(msp_id)`` reads it back (404 when that organization never
pinged). Ping records are not lifecycle records and are never read by the core.
"""

from __future__ import annotations

import json
from typing import Any

from patchledger.chaincode.lifecycle import Change, LifecycleError, event_payload
from patchledger.chaincode.lifecycle.canonical import canonical_json
from patchledger.chaincode.lifecycle.fields import identifier
from patchledger.chaincode.patchledger.execution import EVENT_NAME, tx_time
from patchledger.chaincode.runtime import Context, ContractError, create_composite_key

__all__ = ["EVALUATE", "MAX_NONCE", "PING_TYPE", "SUBMIT"]

PING_TYPE = "Ping"
MAX_NONCE = 256


async def Ping(ctx: Context, nonce: str) -> dict[str, Any]:
    """Write the caller's organization's health record with ``nonce`` and the tx time."""
    if not 1 <= len(nonce) <= MAX_NONCE or not nonce.isprintable():
        raise ContractError(f"invalid field 'nonce': 1 to {MAX_NONCE} printable characters")
    msp_id = ctx.client_identity.msp_id
    record = {
        "record_type": PING_TYPE,
        "msp_id": msp_id,
        "nonce": nonce,
        "at": tx_time(ctx.stub),
        "tx_id": ctx.stub.tx_id,
    }
    await ctx.stub.put_state(create_composite_key(PING_TYPE, [msp_id]), canonical_json(record))
    ctx.stub.set_event(EVENT_NAME, event_payload([Change(PING_TYPE, msp_id, "", "")]))
    return record


async def GetPing(ctx: Context, msp_id: str) -> dict[str, Any]:
    """The last health record written by ``msp_id`` (404 when there is none)."""
    try:
        identifier("msp_id", msp_id)
    except LifecycleError as exc:
        raise ContractError(f"ValidationError: {exc}") from exc
    raw = await ctx.stub.get_state(create_composite_key(PING_TYPE, [msp_id]))
    if not raw:
        raise ContractError(f"{PING_TYPE} {msp_id!r} does not exist", status=404)
    value: dict[str, Any] = json.loads(raw)
    return value


SUBMIT = (Ping,)
EVALUATE = (GetPing,)
