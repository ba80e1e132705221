"""Checking the JSON object arguments of transaction functions.

Transaction functions that take several values receive them as one JSON object; these helpers
refuse missing and unknown members with the core's
:class:`~chaincode.lifecycle.errors.ValidationError`, which the contract reports like any other
refusal (naming the argument and the member).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchledger.chaincode.lifecycle import ValidationError

__all__ = ["members"]


def members(
    name: str,
    value: Mapping[str, Any],
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The members of object argument ``name``: every ``required`` one and any ``optional``.

    Raises:
        ValidationError: ``value`` is not an object, misses a required member or has an
            unknown one.
    """
    if not isinstance(value, Mapping):
        raise ValidationError(name, "must be a JSON object")
    missing = [m for m in required if m not in value]
    if missing:
        raise ValidationError(f"{name}.{missing[0]}", "is required")
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        raise ValidationError(f"{name}.{unknown[0]}", "is not a known member")
    return dict(value)
