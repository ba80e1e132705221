"""Typed access to fields of decoded JSON records, raising :class:`RecordError` on mismatch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from patchledger.app.feeds.model import Advisory, ParseError, ParseResult


class RecordError(ValueError):
    """A record does not have the shape its format requires; caught per record by connectors."""


def obj(value: Any, what: str) -> dict[str, Any]:
    """Return ``value`` if it is a JSON object, else raise :class:`RecordError`."""
    if not isinstance(value, dict):
        raise RecordError(f"{what} is {type(value).__name__}, expected an object")
    return value


def arr(value: Any, what: str) -> list[Any]:
    """Return ``value`` if it is a JSON array (``None`` counts as empty), else raise."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{what} is {type(value).__name__}, expected an array")
    return value


def req_str(record: dict[str, Any], key: str) -> str:
    """Return the non-empty string at ``key``; raise :class:`RecordError` if missing or not one."""
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"field {key!r} missing or not a non-empty string")
    return value.strip()


def opt_str(record: dict[str, Any], key: str) -> str | None:
    """Return the string at ``key`` or ``None``; raise :class:`RecordError` if of another type."""
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} is {type(value).__name__}, expected a string")
    return value


def opt_number(record: dict[str, Any], key: str) -> float | None:
    """Return the number at ``key`` or ``None``; raise :class:`RecordError` otherwise."""
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"field {key!r} is {type(value).__name__}, expected a number")
    return float(value)


def parse_datetime(value: str | None, what: str) -> datetime | None:
    """Parse an ISO 8601 timestamp (NVD omits seconds and zone) as UTC; ``None`` passes."""
    if value is None:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RecordError(f"{what} {value!r} is not an ISO 8601 time") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_date(value: str | None, what: str) -> date:
    """Parse a ``YYYY-MM-DD`` date; raise :class:`RecordError` when missing or malformed."""
    if value is None:
        raise RecordError(f"{what} missing")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise RecordError(f"{what} {value!r} is not a YYYY-MM-DD date") from exc


def checked(advisory: Advisory) -> Advisory:
    """``advisory`` when every package it names forms a package URL (the matcher and the export
    build them): a name that cannot be one (empty, a lone surrogate) fails the record here.

    Raises:
        RecordError: naming the package.
    """
    for package in advisory.affected:
        try:
            package.purl  # noqa: B018 (built to check it can be)
        except (ValueError, TypeError, UnicodeError) as exc:
            raise RecordError(f"package {package.name!r}: not a valid package URL: {exc}") from exc
    return advisory


def collect(
    result: ParseResult,
    items: Iterable[tuple[str, Any]],
    convert: Callable[[Any], list[Advisory]],
) -> ParseResult:
    """Convert each ``(label, raw)`` item; a failing record becomes a :class:`ParseError`.

    ``label`` names the record in errors (its id when it has one, else its position).
    """
    for label, raw in items:
        result.records += 1
        try:
            result.advisories.extend([checked(advisory) for advisory in convert(raw)])
        except RecordError as exc:
            result.errors.append(ParseError(result.origin, label, str(exc)))
    return result


def label_of(raw: Any, index: int, *path: str) -> str:
    """A record's label for errors: the string found at ``path`` with its index, or the index."""
    value: Any = raw
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return f"#{index} ({value})" if isinstance(value, str) else f"#{index}"
