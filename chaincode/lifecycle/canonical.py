"""Canonical JSON: the one byte form of every record, statement, report and event.

Rules: UTF-8, keys sorted, separators ``,`` and ``:`` without spaces, no NaN or infinity, and
no floating-point numbers at all (scores such as CVSS are carried as decimal strings), because
float formatting differs between languages and would break signatures.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import ValidationError

JSONValue = Any


def _reject_floats(value: JSONValue, path: str) -> None:
    if isinstance(value, float):
        raise ValidationError(path, "floating-point numbers are not allowed; use a string")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(path, "object keys must be strings")
            _reject_floats(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_floats(item, f"{path}[{index}]")


def canonical_json(value: JSONValue) -> bytes:
    """Serialize ``value`` to canonical JSON bytes.

    Raises:
        ValidationError: the value holds a float or a non-string key.
    """
    _reject_floats(value, "")
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def parse_object(data: bytes | str, what: str = "document") -> dict[str, JSONValue]:
    """Parse JSON bytes that must hold one object.

    Raises:
        ValidationError: not UTF-8, not JSON, holds a float, or not an object.
    """
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(what, f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValidationError(what, "must be a JSON object")
    _reject_floats(value, "")
    return value
