"""Errors of the threat-feed library.

Flat families, as in python-tuf: :class:`FeedFormatError` for bad input (a file or record that
is malformed, truncated, mislabelled, of unknown format or too large), :class:`FetchError` for
transport problems, :class:`InventoryError` for unreadable inventories and
:class:`FeedUsageError` for a command that cannot do what it was asked. All derive from
:class:`FeedError`, the one error root of :mod:`patchledger.app.feeds` (the library imports
nothing else from ``patchledger.app``); every message names the file or URL and, where there is
one, the record. The ``feeds`` command line (:mod:`patchledger.app.feeds.cli`) prints a
:class:`FeedError` as one line and exits 2.
"""

from __future__ import annotations


class FeedError(Exception):
    """Base class of every error raised by :mod:`app.feeds`."""


class FeedFormatError(FeedError):
    """A feed file or one of its records cannot be read as the format it claims to be.

    Attributes:
        origin: the file path or URL.
        record: the record's id or position (``None`` when the whole file is unusable).
        reason: what is wrong, in a few words.
    """

    def __init__(self, origin: str, reason: str, record: str | None = None) -> None:
        self.origin = origin
        self.record = record
        self.reason = reason
        where = origin if record is None else f"{origin}: record {record}"
        super().__init__(f"{where}: {reason}")


class FetchError(FeedError):
    """Downloading a feed failed (connection, HTTP status, size limit, retries exhausted).

    Attributes:
        url: the URL that failed.
        status: the last HTTP status received, or ``None`` when there was no response.
    """

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(f"{url}: {reason}")


class InventoryError(FeedError):
    """An inventory (package list or SBOM) cannot be read; names the file and the line/entry.

    Attributes:
        origin: the file (or command) the inventory came from.
        record: the line or entry, when one is to blame.
        problems: every entry that could not be read, when there are several (SBOMs).
    """

    def __init__(
        self,
        origin: str,
        reason: str,
        record: str | None = None,
        problems: tuple[str, ...] = (),
    ) -> None:
        self.origin = origin
        self.record = record
        self.problems = problems
        where = origin if record is None else f"{origin}: {record}"
        super().__init__(f"{where}: {reason}")

    @classmethod
    def listing(cls, origin: str, what: str, problems: list[str]) -> InventoryError:
        """One error naming each of ``problems`` (the first 20 in the message)."""
        shown = "; ".join(problems[:20])
        more = f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
        count = f"{len(problems)} {what}{'s' if len(problems) > 1 else ''}"
        return cls(origin, f"{count} cannot be read: {shown}{more}", problems=tuple(problems))


class FeedUsageError(FeedError):
    """A ``feeds`` command cannot do what it was asked (nothing imported, no inventory given,
    the output file cannot be written); the message says what to change."""
