"""Import feeds from files, directories and URLs into an :class:`ImportReport`.

This is the I/O edge of the library: it reads bytes (files or :class:`~app.feeds.http.Fetcher`),
enforces the size limit before parsing, and collects per-file and per-record errors so that one
bad file or record never stops the rest of a batch. Nothing is written anywhere: the caller
decides what to do with the complete report (the CLI writes it with
:func:`patchledger.app.feeds.export.write_json_atomic`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from patchledger.app.feeds.errors import FeedError, FeedFormatError
from patchledger.app.feeds.formats import NotAFeed, decompress, parse_bytes
from patchledger.app.feeds.http import Fetcher, nvd_pages
from patchledger.app.feeds.model import Advisory, DataGap, ParseError, ParseResult

log = logging.getLogger(__name__)

#: Default largest accepted document (decompressed), in bytes.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: File suffixes considered when walking a directory; other files are skipped.
FEED_SUFFIXES = (".json", ".txt", ".json.gz", ".list")

#: ``progress(done, total, origin)`` after each document.
Progress = Callable[[int, int, str], None]


@dataclass(slots=True)
class ImportReport:
    """Everything read in one import: parse results, file-level errors, skipped files."""

    results: list[ParseResult] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def advisories(self) -> list[Advisory]:
        """Every advisory of every result, in import order."""
        return [a for r in self.results for a in r.advisories]

    @property
    def all_errors(self) -> list[ParseError]:
        """File-level errors followed by per-record errors."""
        return [*self.errors, *(e for r in self.results for e in r.errors)]

    @property
    def no_data(self) -> list[DataGap]:
        """Records imported that cannot decide anything, with the reason (every result)."""
        return [g for r in self.results for g in r.no_data]

    def withdrawn_by_source(self) -> dict[str, list[str]]:
        """Ids of records their source withdrew or rejected (not imported), per source."""
        found: dict[str, list[str]] = {}
        for result in self.results:
            if result.withdrawn:
                found.setdefault(result.source, []).extend(result.withdrawn)
        return found

    def records_by_source(self) -> dict[str, int]:
        """Raw records read per source (``kev``, ``nvd``, ``osv``, ``csaf``, ``debian-dsa``...)."""
        counts: Counter[str] = Counter()
        for result in self.results:
            counts[result.source] += result.records
        return dict(counts)

    def advisories_by_source(self) -> dict[str, int]:
        """Advisories produced per source."""
        counts: Counter[str] = Counter()
        for result in self.results:
            counts[result.source] += len(result.advisories)
        return dict(counts)


@dataclass(frozen=True, slots=True)
class Loader:
    """Reads feed documents. ``fetcher`` is needed only for URLs.

    Args:
        max_bytes: the largest document accepted, checked before reading a file.
        expected_format: if set, every document must be of this format (see
            :data:`app.feeds.formats.FORMATS`).
        progress: called after each document.
    """

    fetcher: Fetcher | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    expected_format: str | None = None
    progress: Progress | None = None
    nvd_page_delay: float = 6.0

    def load(self, sources: Iterable[str | Path]) -> ImportReport:
        """Import every source (file, directory or URL) into one report; never raises FeedError."""
        report = ImportReport()
        documents: list[str | Path] = []
        for source in sources:
            documents.extend(self._expand(source, report))
        for done, doc in enumerate(documents, start=1):
            self._load_one(doc, report)
            if self.progress is not None:
                self.progress(done, len(documents), str(doc))
        return report

    def _expand(self, source: str | Path, report: ImportReport) -> list[str | Path]:
        if isinstance(source, str) and source.startswith(("http://", "https://")):
            return [source]
        path = Path(source)
        if path.is_dir():
            found: list[str | Path] = []
            for child in sorted(path.rglob("*")):
                if not child.is_file():
                    continue
                if child.name.endswith(FEED_SUFFIXES):
                    found.append(child)
                else:
                    report.skipped.append((str(child), "not a .json, .json.gz or .txt file"))
            return found
        if not path.exists():
            report.errors.append(ParseError(str(path), None, "no such file or directory"))
            return []
        return [path]

    def _load_one(self, doc: str | Path, report: ImportReport) -> None:
        origin = str(doc)
        try:
            if isinstance(doc, Path):
                report.results.append(self._parse(self._read_file(doc), origin))
            else:
                report.results.extend(self._load_url(doc))
        except NotAFeed as exc:
            report.skipped.append((origin, str(exc)))
        except FeedError as exc:
            report.errors.append(
                ParseError(origin, getattr(exc, "record", None), _reason(exc, origin))
            )

    def _read_file(self, path: Path) -> bytes:
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise FeedFormatError(
                    str(path), f"file is {size} bytes, over the limit of {self.max_bytes}"
                )
            with path.open("rb") as handle:
                data = handle.read(self.max_bytes + 1)
        except OSError as exc:
            raise FeedFormatError(str(path), f"cannot read: {exc.strerror or exc}") from exc
        if len(data) > self.max_bytes:
            raise FeedFormatError(str(path), f"file is over the limit of {self.max_bytes} bytes")
        return data

    def _load_url(self, url: str) -> list[ParseResult]:
        fetcher = self.fetcher or Fetcher()
        if "/rest/json/cves/2.0" in url:
            pages = nvd_pages(fetcher, url, page_delay=self.nvd_page_delay)
            return [self._parse(page.body, page.url) for page in pages]
        return [self._parse(fetcher.get(url).body, url)]

    def _parse(self, data: bytes, origin: str) -> ParseResult:
        if len(data) > self.max_bytes:
            raise FeedFormatError(origin, f"document is over the limit of {self.max_bytes} bytes")
        return parse_bytes(decompress(data, origin, self.max_bytes), origin, self.expected_format)


def _reason(exc: FeedError, origin: str) -> str:
    """The error message without the origin prefix (the ParseError carries the origin)."""
    text = str(exc)
    record = getattr(exc, "record", None)
    prefix = origin if record is None else f"{origin}: record {record}"
    return text.removeprefix(prefix).removeprefix(": ") or text
