"""Field validators shared by the record types.

Each validator takes the field name and the value, returns the normalized value and raises
:class:`~chaincode.lifecycle.errors.ValidationError` naming the field when the value is wrong.
Identifiers must be usable as parts of a Fabric composite key: printable ASCII without spaces,
1 to 256 characters. ``/`` is refused too: it joins a key's parts in ``Key.__str__`` and in the
``GetRecord`` ids of multi-part records (``R-1/h1``), which are split at the first ``/``, so
an identifier holding one would name another record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from patchledger.chaincode.lifecycle.canonical import SURROGATE_PROBLEM, has_surrogate
from patchledger.chaincode.lifecycle.errors import ValidationError

_ID = re.compile(r"^[\x21-\x2e\x30-\x7e]{1,256}$")  # printable ASCII, no space, no "/"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DECIMAL = re.compile(r"^\d{1,2}(\.\d)?$")
MAX_TEXT = 4096
#: Every integer of a document fits a signed 64-bit integer (as Fabric's and Go's readers
#: expect; a 4,400-digit number is refused where it stands, naming its field).
MAX_INT = (1 << 63) - 1


def identifier(name: str, value: Any) -> str:
    """A record identifier (composite-key safe)."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ValidationError(
            name, "must be 1-256 printable ASCII characters without spaces or '/'"
        )
    return value


def text(name: str, value: Any, *, optional: bool = False, limit: int = MAX_TEXT) -> str:
    """A free-text string of at most ``limit`` characters; empty only if ``optional``."""
    if not isinstance(value, str):
        raise ValidationError(name, "must be a string")
    if not value and not optional:
        raise ValidationError(name, "must not be empty")
    if len(value) > limit:
        raise ValidationError(name, f"must be at most {limit} characters")
    if has_surrogate(value):
        raise ValidationError(name, SURROGATE_PROBLEM)
    return value


def integer(name: str, value: Any, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """An integer in ``[minimum, maximum]`` (booleans are refused; at most :data:`MAX_INT`)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, "must be an integer")
    if value < minimum or value > min(maximum, MAX_INT):
        raise ValidationError(name, f"must be between {minimum} and {min(maximum, MAX_INT)}")
    return value


def sha256_hex(name: str, value: Any) -> str:
    """A lowercase hexadecimal SHA-256 digest."""
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ValidationError(name, "must be 64 lowercase hexadecimal characters (SHA-256)")
    return value


def choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """One of the ``allowed`` strings."""
    options = sorted(allowed)
    if value not in options:
        raise ValidationError(name, f"must be one of {', '.join(options)}")
    return str(value)


def decimal_score(name: str, value: Any) -> str:
    """A score such as a CVSS base score, as a decimal string from 0.0 to 10.0."""
    if value == "":
        return ""
    if not isinstance(value, str) or not _DECIMAL.match(value) or float(value) > 10.0:
        raise ValidationError(name, "must be a decimal string from 0.0 to 10.0")
    return value


def id_tuple(
    name: str, value: Any, *, non_empty: bool = False, unique: bool = True
) -> tuple[str, ...]:
    """A list of identifiers, kept in order; duplicates refused when ``unique``.

    Only a list or tuple is accepted: a string (or any other iterable) is refused rather than
    split into characters.
    """
    if not isinstance(value, list | tuple):
        raise ValidationError(name, "must be a list of identifiers")
    items = tuple(identifier(f"{name}[{i}]", item) for i, item in enumerate(value))
    if non_empty and not items:
        raise ValidationError(name, "must not be empty")
    if unique and len(set(items)) != len(items):
        raise ValidationError(name, "must not repeat an entry")
    return items


def int_mapping(name: str, value: Any, keys: Iterable[str], *, minimum: int = 0) -> dict[str, int]:
    """An object mapping exactly the given keys to integers >= ``minimum``."""
    if not isinstance(value, Mapping):
        raise ValidationError(name, "must be an object")
    expected = set(keys)
    if set(value) != expected:
        raise ValidationError(name, f"must have exactly the keys {', '.join(sorted(expected))}")
    return {k: integer(f"{name}.{k}", value[k], minimum=minimum) for k in sorted(expected)}
