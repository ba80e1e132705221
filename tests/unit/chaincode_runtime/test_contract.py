"""The contract layer: routing, argument conversion, results, metadata, read-only, errors."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest

from patchledger.chaincode import smoke
from patchledger.chaincode.runtime import (
    METADATA_FUNCTION,
    Context,
    Contract,
    ContractError,
    PeerSession,
)
from patchledger.chaincode.runtime.contract import to_json_bytes
from tests.support.chaincode_runtime import FakePeer, parse_response


def call(contract: Any, *calls: tuple[str | bytes, ...], peer: FakePeer | None = None) -> list[Any]:
    """Run each call as a transaction; return the protos.Response of each."""
    peer = peer or FakePeer()

    async def scenario() -> list[Any]:
        session = PeerSession(peer, "cc:1", contract, request_timeout=5)
        task = asyncio.create_task(session.run())
        try:
            return [parse_response(await peer.transact(*args)) for args in calls]
        finally:
            peer.close()
            await task

    return asyncio.run(scenario())


@dataclass
class Record:
    id: str
    count: int


def _typed_contract() -> Contract:
    c = Contract("typed", version="2.0")

    @c.transaction
    async def Echo(ctx: Context, text: str, n: int, flag: bool, doc: dict[str, Any]) -> Any:
        """Echo the arguments back.

        More details that the metadata leaves out.
        """
        return {"text": text, "n": n, "flag": flag, "doc": doc}

    @c.transaction(read_only=True, name="Raw")
    async def raw_bytes(ctx: Context, data: bytes) -> bytes:
        return data[::-1]

    @c.transaction(read_only=True)
    async def Rec(ctx: Context) -> Record:
        return Record("r1", 3)

    @c.transaction(read_only=True)
    async def SneakyWrite(ctx: Context) -> None:
        await ctx.stub.put_state("k", b"v")

    return c


def test_json_arguments_are_converted_by_annotation() -> None:
    (resp,) = call(_typed_contract(), ("Echo", "plain text", "42", "true", '{"a":[1,2]}'))
    assert resp.status == 200
    assert json.loads(resp.payload) == {
        "text": "plain text", "n": 42, "flag": True, "doc": {"a": [1, 2]},
    }
    assert resp.payload == b'{"doc":{"a":[1,2]},"flag":true,"n":42,"text":"plain text"}'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Echo", "t", "4x", "true", "{}"), "argument 'n' is not valid JSON"),
        (("Echo", "t", '"4"', "true", "{}"), "argument 'n' must be a JSON integer"),
        (("Echo", "t", "true", "true", "{}"), "argument 'n' must be a JSON integer"),
        (("Echo", "t", "4", "true", "[]"), "argument 'doc' must be a JSON object"),
        (("Echo", "t"), "Echo takes 4 argument(s), got 1"),
        ((b"Echo", b"\xff", b"1", b"true", b"{}"), "argument 'text' is not UTF-8"),
    ],
)
def test_bad_arguments_are_business_refusals(args: tuple[str, ...], message: str) -> None:
    (resp,) = call(_typed_contract(), args)
    assert resp.status == 400
    assert resp.message == message


def test_unknown_function_and_prefix_routing() -> None:
    unknown, prefixed, empty = call(
        _typed_contract(), ("Nope",), ("typed:Raw", b"abc"), ()
    )
    assert unknown.status == 404
    assert unknown.message == "unknown function 'Nope'"
    assert prefixed.status == 200
    assert prefixed.payload == b"cba"
    assert empty.status == 400


def test_dataclass_result_and_read_only_write_is_internal_error() -> None:
    rec, sneaky = call(_typed_contract(), ("Rec",), ("SneakyWrite",))
    assert json.loads(rec.payload) == {"id": "r1", "count": 3}
    assert sneaky.status == 500


def test_metadata_lists_functions() -> None:
    (resp,) = call(_typed_contract(), (METADATA_FUNCTION,))
    meta = json.loads(resp.payload)
    assert meta["info"] == {"title": "typed", "version": "2.0"}
    txs = {t["name"]: t for t in meta["contracts"]["typed"]["transactions"]}
    assert sorted(txs) == ["Echo", "Raw", "Rec", "SneakyWrite"]
    assert txs["Echo"]["tag"] == ["SUBMIT"]
    assert txs["Rec"]["tag"] == ["EVALUATE"]
    assert txs["Echo"]["description"] == "Echo the arguments back."
    assert [(p["name"], p["schema"]["type"]) for p in txs["Echo"]["parameters"]] == [
        ("text", "string"), ("n", "integer"), ("flag", "boolean"), ("doc", "object"),
    ]


def test_registration_errors() -> None:
    c = Contract("x")

    @c.transaction
    async def A(ctx: Context) -> None:
        return None

    with pytest.raises(ValueError):
        c.transaction(name="A")(A)
    with pytest.raises(ValueError):
        c.transaction(name=METADATA_FUNCTION)(A)

    def sync(ctx: Context) -> None:
        return None

    with pytest.raises(TypeError):
        c.transaction(sync)  # type: ignore[type-var]

    async def kwonly(ctx: Context, *, k: str) -> None:
        return None

    with pytest.raises(TypeError):
        c.transaction(kwonly)

    async def no_ctx() -> None:
        return None

    with pytest.raises(TypeError):
        c.transaction(no_ctx)
    assert list(c.functions) == ["A"]


def test_contract_error_status_must_be_4xx() -> None:
    assert ContractError("x", status=409).status == 409
    with pytest.raises(ValueError):
        ContractError("x", status=500)


def test_to_json_bytes() -> None:
    assert to_json_bytes(None) == b""
    assert to_json_bytes(b"\x00") == b"\x00"
    assert to_json_bytes("é") == '"é"'.encode()
    assert to_json_bytes({"b": 1, "a": [True]}) == b'{"a":[true],"b":1}'
    # A lone surrogate is written as its JSON escape (the response stays valid UTF-8 JSON).
    assert to_json_bytes({"e": "x\ud800"}) == b'{"e":"x\\ud800"}'
    assert json.loads(to_json_bytes({"e": "x\ud800"})) == {"e": "x\ud800"}


def test_smoke_contract() -> None:
    peer = FakePeer()
    version, put, got, missing = call(
        smoke.contract, ("Version",), ("Put", "k", "v1"), ("Get", "k"), ("Get", "nope"),
        peer=peer,
    )
    assert json.loads(version.payload) == {"version": smoke.VERSION}
    assert put.status == 200
    assert json.loads(got.payload) == {"key": "k", "value": "v1"}
    assert missing.status == 404
    assert peer.state == {"k": b"v1"}
    assert smoke.contract.functions["Version"].read_only
    assert smoke.contract.functions["Get"].read_only
    assert not smoke.contract.functions["Put"].read_only


class _TenantContext(Context):
    def __init__(self, stub: Any, tenant: str) -> None:
        super().__init__(stub)
        self.tenant = tenant


class _TenantContract(Contract):
    """A contract whose functions get its own value through create_context, no globals."""

    def __init__(self, tenant: str) -> None:
        super().__init__("tenant")
        self.tenant = tenant
        self.transaction(read_only=True)(self.Who)

    @staticmethod
    async def Who(ctx: _TenantContext) -> str:
        return ctx.tenant

    def create_context(self, stub: Any) -> _TenantContext:
        return _TenantContext(stub, self.tenant)


def test_create_context_gives_each_contract_its_own_context() -> None:
    (a,) = call(_TenantContract("a"), ("Who",))
    (b,) = call(_TenantContract("b"), ("Who",))
    assert (json.loads(a.payload), json.loads(b.payload)) == ("a", "b")
