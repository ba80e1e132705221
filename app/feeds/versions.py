"""Ecosystem-aware version comparison and OSV-style range evaluation.

Versions are compared with ``univers`` using the scheme of the package's purl type (see
:data:`app.feeds.ecosystems.VERSION_SCHEMES`). Parsing is memoized: fleets share versions, so
a match over a thousand hosts parses each distinct version once.
"""

from __future__ import annotations

from functools import lru_cache

from univers.versions import InvalidVersion, Version

from patchledger.app.feeds.ecosystems import VERSION_SCHEMES
from patchledger.app.feeds.model import RangeEvent

#: purl types whose versions follow SemVer 2.0 (Go modules too): precedence ignores build
#: metadata (``1.0.0+build.1`` ranks with ``1.0.0``, SemVer 2.0 section 10)
SEMVER_TYPES = frozenset({"npm", "cargo", "golang"})


class UnsupportedVersion(ValueError):
    """The purl type has no version scheme, a version does not parse in it, or two versions
    cannot be ordered in it."""


@lru_cache(maxsize=262144)
def parse_version(ptype: str, text: str) -> Version:
    """Parse ``text`` in the version scheme of purl type ``ptype``.

    Raises:
        UnsupportedVersion: unknown type, or ``text`` is not a valid version of that scheme.
    """
    scheme = VERSION_SCHEMES.get(ptype)
    if scheme is None:
        raise UnsupportedVersion(f"no version scheme for package type {ptype!r}")
    if ptype in SEMVER_TYPES:
        text = text.split("+", 1)[0]
    try:
        return scheme(text)
    except (InvalidVersion, ValueError, TypeError) as exc:
        raise UnsupportedVersion(f"{text!r} is not a valid {ptype} version: {exc}") from exc


@lru_cache(maxsize=1048576)
def compare(ptype: str, left: str, right: str) -> int:
    """-1, 0 or 1 as ``left`` is lower than, equal to or higher than ``right`` in precedence.

    Raises:
        UnsupportedVersion: see :func:`parse_version`; also when the scheme orders the two
            neither way (rather than answering "higher" both ways round).
    """
    a, b = parse_version(ptype, left), parse_version(ptype, right)
    if a == b:
        return 0
    if a < b:
        return -1
    if b < a:
        return 1
    raise UnsupportedVersion(f"{left!r} and {right!r} cannot be ordered as {ptype} versions")


def in_range(ptype: str, version: str, events: tuple[RangeEvent, ...]) -> bool:
    """Whether ``version`` falls in an OSV range given by its events, in source order.

    ``introduced`` opens an interval (``0`` = from the beginning); ``fixed`` and ``limit``
    close it exclusively, ``last_affected`` inclusively. An interval left open affects every
    later version.

    Raises:
        UnsupportedVersion: see :func:`parse_version`.
    """
    start: str | None = None
    is_open = False
    for event in events:
        if event.kind == "introduced":
            start, is_open = event.version, True
            continue
        if not is_open:
            continue
        is_open = False
        if not _at_or_after(ptype, version, start):
            continue
        cmp = compare(ptype, version, event.version)
        if cmp < 0 or (cmp == 0 and event.kind == "last_affected"):
            return True
    return is_open and _at_or_after(ptype, version, start)


def _at_or_after(ptype: str, version: str, start: str | None) -> bool:
    if start is None or start == "0":
        return True
    return compare(ptype, version, start) >= 0
