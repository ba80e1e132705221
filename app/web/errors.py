"""The app's request-level refusal: an HTTP status, a message and the input field at fault."""

from __future__ import annotations


class RequestError(Exception):
    """A request refused with a JSON error naming what was wrong.

    Attributes:
        status: the HTTP status to answer with (400, 401, 403, 404, 409, 413, 416, 423).
        message: what was wrong, for a person.
        field: the input field at fault, when one is.
    """

    def __init__(self, message: str, *, status: int = 400, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field
