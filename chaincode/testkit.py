"""A contract used only by the runtime's integration tests (deployed as its own chaincode).

Each function exercises one runtime feature against a real peer: events, key-level
endorsement policies, business and internal errors, history, range queries with pagination,
large values, the caller's identity and transient data.
"""

from __future__ import annotations

from typing import Any

from patchledger.chaincode.runtime import (
    Context,
    Contract,
    ContractError,
    create_composite_key,
    split_composite_key,
)

__all__ = ["contract"]

contract = Contract("testkit", version="1.0")


@contract.transaction
async def SetEvent(ctx: Context, name: str, payload: str) -> dict[str, str]:
    """Set a chaincode event ``name`` with ``payload``; it must reach the block."""
    ctx.stub.set_event(name, payload.encode("utf-8"))
    return {"event": name}


@contract.transaction
async def Write(ctx: Context, key: str, value: str) -> dict[str, str]:
    """Write ``value`` under ``key``."""
    await ctx.stub.put_state(key, value)
    return {"key": key, "tx_id": ctx.stub.tx_id}


@contract.transaction(read_only=True)
async def Read(ctx: Context, key: str) -> str:
    """Return the value of ``key`` as text (empty when absent)."""
    return (await ctx.stub.get_state(key)).decode("utf-8")


@contract.transaction
async def Delete(ctx: Context, key: str) -> None:
    """Delete ``key``."""
    await ctx.stub.delete_state(key)


@contract.transaction
async def SetKeyPolicy(ctx: Context, key: str, orgs: list[str], value: str) -> list[str]:
    """Write ``value`` under ``key`` and require a peer of each of ``orgs`` to endorse it."""
    if not orgs or not all(isinstance(o, str) and o for o in orgs):
        raise ContractError("orgs must be a non-empty list of MSP ids")
    await ctx.stub.put_state(key, value)
    await ctx.stub.set_key_endorsement_orgs(key, orgs)
    return sorted(orgs)


@contract.transaction(read_only=True)
async def GetKeyPolicy(ctx: Context, key: str) -> list[str]:
    """The MSP ids the key-level endorsement policy of ``key`` requires (empty if none)."""
    return await ctx.stub.get_key_endorsement_orgs(key)


@contract.transaction
async def Refuse(ctx: Context, message: str) -> None:
    """Always refuse with ``message`` (a business error, status 400)."""
    raise ContractError(message)


@contract.transaction
async def Crash(ctx: Context) -> None:
    """Always fail with an unexpected exception (an internal error, status 500)."""
    raise RuntimeError("testkit: deliberate internal failure")


@contract.transaction(read_only=True)
async def History(ctx: Context, key: str) -> list[dict[str, Any]]:
    """The history of ``key``, newest first."""
    entries = []
    async for mod in await ctx.stub.get_history_for_key(key):
        entries.append({
            "tx_id": mod.tx_id,
            "value": mod.value.decode("utf-8", errors="replace"),
            "timestamp": mod.timestamp.isoformat() if mod.timestamp else None,
            "is_delete": mod.is_delete,
        })
    return entries


@contract.transaction
async def PutMany(ctx: Context, prefix: str, count: int) -> int:
    """Write ``count`` keys ``<prefix>00000``... with their index as value."""
    if not 0 < count <= 10_000:
        raise ContractError("count must be in 1..10000")
    for i in range(count):
        await ctx.stub.put_state(f"{prefix}{i:05d}", str(i))
    return count


@contract.transaction(read_only=True)
async def RangePage(
    ctx: Context, start: str, end: str, page_size: int, bookmark: str
) -> dict[str, Any]:
    """One page of ``[start, end)``: its keys, the next bookmark and the fetched count."""
    page = await ctx.stub.get_state_by_range_with_pagination(start, end, page_size, bookmark)
    return {
        "keys": [kv.key for kv in page.items],
        "bookmark": page.bookmark,
        "count": page.fetched_count,
    }


@contract.transaction(read_only=True)
async def RangeAll(ctx: Context, start: str, end: str) -> list[str]:
    """Every key in ``[start, end)`` (unpaginated iteration)."""
    return [kv.key async for kv in await ctx.stub.get_state_by_range(start, end)]


@contract.transaction
async def PutComposite(ctx: Context, object_type: str, attributes: list[str], value: str) -> str:
    """Write ``value`` under a composite key and return the key's parts joined by '/'."""
    composite = create_composite_key(object_type, attributes)
    await ctx.stub.put_state(composite, value)
    return "/".join([object_type, *attributes])


@contract.transaction(read_only=True)
async def QueryComposite(ctx: Context, object_type: str, attributes: list[str]) -> list[list[str]]:
    """The attributes of the composite keys matching the partial key."""
    it = await ctx.stub.get_state_by_partial_composite_key(object_type, attributes)
    return [split_composite_key(kv.key)[1] async for kv in it]


@contract.transaction
async def PutLarge(ctx: Context, key: str, value: str) -> int:
    """Store a (large) value; return its length in bytes."""
    data = value.encode("utf-8")
    await ctx.stub.put_state(key, data)
    return len(data)


@contract.transaction(read_only=True)
async def GetLarge(ctx: Context, key: str) -> str:
    """Return a value stored by PutLarge."""
    return (await ctx.stub.get_state(key)).decode("utf-8")


@contract.transaction(read_only=True)
async def WhoAmI(ctx: Context) -> dict[str, Any]:
    """The caller's MSP id, Fabric CA attributes and identity id."""
    ident = ctx.client_identity
    return {"msp_id": ident.msp_id, "attributes": ident.attributes, "id": ident.id}


@contract.transaction(read_only=True)
async def TxInfo(ctx: Context) -> dict[str, Any]:
    """The transaction id, channel, timestamp and transient keys the stub sees."""
    return {
        "tx_id": ctx.stub.tx_id,
        "channel_id": ctx.stub.channel_id,
        "timestamp": ctx.stub.get_tx_timestamp().isoformat(),
        "transient_keys": sorted(ctx.stub.transient),
    }
