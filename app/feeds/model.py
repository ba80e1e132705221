"""The one normalized advisory model that every connector produces.

Values are frozen dataclasses with tuples, so advisories can be hashed, shared between threads
and compared in tests. An :class:`Advisory` is what one source said in one record; a
:class:`Vulnerability` (see :mod:`app.feeds.merge`) gathers the advisories of every source about
the same vulnerability.

Package identity is a package URL without version (``pkg:deb/debian/xen?distro=bullseye``):
the purl ``type`` selects the version scheme, ``distro`` the distribution release the data
covers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from packageurl import PackageURL

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
PackageStatus = Literal["affected", "not_affected", "unfixed"]


@dataclass(frozen=True, slots=True)
class RangeEvent:
    """One OSV-style range event: ``introduced`` ``0`` means "from the first version"."""

    kind: EventKind
    version: str


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    """A package an advisory is about, with the versions it affects in one distribution release.

    ``ranges`` holds ranges of events in source order; ``versions`` lists explicitly affected
    versions; ``fixed`` the versions that fix it. ``status`` is ``not_affected`` when the
    source says this release was never vulnerable, ``unfixed`` when no fix exists (yet).
    ``qualifiers`` carries purl qualifiers that restrict the match (e.g. ``rpmmod``).
    """

    type: str
    name: str
    namespace: str | None = None
    distro: str | None = None
    ranges: tuple[tuple[RangeEvent, ...], ...] = ()
    versions: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    status: PackageStatus = "affected"
    qualifiers: tuple[tuple[str, str], ...] = ()
    note: str = ""

    @property
    def purl(self) -> str:
        """The versionless package URL, with the distro and restricting qualifiers."""
        quals = dict(self.qualifiers)
        if self.distro:
            quals["distro"] = self.distro
        return PackageURL(
            type=self.type, namespace=self.namespace, name=self.name, qualifiers=quals or None
        ).to_string()


@dataclass(frozen=True, slots=True)
class CvssScore:
    """A CVSS assessment: ``version`` is ``2.0``, ``3.0``, ``3.1`` or ``4.0``.

    ``base_score`` is ``None`` only when the source gave a vector without a score that this
    library cannot compute (CVSS v4 vectors in OSV records).
    """

    version: str
    vector: str
    base_score: float | None
    severity: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class KevInfo:
    """CISA KEV data: when the CVE was added, the remediation due date, known ransomware use."""

    date_added: date
    due_date: date
    known_ransomware: bool
    vendor: str = ""
    product: str = ""
    required_action: str = ""


@dataclass(frozen=True, slots=True)
class CpeMatch:
    """An NVD CPE match criterion with optional version bounds (NVD semantics)."""

    criteria: str
    vulnerable: bool
    version_start_including: str | None = None
    version_start_excluding: str | None = None
    version_end_including: str | None = None
    version_end_excluding: str | None = None


@dataclass(frozen=True, slots=True)
class CpeNode:
    """A node of an NVD configuration: ``operator`` over its matches and children."""

    operator: Literal["AND", "OR"]
    negate: bool = False
    matches: tuple[CpeMatch, ...] = ()
    children: tuple[CpeNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Reference:
    """A link given by the source, with its kind (``ADVISORY``, ``Patch``, ...) when known."""

    url: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where an advisory came from: source name, file or URL, record id, SHA-256 of the raw."""

    source: str
    origin: str
    record: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Advisory:
    """What one source said about one vulnerability (or one advisory covering several CVEs).

    ``id`` is the source's identifier; ``aliases`` the other identifiers it names (CVE ids of
    a DSA or an ALSA, for instance). Dates are timezone-aware UTC datetimes when given.
    """

    id: str
    source: SourceRecord
    aliases: tuple[str, ...] = ()
    summary: str = ""
    published: datetime | None = None
    modified: datetime | None = None
    cvss: tuple[CvssScore, ...] = ()
    kev: KevInfo | None = None
    affected: tuple[AffectedPackage, ...] = ()
    cpe_configurations: tuple[CpeNode, ...] = ()
    references: tuple[Reference, ...] = ()
    cwes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        """The advisory's id followed by its aliases."""
        return (self.id, *self.aliases)


@dataclass(frozen=True, slots=True)
class ParseError:
    """A record (or a whole file) that could not be imported; the rest of the batch was."""

    origin: str
    record: str | None
    reason: str

    def __str__(self) -> str:
        where = self.origin if self.record is None else f"{self.origin}: record {self.record}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class DataGap:
    """A record that was read but from which nothing can be decided, and why ("no data").

    For instance a CSAF vulnerability whose products carry no purl: it is imported (its CVE,
    scores and references are real) but cannot match any inventory.
    """

    origin: str
    record: str
    reason: str

    def __str__(self) -> str:
        return f"{self.origin}: record {self.record}: no data: {self.reason}"


@dataclass(slots=True)
class ParseResult:
    """The outcome of reading one document.

    ``advisories`` and per-record ``errors`` as read; ``no_data`` the records imported that
    cannot decide anything (:class:`DataGap`); ``withdrawn`` the ids of records that their
    source withdrew or rejected (OSV ``withdrawn``, NVD ``Rejected``), which are not imported.
    ``records`` counts every record read, withdrawn ones included.
    """

    source: str
    origin: str
    records: int = 0
    advisories: list[Advisory] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    no_data: list[DataGap] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)


def record_digest(raw: Any) -> str:
    """SHA-256 (hex) of a raw record: canonical JSON for mappings/lists, UTF-8 for text.

    A lone surrogate (JSON allows ``"\\ud800"``; it has no UTF-8 form) is hashed as the JSON
    escape it came from, so such a record is still read (it is not a crash).
    """
    if isinstance(raw, str):
        data = raw.encode("utf-8", errors="backslashreplace")
    else:
        text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        data = text.encode("utf-8", errors="backslashreplace")
    return hashlib.sha256(data).hexdigest()
