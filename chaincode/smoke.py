"""A minimal contract for the network smoke transaction, until the real contract exists."""

from __future__ import annotations

from patchledger.chaincode.runtime import Context, Contract, ContractError

__all__ = ["VERSION", "contract"]

VERSION = "0.1.0"

contract = Contract("smoke", version=VERSION)


@contract.transaction(read_only=True)
async def Version(ctx: Context) -> dict[str, str]:
    """Return the contract version."""
    return {"version": VERSION}


@contract.transaction
async def Put(ctx: Context, key: str, value: str) -> dict[str, str]:
    """Store ``value`` under ``key``."""
    await ctx.stub.put_state(key, value)
    return {"key": key, "value": value}


@contract.transaction(read_only=True)
async def Get(ctx: Context, key: str) -> dict[str, str]:
    """Return the value under ``key``; refused (404) when the key does not exist."""
    value = await ctx.stub.get_state(key)
    if not value:
        raise ContractError(f"key {key!r} not found", status=404)
    return {"key": key, "value": value.decode("utf-8", errors="replace")}
