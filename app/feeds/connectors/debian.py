"""Debian security tracker lists: ``data/DSA/list`` and ``data/DLA/list``.

The text format, quirks included (mixed tab/space indentation, empty ``{}``, ``NOTE:`` lines,
two spaces before a version)::

    [29 Mar 2023] DSA-5380-1 xorg-server - security update
        {CVE-2023-1393}
        [bullseye] - xorg-server 2:1.20.11-1+deb11u6
        [lenny] - vlc <not-affected> (Vulnerable code not present)

One advisory per DSA/DLA. Each ``[release] - package version`` line becomes an affected
Debian *source* package for that release, fixed at that version; ``<not-affected>``,
``<unfixed>`` and ``<end-of-life>`` are kept as such. A record with a malformed line is
reported as an error and left out whole; the other records are kept.

Truncation: the tracker's lists end with a newline. A list that does not was cut in the middle
of a line, and its last line may hold a shortened version (``+deb1`` for ``+deb11u5``) that
would hide the vulnerability; that last record is reported as an error and left out. A cut
exactly between two lines cannot be told from a shorter list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from patchledger.app.feeds.connectors._fields import RecordError, checked
from patchledger.app.feeds.model import (
    Advisory,
    AffectedPackage,
    PackageStatus,
    ParseError,
    ParseResult,
    RangeEvent,
    SourceRecord,
    record_digest,
)

_HEADER = re.compile(r"^\[(\d{1,2} [A-Z][a-z]{2} \d{4})\]\s+(D[SL]A-\d+(?:-\d+)?)\s+(.*)$")
_ANY_HEADER = re.compile(r"^\[[^\]]*\]\s*D[SL]A-")
_CVES = re.compile(r"^\{([^}]*)\}$")
_FIX = re.compile(r"^\[([a-z][a-z-]*)\] - (\S+)(?:\s+(\S+))?(?:\s+(.*))?$")
_CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")
_STATUS: dict[str, PackageStatus] = {
    "<not-affected>": "not_affected",
    "<unfixed>": "unfixed",
    "<end-of-life>": "unfixed",
}


def looks_like(text: str) -> bool:
    """True when the first non-empty line is a DSA or DLA header."""
    for line in text.splitlines():
        if line.strip():
            return _HEADER.match(line) is not None
    return False


def source_name(text: str) -> str:
    """``debian-dsa`` or ``debian-dla``, from the first header of the list."""
    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            return "debian-" + match.group(2)[:3].lower()
    return "debian"


@dataclass(slots=True)
class _Block:
    header: str
    line_no: int
    lines: list[tuple[int, str]] = field(default_factory=list)


def parse(text: str, origin: str) -> ParseResult:
    """Parse a DSA or DLA list; a malformed record becomes an error, the others are kept."""
    result = ParseResult(source_name(text), origin)
    blocks = _blocks(text, result)
    cut = bool(text) and not text.endswith("\n")
    for index, block in enumerate(blocks):
        result.records += 1
        label = _label(block)
        if cut and index == len(blocks) - 1:
            last = block.lines[-1][0] if block.lines else block.line_no
            result.errors.append(
                ParseError(
                    origin,
                    label,
                    f"the list ends in the middle of line {last} (no final newline): "
                    "truncated, record left out",
                )
            )
            continue
        try:
            result.advisories.append(checked(_advisory(block, result.source, origin)))
        except RecordError as exc:
            result.errors.append(ParseError(origin, label, str(exc)))
    return result


def _blocks(text: str, result: ParseResult) -> list[_Block]:
    blocks: list[_Block] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if not line[0].isspace():
            if not _ANY_HEADER.match(line) and not line.startswith("["):
                result.errors.append(
                    ParseError(
                        origin=result.origin,
                        record=f"line {number}",
                        reason=f"unexpected line {line[:60]!r}",
                    )
                )
                continue
            blocks.append(_Block(line, number))
        elif blocks:
            blocks[-1].lines.append((number, line.strip()))
        else:
            result.errors.append(
                ParseError(
                    result.origin, f"line {number}", "indented line before any advisory header"
                )
            )
    return blocks


def _label(block: _Block) -> str:
    match = _HEADER.match(block.header)
    return f"{match.group(2)} (line {block.line_no})" if match else f"line {block.line_no}"


def _advisory(block: _Block, source: str, origin: str) -> Advisory:
    match = _HEADER.match(block.header)
    if match is None:
        raise RecordError(f"malformed header {block.header[:80]!r}")
    date_text, advisory_id, title = match.groups()
    try:
        published = datetime.strptime(date_text, "%d %b %Y").replace(tzinfo=UTC)
    except ValueError as exc:
        raise RecordError(f"date {date_text!r} is not 'DD Mon YYYY'") from exc
    cves: list[str] = []
    affected: list[AffectedPackage] = []
    notes: list[str] = []
    for number, line in block.lines:
        if line.startswith("NOTE:"):
            notes.append(line.removeprefix("NOTE:").strip())
        elif cve_match := _CVES.match(line):
            cves.extend(_cve_list(cve_match.group(1), number))
        elif fix_match := _FIX.match(line):
            affected.append(_fix(fix_match, number))
        else:
            raise RecordError(f"line {number}: unrecognized line {line[:80]!r}")
    raw = "\n".join([block.header, *(line for _, line in block.lines)])
    return Advisory(
        id=advisory_id,
        source=SourceRecord(source, origin, advisory_id, record_digest(raw)),
        aliases=tuple(dict.fromkeys(cves)),
        summary=title.strip(),
        published=published,
        modified=published,
        affected=tuple(affected),
        notes=tuple(notes),
    )


def _cve_list(text: str, number: int) -> list[str]:
    ids = text.split()
    for cve in ids:
        if not _CVE_ID.match(cve):
            raise RecordError(f"line {number}: {cve!r} is not a CVE id")
    return ids


def _fix(match: re.Match[str], number: int) -> AffectedPackage:
    release, package, version, rest = match.groups()
    if version is None:
        raise RecordError(f"line {number}: no version or status for {package} in {release}")
    note = (rest or "").strip()
    if version.startswith("<"):
        status = _STATUS.get(version)
        if status is None:
            raise RecordError(f"line {number}: unknown status {version!r}")
        return AffectedPackage(
            type="deb",
            namespace="debian",
            name=package,
            distro=release,
            status=status,
            note=" ".join(p for p in (version, note) if p),
        )
    if not version[0].isdigit():
        raise RecordError(f"line {number}: version {version!r} does not start with a digit")
    return AffectedPackage(
        type="deb",
        namespace="debian",
        name=package,
        distro=release,
        ranges=((RangeEvent("introduced", "0"), RangeEvent("fixed", version)),),
        fixed=(version,),
        note=note,
    )
