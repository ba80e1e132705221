"""The contract layer: transaction functions routed by name, JSON in and out.

Write a contract like this::

    contract = Contract("patchledger", version="1.0")

    @contract.transaction(read_only=True)
    async def Get(ctx: Context, key: str) -> dict[str, str]:
        return {"key": key, "value": (await ctx.stub.get_state(key)).decode()}

    @contract.transaction
    async def Put(ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value)

Arguments arrive as the proposal's string arguments, the first naming the function (an optional
``<contract name>:`` prefix is accepted). Each parameter is converted by its annotation: ``str``
receives the argument text as is, ``bytes`` the raw bytes, any other type the argument parsed as
JSON (and checked for the basic JSON types int, float, bool, dict, list). An integer too long
for Python to parse (more than ``sys.get_int_max_str_digits()`` digits, 4,300 by default) is
read as ``±10**4300``, a stand-in of the same sign that compares above any bound a contract
checks, so the contract refuses that value where it stands instead of the whole argument failing
to parse. Results are returned as JSON (UTF-8, sorted keys, no spaces); ``bytes`` are returned
raw and ``None`` as an empty payload.

:class:`~chaincode.runtime.errors.ContractError` is a business refusal: its status (4xx)
and message go back to the client. Any other exception is an internal failure: its traceback
is logged and the client gets status 500 and a generic message.

``org.hyperledger.fabric:GetMetadata`` returns a JSON description of the functions.

Every call gets a fresh context from :meth:`Contract.create_context` (as fabric-contract-api's
``createContext``): a contract that gives its functions more than the stub and the caller (its
configuration, a worker pool) subclasses :class:`Contract`, overrides ``create_context`` to
return a :class:`Context` subclass carrying them, and its functions take that type as ``ctx``.
Nothing is passed through globals or context variables.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import sys
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from patchledger.chaincode.runtime.errors import STATUS_INTERNAL_ERROR, ContractError
from patchledger.chaincode.runtime.handler import Response
from patchledger.chaincode.runtime.identity import ClientIdentity
from patchledger.chaincode.runtime.stub import ChaincodeStub

__all__ = ["METADATA_FUNCTION", "Context", "Contract", "TransactionInfo", "to_json_bytes"]

log = logging.getLogger("patchledger.chaincode.contract")

#: Name of the built-in metadata query (the name Fabric's official contract APIs use).
METADATA_FUNCTION = "org.hyperledger.fabric:GetMetadata"

TxFunc = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=TxFunc)

_JSON_CHECK: dict[Any, tuple[type, ...]] = {
    int: (int,),
    float: (int, float),
    bool: (bool,),
    dict: (dict,),
    list: (list,),
}
_SCHEMA_TYPES: dict[Any, str] = {
    str: "string", bytes: "string", int: "integer", float: "number", bool: "boolean",
    dict: "object", list: "array",
}


class Context:
    """What a transaction function receives first: the stub and the caller's identity."""

    def __init__(self, stub: ChaincodeStub) -> None:
        self.stub = stub

    @property
    def client_identity(self) -> ClientIdentity:
        """The transaction creator (see :class:`ClientIdentity`).

        Raises:
            IdentityError: if the proposal carried no decodable creator.
        """
        return self.stub.client_identity


@dataclass(frozen=True)
class Parameter:
    """A transaction function parameter: its name and how its argument is converted."""

    name: str
    annotation: Any

    @property
    def schema_type(self) -> str:
        """A JSON-schema type name for the metadata."""
        return _SCHEMA_TYPES.get(typing.get_origin(self.annotation) or self.annotation, "any")

    def convert(self, raw: bytes) -> Any:
        """Turn the raw argument into the value the function expects.

        Raises:
            ContractError: the argument is not valid for the parameter's type.
        """
        if self.annotation is bytes:
            return raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContractError(f"argument {self.name!r} is not UTF-8") from exc
        if self.annotation is str:
            return text
        try:
            value = json.loads(text, parse_int=_parse_int)
        except ValueError as exc:
            raise ContractError(f"argument {self.name!r} is not valid JSON") from exc
        except RecursionError as exc:  # nested deeper than the parser's stack allows
            raise ContractError(f"argument {self.name!r} nests too deeply") from exc
        allowed = _JSON_CHECK.get(typing.get_origin(self.annotation) or self.annotation)
        wrong_bool = self.annotation in (int, float) and isinstance(value, bool)
        if allowed is not None and (not isinstance(value, allowed) or wrong_bool):
            raise ContractError(f"argument {self.name!r} must be a JSON {self.schema_type}")
        return value


@dataclass(frozen=True)
class TransactionInfo:
    """A registered transaction function."""

    name: str
    func: TxFunc
    read_only: bool
    parameters: tuple[Parameter, ...]
    doc: str


def to_json_bytes(value: Any) -> bytes:
    """Serialize a function result: None → b"", bytes as is, else canonical JSON.

    Dataclass instances are converted with :func:`dataclasses.asdict`.

    Raises:
        TypeError: if the value is not JSON-serializable.
    """
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # A lone surrogate (from a JSON "\ud800" argument echoed back) has no UTF-8 form; write
    # it as the JSON escape it came from instead of failing the whole response.
    return text.encode("utf-8", errors="backslashreplace")


_HUGE = 10**4300


def _parse_int(text: str) -> int:
    """A JSON integer; past Python's digit limit, the stand-in ``±10**4300`` (module
    docstring)."""
    limit = sys.get_int_max_str_digits()
    if limit and len(text.lstrip("-")) > limit:
        return -_HUGE if text.startswith("-") else _HUGE
    return int(text)


def _parameters(func: TxFunc) -> tuple[Parameter, ...]:
    """Read the parameters after ``ctx`` with their resolved annotations.

    Raises:
        TypeError: the function is not a coroutine function or takes no ``ctx``.
    """
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"transaction function {func.__name__} must be 'async def'")
    params = list(inspect.signature(func).parameters.values())
    if not params:
        raise TypeError(f"transaction function {func.__name__} must take ctx first")
    hints = typing.get_type_hints(func)
    out = []
    for p in params[1:]:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"{func.__name__}: only positional parameters are supported")
        out.append(Parameter(p.name, hints.get(p.name, str)))
    return tuple(out)


class Contract:
    """A registry of transaction functions, served as a chaincode (it has ``invoke``)."""

    def __init__(self, name: str = "", *, version: str = "", title: str = "") -> None:
        self.name = name
        self.version = version
        self.title = title or name
        self._functions: dict[str, TransactionInfo] = {}

    @property
    def functions(self) -> dict[str, TransactionInfo]:
        """The registered functions by name (a copy)."""
        return dict(self._functions)

    @overload
    def transaction(self, func: F, /) -> F: ...

    @overload
    def transaction(
        self, /, *, name: str | None = None, read_only: bool = False
    ) -> Callable[[F], F]: ...

    def transaction(
        self, func: Any = None, /, *, name: str | None = None, read_only: bool = False
    ) -> Any:
        """Register an ``async def fn(ctx, ...)`` as a transaction function.

        Usable bare (``@contract.transaction``) or with options
        (``@contract.transaction(read_only=True, name="Other")``). A read-only function may
        not write state (its writes raise RuntimeError, an internal failure).

        Raises:
            TypeError: not a coroutine function, no ``ctx`` parameter, or keyword-only or
                variadic parameters.
            ValueError: the name is already registered or reserved.
        """

        def register(f: TxFunc) -> TxFunc:
            fname = name or f.__name__
            if fname in self._functions or fname == METADATA_FUNCTION:
                raise ValueError(f"transaction function {fname!r} is already registered")
            doc = inspect.getdoc(f) or ""
            self._functions[fname] = TransactionInfo(
                fname, f, read_only, _parameters(f), doc.split("\n\n")[0]
            )
            return f

        return register(func) if func is not None else register

    def create_context(self, stub: ChaincodeStub) -> Context:
        """The context of one call (override to give functions more than the stub)."""
        return Context(stub)

    def metadata(self) -> dict[str, Any]:
        """A JSON-able description of the contract and its functions."""
        transactions = [
            {
                "name": info.name,
                "tag": ["EVALUATE"] if info.read_only else ["SUBMIT"],
                "description": info.doc,
                "parameters": [
                    {"name": p.name, "schema": {"type": p.schema_type}} for p in info.parameters
                ],
            }
            for info in sorted(self._functions.values(), key=lambda i: i.name)
        ]
        return {
            "info": {"title": self.title, "version": self.version},
            "contracts": {self.name: {"name": self.name, "transactions": transactions}},
        }

    def _route(self, function: str) -> str:
        """Strip a ``<contract name>:`` prefix naming this contract."""
        prefix = f"{self.name}:"
        if self.name and function.startswith(prefix):
            return function[len(prefix):]
        return function

    async def invoke(self, stub: ChaincodeStub) -> Response:
        """Route the transaction to its function; never raises (see the module docstring)."""
        try:
            return await self._dispatch(stub)
        except ContractError as exc:
            return Response(exc.status, exc.message)
        except Exception:
            log.exception("internal failure in %r (tx %.8s)", _safe_function(stub), stub.tx_id)
            return Response(STATUS_INTERNAL_ERROR, f"internal error (tx {stub.tx_id[:8]})")

    async def _dispatch(self, stub: ChaincodeStub) -> Response:
        """Find, call and serialize; raises what the function raises.

        Raises:
            ContractError: unknown function, wrong argument count or invalid argument.
        """
        if not stub.args:
            raise ContractError("no function name given")
        function = self._route(_safe_function(stub))
        if function == METADATA_FUNCTION:
            return Response(200, payload=to_json_bytes(self.metadata()))
        info = self._functions.get(function)
        if info is None:
            raise ContractError(f"unknown function {function!r}", status=404)
        raw_args = stub.args[1:]
        if len(raw_args) != len(info.parameters):
            raise ContractError(
                f"{function} takes {len(info.parameters)} argument(s), got {len(raw_args)}"
            )
        args = [p.convert(raw) for p, raw in zip(info.parameters, raw_args, strict=True)]
        stub.read_only = info.read_only
        result = await info.func(self.create_context(stub), *args)
        return Response(200, payload=to_json_bytes(result))


def _safe_function(stub: ChaincodeStub) -> str:
    """The function name, with undecodable bytes replaced (for routing and logs)."""
    return stub.args[0].decode("utf-8", errors="replace") if stub.args else ""
