"""``patchledger report kev --as-of YYYY-MM-DD --format pdf|csv|html|json``: a compliance
report from an organization's app database (its read model), written to ``--output`` or
standard output. The block height and the report's SHA-256 are printed on standard error."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from patchledger.app.db import open_engine
from patchledger.app.errors import UserError
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


def _verify_evidence(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from patchledger.app.reports.evidence import load_bundle, verify_bundle

    try:
        text = Path(args.bundle).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the evidence bundle {args.bundle}: {exc}") from exc
    result = verify_bundle(load_bundle(text))
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2, sort_keys=True))
    else:
        for msp, prints in sorted(result.trust_fingerprints.items()):
            print(f"trust root {msp}: sha256 {', '.join(prints)}")
        print(f"blocks checked: {result.blocks_checked}, last block hash "
              f"{result.last_block_hash}; record versions checked: {result.versions_checked}")
        for problem in result.problems:
            print(f"PROBLEM: {problem}")
        print("evidence verified" if result.ok else "evidence NOT verified")
    return 0 if result.ok else 1


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
    verify = kinds.add_parser("verify-evidence", help="verify an evidence bundle offline "
                              "(blocks against its trust roots, records against the blocks)")
    verify.add_argument("bundle", help="the bundle file (exported from the audit explorer)")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=_verify_evidence)
