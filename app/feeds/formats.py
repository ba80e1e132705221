"""Recognize a feed document by its content and hand it to the right connector.

Detection looks at the content, never at the file name, so a mislabelled file (a ``--format``
that does not match the content) is caught. Documents that are recognized but are not
advisory feeds (a JSON Schema, an SBOM) are *skipped* with a reason rather than failed.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable
from typing import Any

from patchledger.app.feeds.connectors import csaf, debian, kev, nvd, osv
from patchledger.app.feeds.connectors._fields import RecordError
from patchledger.app.feeds.errors import FeedFormatError
from patchledger.app.feeds.jsontext import MalformedJSON, load_json
from patchledger.app.feeds.model import ParseError, ParseResult

#: format name -> (content test, parser). Order matters: the first test that passes wins.
_JSON_FORMATS: dict[str, tuple[Callable[[Any], bool], Callable[[Any, str], ParseResult]]] = {
    "kev": (kev.looks_like, kev.parse),
    "nvd-api-2.0": (nvd.looks_like_api2, nvd.parse_api2),
    "nvd-1.1": (nvd.looks_like_legacy, nvd.parse_legacy),
    "csaf": (csaf.looks_like, csaf.parse),
    "osv": (osv.looks_like, osv.parse),
}
FORMATS: tuple[str, ...] = (*_JSON_FORMATS, "debian")

#: Count fields that a document declares, checked against what it holds (catches truncation).
_DECLARED_COUNTS: dict[str, tuple[str, str]] = {
    "kev": ("count", "vulnerabilities"),
    "nvd-1.1": ("CVE_data_numberOfCVEs", "CVE_Items"),
    "nvd-api-2.0": ("resultsPerPage", "vulnerabilities"),
}


class NotAFeed(Exception):
    """The document is recognized but is not an advisory feed (e.g. a schema or an SBOM)."""


def decompress(data: bytes, origin: str, max_bytes: int) -> bytes:
    """Gunzip ``data`` if it is gzip, refusing output over ``max_bytes``.

    Raises:
        FeedFormatError: corrupt gzip data or decompressed size over the limit.
    """
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise FeedFormatError(origin, f"corrupt gzip data: {exc}") from exc
    if len(out) > max_bytes:
        raise FeedFormatError(origin, f"decompressed size over the limit of {max_bytes} bytes")
    return out


def detect(doc: Any) -> str | None:
    """Name of the JSON feed format of ``doc``, or ``None``.

    Raises:
        NotAFeed: ``doc`` is a JSON Schema or an SBOM.
    """
    for name, (test, _) in _JSON_FORMATS.items():
        if test(doc):
            return name
    if isinstance(doc, dict):
        if "$schema" in doc and "json-schema.org" in str(doc["$schema"]):
            raise NotAFeed("a JSON Schema, not a feed")
        if doc.get("bomFormat") == "CycloneDX" or "spdxVersion" in doc:
            raise NotAFeed("an SBOM (an inventory), not an advisory feed")
    return None


def parse_bytes(data: bytes, origin: str, expected: str | None = None) -> ParseResult:
    """Decode, detect and parse one document.

    Args:
        data: the raw (already decompressed) bytes.
        origin: file path or URL, used in every error.
        expected: the format the caller says this is; a mismatch is an error.

    Raises:
        FeedFormatError: not UTF-8, malformed or truncated JSON, unknown format, a format
            other than ``expected``, or a document-level shape error.
        NotAFeed: a recognized non-feed document.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedFormatError(origin, f"not UTF-8 text (byte {exc.start})") from exc
    if debian.looks_like(text):
        _check_expected(origin, expected, "debian")
        return debian.parse(text, origin)
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        raise FeedFormatError(origin, "unknown format: neither JSON nor a Debian DSA/DLA list")
    try:
        doc = load_json(text)
    except MalformedJSON as exc:
        raise FeedFormatError(
            origin, f"malformed or truncated JSON{exc.where}: {exc.reason}"
        ) from exc
    name = detect(doc)
    if name is None:
        raise FeedFormatError(origin, "unknown format: not KEV, NVD, OSV, CSAF or a Debian list")
    _check_expected(origin, expected, name)
    try:
        result = _JSON_FORMATS[name][1](doc, origin)
    except RecordError as exc:
        raise FeedFormatError(origin, f"{name}: {exc}") from exc
    _check_count(doc, name, result)
    return result


def _check_expected(origin: str, expected: str | None, found: str) -> None:
    if expected is not None and expected != found and not found.startswith(expected):
        raise FeedFormatError(origin, f"labelled {expected!r} but the content is {found!r}")


def _check_count(doc: Any, name: str, result: ParseResult) -> None:
    if name not in _DECLARED_COUNTS:
        return
    count_key, list_key = _DECLARED_COUNTS[name]
    declared, entries = doc.get(count_key), doc.get(list_key)
    try:
        expected = int(declared)
    except (TypeError, ValueError, OverflowError):  # absent, not a number, NaN or infinite
        return
    if isinstance(entries, list) and expected != len(entries):
        result.errors.append(
            ParseError(
                result.origin,
                None,
                f"declares {count_key}={expected} but holds {len(entries)} records (truncated?)",
            )
        )
