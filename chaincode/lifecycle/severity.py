"""Severity classes, ordered: the unit of approval quorums and remediation deadlines."""

from __future__ import annotations

SEVERITIES = ("low", "medium", "high", "critical")


def rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (``low`` is 0)."""
    return SEVERITIES.index(severity)


def highest(severities: list[str] | tuple[str, ...], default: str = "low") -> str:
    """The most severe of ``severities`` (``default`` when empty)."""
    return max(severities, key=rank, default=default)
