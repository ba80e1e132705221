"""Merge advisories from several feeds into one :class:`Vulnerability` per vulnerability.

A vulnerability is keyed by CVE id. An advisory joins the vulnerability of every CVE it names
(its id or aliases): a DSA fixing five CVEs contributes to five vulnerabilities, as OSV does.
An advisory that names no CVE forms a vulnerability of its own, keyed by its id. Merging never
drops anything: every source advisory is kept, and the merged views (scores, KEV data, dates,
references) say which source they came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from patchledger.app.feeds.model import Advisory, CvssScore, KevInfo, Reference, SourceRecord

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One vulnerability as seen by every source that spoke about it."""

    id: str
    advisories: tuple[Advisory, ...]

    @property
    def sources(self) -> tuple[SourceRecord, ...]:
        """The source record of every advisory, in import order."""
        return tuple(a.source for a in self.advisories)

    @property
    def source_names(self) -> tuple[str, ...]:
        """Distinct source names (``kev``, ``nvd``, ``debian-dsa``...), in import order."""
        return tuple(dict.fromkeys(a.source.source for a in self.advisories))

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every other id any source used: advisory ids (DSA, ALSA, RHSA) and aliases."""
        ids = (i for a in self.advisories for i in a.ids)
        return tuple(
            dict.fromkeys(i for i in ids if i != self.id and not _is_other_cve(i, self.id))
        )

    @property
    def kev(self) -> KevInfo | None:
        """KEV data, if any source (the KEV catalog) listed the CVE."""
        return next((a.kev for a in self.advisories if a.kev is not None), None)

    @property
    def cvss(self) -> tuple[CvssScore, ...]:
        """Every CVSS assessment of every source."""
        return tuple(s for a in self.advisories for s in a.cvss)

    @property
    def published(self) -> datetime | None:
        """The earliest publication time any source gives."""
        times = [a.published for a in self.advisories if a.published is not None]
        return min(times) if times else None

    @property
    def modified(self) -> datetime | None:
        """The latest modification time any source gives."""
        times = [a.modified for a in self.advisories if a.modified is not None]
        return max(times) if times else None

    @property
    def references(self) -> tuple[Reference, ...]:
        """References of every source, without duplicate URLs."""
        seen: dict[str, Reference] = {}
        for ref in (r for a in self.advisories for r in a.references):
            seen.setdefault(ref.url, ref)
        return tuple(seen.values())

    @property
    def summary(self) -> str:
        """The first non-empty summary, preferring NVD's description."""
        ordered = sorted(self.advisories, key=lambda a: a.source.source != "nvd")
        return next((a.summary for a in ordered if a.summary), "")


def _is_other_cve(candidate: str, own: str) -> bool:
    return candidate != own and _CVE.match(candidate) is not None


def vulnerability_keys(advisory: Advisory) -> tuple[str, ...]:
    """The vulnerabilities an advisory belongs to: the CVEs it names, else its own id."""
    cves = tuple(dict.fromkeys(i for i in advisory.ids if _CVE.match(i)))
    return cves or (advisory.id,)


def merge(advisories: Iterable[Advisory]) -> dict[str, Vulnerability]:
    """Group advisories into vulnerabilities keyed by CVE id (or advisory id without CVE).

    The same source record imported twice (same source, record and digest) is kept once.
    """
    grouped: dict[str, dict[tuple[str, str, str], Advisory]] = {}
    for advisory in advisories:
        src = advisory.source
        for key in vulnerability_keys(advisory):
            grouped.setdefault(key, {}).setdefault((src.source, src.record, src.sha256), advisory)
    return {key: Vulnerability(key, tuple(group.values())) for key, group in grouped.items()}
