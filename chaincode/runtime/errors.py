"""Exceptions raised by the chaincode runtime.

The hierarchy separates three kinds of failure:

* :class:`ContractError`: a business refusal decided by a transaction function (an illegal
  transition, a missing record, a caller without the right role). Its message is returned to
  the client as-is, with a 4xx status.
* :class:`PeerError`: the peer answered a stub call (GET_STATE, PUT_STATE, ...) with an ERROR
  message. The peer's text is kept in the message.
* :class:`StreamClosedError`: the stream to the peer ended while a stub call was waiting.

Any other exception escaping a transaction function is an internal failure: the contract layer
logs its traceback and returns a generic 500 response.
"""

from __future__ import annotations

__all__ = [
    "ChaincodeRuntimeError",
    "ConfigError",
    "ContractError",
    "IdentityError",
    "PeerError",
    "ProtocolError",
    "StreamClosedError",
]

#: Status used for business refusals unless the raiser chooses another 4xx code.
STATUS_BAD_REQUEST = 400
#: Status used for internal failures (unexpected exceptions).
STATUS_INTERNAL_ERROR = 500


class ChaincodeRuntimeError(Exception):
    """Base class of every exception defined by the runtime."""


class ContractError(ChaincodeRuntimeError):
    """A business refusal: the transaction is rejected with ``message`` and ``status``.

    ``status`` must be in 400..499 so the peer treats the response as an error while the
    client can still tell it apart from an internal failure (500).

    Raises:
        ValueError: if ``status`` is outside 400..499.
    """

    def __init__(self, message: str, status: int = STATUS_BAD_REQUEST) -> None:
        if not 400 <= status <= 499:
            raise ValueError(f"ContractError status must be 400..499, got {status}")
        super().__init__(message)
        self.message = message
        self.status = status


class PeerError(ChaincodeRuntimeError):
    """The peer answered a stub request with an ERROR message (its text is the message)."""


class StreamClosedError(ChaincodeRuntimeError):
    """The stream to the peer closed while a request was outstanding."""


class ProtocolError(ChaincodeRuntimeError):
    """The peer sent a message that the shim protocol does not allow at this point."""


class IdentityError(ChaincodeRuntimeError):
    """The transaction creator's identity could not be decoded."""


class ConfigError(ChaincodeRuntimeError):
    """A server setting is missing or invalid (reported by ``main()`` with exit status 2)."""
