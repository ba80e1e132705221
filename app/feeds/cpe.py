"""CPE 2.3 names and NVD configuration matching.

Only CPE names that an inventory states explicitly (an SBOM component's ``cpe``) are matched;
no CPE is ever derived from a free-text product name. NVD semantics: in a criterion, ``*``
matches anything and ``-`` only "not applicable"; version bounds apply when the criterion's
version is ``*``. Versions without an ecosystem are compared by :func:`version_key`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

from patchledger.app.feeds.model import CpeMatch, CpeNode

_FIELDS = (
    11  # part vendor product version update edition language sw_edition target_sw target_hw other
)


@dataclass(frozen=True, slots=True)
class Cpe:
    """A parsed CPE 2.3 formatted string (values unescaped, lower-cased)."""

    fields: tuple[str, ...]

    @property
    def vendor_product(self) -> tuple[str, str, str]:
        """``(part, vendor, product)``: the index key for matching."""
        return self.fields[0], self.fields[1], self.fields[2]

    @property
    def version(self) -> str:
        """The version field (``*`` any, ``-`` not applicable)."""
        return self.fields[3]


@lru_cache(maxsize=65536)
def parse_cpe(text: str) -> Cpe:
    """Parse ``cpe:2.3:part:vendor:product:version:...``.

    Raises:
        ValueError: not a CPE 2.3 formatted string with 11 components.
    """
    if not text.startswith("cpe:2.3:"):
        raise ValueError(f"{text!r} is not a CPE 2.3 formatted string")
    values = [_unescape(v).lower() for v in re.split(r"(?<!\\):", text[len("cpe:2.3:") :])]
    if len(values) != _FIELDS:
        raise ValueError(f"{text!r} has {len(values)} components, expected {_FIELDS}")
    return Cpe(tuple(values))


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key for vendor versions: numeric runs compare as numbers, letters as text.

    ``9.8`` < ``9.10``; ``15.2(1)t`` splits into 15, 2, 1, t. Trailing zero numbers are
    dropped, so ``2``, ``2.0`` and ``2.0.0`` are the same version (NVD bounds and inventories
    disagree on how many components they write). A pre-release marker after a number
    (``2.0rc1``) sorts *after* ``2.0``: vendor versions have no universal pre-release rule, so
    none is invented.
    """
    key = [
        (0, int(tok)) if tok.isdigit() else (1, tok)
        for tok in re.findall(r"\d+|[a-z]+", version.lower())
    ]
    while key and key[-1] == (0, 0):
        key.pop()
    return tuple(key)


def criterion_matches(match: CpeMatch, target: Cpe) -> bool:
    """Whether an inventory CPE satisfies one NVD criterion, bounds included."""
    crit = parse_cpe(match.criteria)
    for index in range(_FIELDS):
        if index == 3:
            continue
        if not _field_matches(crit.fields[index], target.fields[index]):
            return False
    if crit.version not in ("*", ""):
        return _field_matches(crit.version, target.version)
    return _within_bounds(match, target.version)


def _field_matches(criterion: str, value: str) -> bool:
    if criterion in ("*", ""):
        return True
    if criterion == "-":
        return value in ("-", "")
    return criterion == value


def _within_bounds(match: CpeMatch, version: str) -> bool:
    bounded = any(
        (
            match.version_start_including,
            match.version_start_excluding,
            match.version_end_including,
            match.version_end_excluding,
        )
    )
    if not bounded:
        return True
    if version in ("*", "-", ""):
        return False  # unknown version: cannot place it within bounds, so no claim is made
    key = version_key(version)
    start_in, start_ex = match.version_start_including, match.version_start_excluding
    end_in, end_ex = match.version_end_including, match.version_end_excluding
    return (
        (start_in is None or key >= version_key(start_in))
        and (start_ex is None or key > version_key(start_ex))
        and (end_in is None or key <= version_key(end_in))
        and (end_ex is None or key < version_key(end_ex))
    )


def node_matches(
    node: CpeNode, inventory: Collection[Cpe]
) -> tuple[bool, tuple[tuple[CpeMatch, Cpe], ...]]:
    """Evaluate an NVD configuration node against an inventory's CPEs.

    Returns whether the node holds and the ``(criterion, inventory CPE)`` pairs of *vulnerable*
    criteria that matched (the packages a finding is about).
    """
    results = [_match_any(m, inventory) for m in node.matches]
    child_results = [node_matches(c, inventory) for c in node.children]
    truths = [hit is not None for hit in results] + [ok for ok, _ in child_results]
    holds = (all(truths) if node.operator == "AND" else any(truths)) if truths else False
    if node.negate:
        holds = not holds
    vulnerable = tuple(
        (m, hit)
        for m, hit in zip(node.matches, results, strict=True)
        if hit is not None and m.vulnerable
    ) + tuple(pair for ok, pairs in child_results if ok for pair in pairs)
    return holds, vulnerable if holds else ()


def _match_any(match: CpeMatch, inventory: Collection[Cpe]) -> Cpe | None:
    return next((cpe for cpe in inventory if criterion_matches(match, cpe)), None)
