"""Canonical JSON: the one byte form of every record, statement, report and event.

Rules: UTF-8, keys sorted, separators ``,`` and ``:`` without spaces, no NaN or infinity, and
no floating-point numbers at all (scores such as CVSS are carried as decimal strings), because
float formatting differs between languages and would break signatures. Strings (values and
keys) may not hold lone surrogates (U+D800 to U+DFFF, which JSON's ``"\ud800"`` escapes can
produce): they have no UTF-8 form, so such a document is refused with a ValidationError naming
where the string is, like any other malformed field. Values nest at most :data:`MAX_DEPTH`
levels (objects and lists), so no stored document can exhaust a reader's stack; a deeper one
is refused with a ValidationError naming the path where the limit was crossed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from patchledger.chaincode.lifecycle.errors import ValidationError

JSONValue = Any


#: Deepest nesting of objects and lists in any canonical document.
MAX_DEPTH = 32

_SURROGATE = re.compile("[\ud800-\udfff]")
SURROGATE_PROBLEM = "holds a lone surrogate (U+D800 to U+DFFF), which has no UTF-8 form"


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate code point (not encodable as UTF-8)."""
    return _SURROGATE.search(text) is not None


def _reject_floats(value: JSONValue, path: str, depth: int = 0) -> None:
    if isinstance(value, dict | list | tuple) and depth >= MAX_DEPTH:
        raise ValidationError(path or "value", f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, float):
        raise ValidationError(path, "floating-point numbers are not allowed; use a string")
    if isinstance(value, str):
        if has_surrogate(value):
            raise ValidationError(path or "value", SURROGATE_PROBLEM)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(path, "object keys must be strings")
            where = f"{path}.{key}" if path else key
            if has_surrogate(key):
                raise ValidationError(where, f"the key {SURROGATE_PROBLEM}")
            _reject_floats(item, where, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_floats(item, f"{path}[{index}]", depth + 1)


def canonical_json(value: JSONValue) -> bytes:
    """Serialize ``value`` to canonical JSON bytes.

    Raises:
        ValidationError: the value holds a float, a non-string key or a string with a lone
            surrogate, or nests deeper than :data:`MAX_DEPTH` (the error names the path, e.g.
            ``detail`` or ``extra.note``).
    """
    _reject_floats(value, "")
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def parse_object(data: bytes | str, what: str = "document") -> dict[str, JSONValue]:
    """Parse JSON bytes that must hold one object.

    Raises:
        ValidationError: not UTF-8, not JSON, holds a float or a lone surrogate, nests
            deeper than :data:`MAX_DEPTH`, or not an object.
    """
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(what, f"not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ValidationError(what, f"nests deeper than {MAX_DEPTH} levels") from exc
    if not isinstance(value, dict):
        raise ValidationError(what, "must be a JSON object")
    _reject_floats(value, "")
    return value
