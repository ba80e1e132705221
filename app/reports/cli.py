"""``patchledger report kev --as-of YYYY-MM-DD --format pdf|csv|html|json``: a compliance
report from an organization's app database (its read model), written to ``--output`` or
standard output. The block height and the report's SHA-256 are printed on standard error."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from patchledger.app.db import open_engine
from patchledger.app.reports import render
from patchledger.app.reports.compliance import Report, compute
from patchledger.app.reports.source import load_facts, parse_as_of
from patchledger.app.web.config import ORGANIZATIONS


def build(database_url: str, as_of: str) -> Report:
    """The KEV remediation report of the read model at ``database_url`` as of ``as_of``.

    Raises:
        UserError: a bad date, or no policy on the ledger as of that date.
        DatabaseError: the database URL is malformed or unsupported.
    """
    moment = parse_as_of(as_of)
    engine = open_engine(database_url)
    try:
        with engine.connect() as conn:
            return compute(load_facts(conn, moment))
    finally:
        engine.dispose()


def _run(args: argparse.Namespace) -> int:
    from patchledger.app.web.cli import load_config

    database_url = args.database_url or load_config(args).database_url
    report = build(database_url, args.as_of)
    data = render.render(report, args.format)
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    print(f"kev report as of {args.as_of}: block height {report.facts.block_height}, "
          f"sha256 {render.digest(report)}", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``report``."""
    report = subparsers.add_parser("report", help="compliance reports from the read model")
    kinds = report.add_subparsers(dest="report", metavar="REPORT", required=True)
    kev = kinds.add_parser("kev", help="KEV remediation, SLA, MTTR, exposure, exceptions")
    kev.add_argument("--as-of", default=datetime.now(UTC).date().isoformat(),
                     help="the report date, YYYY-MM-DD (default today, UTC)")
    kev.add_argument("--format", choices=render.FORMATS, default="html")
    kev.add_argument("--output", "-o", help="file to write (default standard output)")
    kev.add_argument("--database-url", help="the app database (default: the app's config)")
    kev.add_argument("--org", choices=sorted(ORGANIZATIONS), default="secops",
                     help="the organization whose app database is read")
    kev.add_argument("--config", help="the app's JSON configuration file")
    kev.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    kev.add_argument("--no-network", action="store_true", default=True,
                     help=argparse.SUPPRESS)
    kev.set_defaults(func=_run)
