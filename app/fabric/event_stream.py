"""A closeable iterator over a server-streaming gRPC call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

import grpc

from patchledger.app.fabric._rpcstatus import rpc_error_code, rpc_error_details, rpc_error_message
from patchledger.app.fabric.errors import EventsError

T = TypeVar("T")


class EventStream(Generic[T]):
    """Iterates over events until closed; ``close()`` cancels the underlying call.

    Iteration raises :class:`EventsError` when the stream fails; after ``close()`` it simply
    stops. Use as a context manager to always cancel the call.
    """

    def __init__(
        self, call: Any, convert: Callable[[Iterator[Any]], Iterator[T]], description: str
    ) -> None:
        self._call = call
        self._closed = False
        self._description = description
        self._events = convert(self._responses())

    def _responses(self) -> Iterator[Any]:
        try:
            yield from self._call
        except grpc.RpcError as exc:
            if self._closed and rpc_error_code(exc) == grpc.StatusCode.CANCELLED:
                return
            raise EventsError(
                f"{self._description} failed: {rpc_error_message(exc)}",
                code=rpc_error_code(exc),
                details=rpc_error_details(exc),
            ) from exc

    def __iter__(self) -> EventStream[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        return next(self._events)

    def close(self) -> None:
        """Cancel the call; further iteration stops."""
        self._closed = True
        cancel = getattr(self._call, "cancel", None) or getattr(self._call, "close", None)
        if cancel is not None:
            cancel()

    def __enter__(self) -> EventStream[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
