"""``patchledger feeds``: import threat feeds and match them against inventories.

    patchledger feeds import PATH|URL [...] [--format F] [--out FILE] [--json]
    patchledger feeds match --inventory PATH [...] [--feeds PATH|URL ...] [--json]
    patchledger feeds match --local [--feeds ...]

The feeds directory defaults to ``$PATCHLEDGER_FEEDS_DIR``, else ``<repo>/../shared/feeds``.

Exit status: 0 done; 1 ``import --strict`` with record errors, or ``match`` with an inventory
that could not be read (the others were matched); 2 a
:class:`~patchledger.app.feeds.errors.FeedError` (nothing imported, no usable inventory, an
unwritable ``--out``), printed as one line. This module maps the library's own error root to
exit statuses: it needs nothing from the rest of ``patchledger.app``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from patchledger.app.feeds.errors import FeedError, FeedUsageError
from patchledger.app.feeds.export import to_jsonable, vulnerability_json, write_json_atomic
from patchledger.app.feeds.formats import FORMATS
from patchledger.app.feeds.http import FetchConfig, Fetcher
from patchledger.app.feeds.inventory import (
    CRITICALITIES,
    Inventory,
    local_inventory,
    read_inventory,
)
from patchledger.app.feeds.loader import DEFAULT_MAX_BYTES, ImportReport, Loader
from patchledger.app.feeds.matching import Matcher
from patchledger.app.feeds.merge import merge
from patchledger.app.feeds.priority import prioritize

_REPO_ROOT = Path(__file__).resolve().parents[2]


def default_feeds_dir() -> Path:
    """``$PATCHLEDGER_FEEDS_DIR`` or ``<repo root>/../shared/feeds`` (read at the CLI edge)."""
    configured = os.environ.get("PATCHLEDGER_FEEDS_DIR")
    return Path(configured) if configured else _REPO_ROOT.parent / "shared" / "feeds"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``feeds`` with its ``import`` and ``match`` sub-commands."""
    feeds = subparsers.add_parser("feeds", help="import threat feeds, match inventories")
    feeds.set_defaults(func=lambda _args: _usage(feeds))
    # feeds commands are registered behind _guarded: a FeedError becomes one line and exit 2
    sub = feeds.add_subparsers(dest="feeds_command", metavar="ACTION")

    imp = sub.add_parser("import", help="read feed files, directories or URLs")
    imp.add_argument("sources", nargs="+", metavar="PATH|URL")
    imp.add_argument("--format", choices=FORMATS, help="refuse documents of any other format")
    imp.add_argument(
        "--out",
        type=Path,
        help="write merged vulnerabilities as JSON (atomically; file mode from the umask)",
    )
    imp.add_argument("--strict", action="store_true", help="exit 1 if any record had an error")
    _common(imp)
    imp.set_defaults(func=_guarded(run_import))

    match = sub.add_parser("match", help="match feeds against inventories")
    match.add_argument(
        "--inventory",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="dpkg/rpm query output or CycloneDX/SPDX JSON (repeatable)",
    )
    match.add_argument("--local", action="store_true", help="also query this machine's dpkg/rpm")
    match.add_argument(
        "--feeds",
        action="append",
        default=[],
        metavar="PATH|URL",
        help="feed sources (default: the feeds directory)",
    )
    match.add_argument("--type", choices=("deb", "rpm"), help="text inventory kind")
    match.add_argument(
        "--release", help="distribution release of text inventories (bookworm, almalinux-9)"
    )
    match.add_argument("--criticality", choices=CRITICALITIES, default="medium")
    match.add_argument(
        "--today", type=date.fromisoformat, help="date for deadlines (default today)"
    )
    _common(match)
    match.set_defaults(func=_guarded(run_match))


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``command`` with every :class:`FeedError` printed as one line and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except FeedError as exc:
            print(f"patchledger feeds: error: {exc}", file=sys.stderr)
            return 2

    return run


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="largest document accepted"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--retries", type=int, default=4, help="HTTP retries on 429/5xx")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _load(args: argparse.Namespace, sources: list[str]) -> ImportReport:
    progress = None if args.quiet else _progress
    loader = Loader(
        fetcher=Fetcher(FetchConfig(retries=args.retries, max_bytes=args.max_bytes)),
        max_bytes=args.max_bytes,
        expected_format=getattr(args, "format", None),
        progress=progress,
    )
    report = loader.load(sources)
    if not report.results:
        detail = "; ".join(str(e) for e in report.errors[:3]) or "no feed documents found"
        raise FeedUsageError(f"nothing imported: {detail}")
    return report


def _progress(done: int, total: int, origin: str) -> None:
    if total < 10:
        return
    if done == total or done % max(1, total // 20) == 0:
        end = "\n" if done == total else ""
        print(
            f"\rimporting {done}/{total} documents ({Path(origin).name})".ljust(80),
            end=end,
            file=sys.stderr,
            flush=True,
        )


def run_import(args: argparse.Namespace) -> int:
    """``feeds import``: read, merge, summarize; exit 1 on record errors only with --strict.

    ``--out`` is written atomically with the mode a new file gets from the umask (``0666``
    less the umask), like a shell redirection: it holds public feed data, nothing secret.

    Raises:
        FeedUsageError: nothing imported, or ``--out`` cannot be written.
    """
    report = _load(args, args.sources)
    vulns = merge(report.advisories)
    summary = _summary(report, len(vulns))
    if args.out is not None:
        try:
            write_json_atomic(
                args.out,
                {
                    "summary": summary,
                    "vulnerabilities": [vulnerability_json(v) for v in vulns.values()],
                },
                mode=_new_file_mode(),
            )
        except OSError as exc:
            raise FeedUsageError(f"cannot write {args.out}: {exc}") from exc
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        _print_import(summary)
    return 1 if args.strict and summary["errors"] else 0


def _new_file_mode() -> int:
    """The mode ``open()`` would give a new file: ``0666`` less the process umask."""
    current = os.umask(0o077)
    os.umask(current)
    return 0o666 & ~current


def _summary(report: ImportReport, merged: int) -> dict[str, Any]:
    return {
        "records": report.records_by_source(),
        "advisories": report.advisories_by_source(),
        "merged_vulnerabilities": merged,
        "errors": [str(e) for e in report.all_errors],
        "skipped": [f"{o}: {r}" for o, r in report.skipped],
        "no_data": [str(g) for g in report.no_data],
        "withdrawn": report.withdrawn_by_source(),
    }


def _print_import(summary: dict[str, Any]) -> None:
    rows = [
        (src, str(n), str(summary["advisories"].get(src, 0)))
        for src, n in sorted(summary["records"].items())
    ]
    _table(("source", "records", "advisories"), rows)
    print(f"merged vulnerabilities: {summary['merged_vulnerabilities']}")
    for line in summary["skipped"]:
        print(f"skipped: {line}")
    for source, ids in sorted(summary["withdrawn"].items()):
        print(f"withdrawn or rejected by {source} (not imported): {len(ids)}")
    for line in summary["no_data"]:
        print(line)
    print(f"errors: {len(summary['errors'])}")
    for line in summary["errors"]:
        print(f"  {line}")


def run_match(args: argparse.Namespace) -> int:
    """``feeds match``: import feeds, read inventories, print prioritized findings.

    An inventory that cannot be read is reported (``inventory error:``; ``inventory_errors``
    in JSON) and the others are matched; the exit status is then 1.

    Raises:
        FeedUsageError: no inventory given, none readable, or nothing imported.
    """
    inventories, bad = _inventories(args)
    report = _load(args, args.feeds or [str(default_feeds_dir())])
    vulns = merge(report.advisories)
    matched = Matcher(vulns).match_all(inventories)
    today = args.today or datetime.now(UTC).date()
    criticality = {inv.host: inv.criticality for inv in inventories}
    rows = []
    for finding in matched.findings:
        prio = prioritize(
            vulns[finding.vulnerability], criticality=criticality[finding.host], today=today
        )
        rows.append({"finding": to_jsonable(finding), "priority": to_jsonable(prio)})
    rows.sort(key=lambda r: (-r["priority"]["score"], r["finding"]["vulnerability"]))
    if args.json:
        print(
            json.dumps(
                {
                    "summary": _summary(report, len(vulns)),
                    "findings": rows,
                    "no_data": to_jsonable(matched.no_data),
                    "advisory_errors": to_jsonable(matched.advisory_errors),
                    "inventory_errors": bad,
                },
                indent=2,
                sort_keys=True,
            )
        )
        return 1 if bad else 0
    _table(
        ("score", "deadline", "host", "vulnerability", "package", "installed", "fixed"),
        [
            (
                str(r["priority"]["score"]),
                str(r["priority"]["deadline"]),
                r["finding"]["host"],
                r["finding"]["vulnerability"],
                r["finding"]["package"].split("@")[0],
                r["finding"]["installed_version"],
                str(r["finding"]["fixed_version"]),
            )
            for r in rows
        ],
    )
    print(f"findings: {len(rows)}")
    for gap in matched.no_data:
        print(f"no data: {gap.host} {gap.scope}: {len(gap.packages)} packages ({gap.reason})")
    for error in matched.advisory_errors:
        where = f"{error.host} {error.package}: " if error.host else ""
        print(f"advisory error: {where}{error.reason}")
    for line in bad:
        print(f"inventory error: {line}")
    return 1 if bad else 0


def _inventories(args: argparse.Namespace) -> tuple[list[Inventory], list[str]]:
    """The readable inventories, and one message per inventory that is not.

    Raises:
        FeedUsageError: no inventory given, or none of them readable.
    """
    if not args.inventory and not args.local:
        raise FeedUsageError("give --inventory PATH (repeatable) or --local")
    found: list[Inventory] = []
    bad: list[str] = []
    for path in args.inventory:
        try:
            found.append(
                read_inventory(
                    path, kind=args.type, release=args.release, criticality=args.criticality
                )
            )
        except FeedError as exc:
            bad.append(str(exc))
    if args.local:
        try:
            local = local_inventory(os.uname().nodename)
            found.append(Inventory(local.host, local.packages, local.distro, args.criticality))
        except FeedError as exc:
            bad.append(str(exc))
    if not found:
        raise FeedUsageError("no inventory could be read: " + "; ".join(bad))
    return found, bad


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
