"""Decoding JSON text from outside, with every way it can fail as one error type.

``json.loads`` fails in more ways than :class:`json.JSONDecodeError`: nesting deeper than the
decoder recurses raises :class:`RecursionError`, an integer of more digits than Python converts
(``sys.get_int_max_str_digits()``, 4,300 by default) a plain :class:`ValueError`. A hostile or
corrupt document must be a refusal naming the file, never a crash, so the feed parsers and the
inventory reader decode through :func:`load_json`.
"""

from __future__ import annotations

import json
import sys
from typing import Any


class MalformedJSON(ValueError):
    """The text is not a JSON document the library can decode.

    Attributes:
        reason: what is wrong, in a few words.
        line, column: where, when the decoder says (1-based), else ``None``.
    """

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        super().__init__(f"{reason}{self.where}")

    @property
    def where(self) -> str:
        """`` at line L column C`` when the position is known, else ``""``."""
        return "" if self.line is None else f" at line {self.line} column {self.column}"


def load_json(text: str | bytes) -> Any:
    """Decode ``text`` as JSON.

    Raises:
        MalformedJSON: malformed or truncated JSON (with its position), nesting too deep to
            decode, or an integer of more digits than Python converts.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedJSON(exc.msg, exc.lineno, exc.colno) from exc
    except RecursionError as exc:
        raise MalformedJSON("nested too deeply to decode") from exc
    except ValueError as exc:  # int() refused a number's digits (the only other ValueError)
        limit = sys.get_int_max_str_digits()
        raise MalformedJSON(f"a number of more than {limit} digits ({exc})") from exc
