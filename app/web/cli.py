"""``patchledger app init|serve``: the org app's process edge.

The configuration comes from ``--config FILE`` (JSON), else from ``PATCHLEDGER_APP_*``
variables; unless ``--no-network`` is given, the peer, CA and registrar of the organization
on the local network (``patchledger network up``) fill what is not configured.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from sqlalchemy import select

from patchledger.app.errors import UserError
from patchledger.app.web.config import (
    ORGANIZATIONS,
    AppConfig,
    config_from_file,
    config_from_mapping,
    local_network_values,
)


def load_config(args: argparse.Namespace) -> AppConfig:
    """The app configuration for the parsed arguments (reads the environment and files).

    Raises:
        UserError: a bad file or variable, or no local network when one is needed.
    """
    if args.config:
        return config_from_file(Path(args.config), args.org).with_port(args.port)
    prefix = "PATCHLEDGER_APP_"
    values: dict[str, str] = {}
    if not args.no_network:
        values.update(local_network_values(args.org, dict(os.environ)))
    values.update({k[len(prefix):].lower(): v for k, v in os.environ.items()
                   if k.startswith(prefix)})
    return config_from_mapping(values, args.org).with_port(args.port)


def _init(args: argparse.Namespace) -> int:
    from patchledger.app.db import open_engine
    from patchledger.app.web import auth
    from patchledger.app.web.db import User, create_schema, session_factory

    config = load_config(args)
    engine = open_engine(config.database_url)
    create_schema(engine)
    with session_factory(engine)() as db:
        if db.scalar(select(User).limit(1)) is not None:
            raise UserError(f"the database of {config.organization}'s app has users already: "
                            "the bootstrap admin is created only once")
        new = auth.create_user(db, config.security, args.admin, "admin",
                               issuer=f"patchledger {config.organization}")
    print(f"created the database of {config.organization}'s app ({config.database_url})")
    print(f"bootstrap admin: {args.admin}")
    print(f"password (shown once): {new.password}")
    print(f"TOTP secret (shown once): {new.totp_secret}")
    print(f"TOTP URI: {new.totp_uri}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from waitress import serve

    from patchledger.app.web.factory import create_app
    from patchledger.app.web.logs import configure_json_logging

    config = load_config(args)
    configure_json_logging(logging.DEBUG if args.verbose else logging.INFO)
    app = create_app(config)
    runner = None
    if config.run_projector and config.peer is not None:
        from patchledger.app.web.projection import start_projection

        runner = start_projection(app)
    scheduler = None
    if args.ingest_as:
        from patchledger.app.web.errors import RequestError
        from patchledger.app.web.ingestion import IngestionScheduler
        from patchledger.app.web.ledger import LedgerError

        try:
            scheduler = IngestionScheduler(app, args.ingest_as, args.ingest_interval)
        except (RequestError, LedgerError) as exc:
            raise UserError(f"cannot schedule feed imports: {exc}") from exc
        scheduler.start()
    logging.getLogger("patchledger.app.web").info(
        "serving", extra={"org": config.organization, "host": config.listen_host,
                          "port": config.listen_port, "peer": config.peer.endpoint
                          if config.peer else None})
    try:
        serve(app, host=config.listen_host, port=config.listen_port, threads=args.threads,
              ident="patchledger", _quiet=True)
    finally:
        if scheduler is not None:
            scheduler.stop()
        if runner is not None:
            runner.stop()
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``patchledger app``."""
    parser = subparsers.add_parser("app", help="the organization's app (REST API)")
    sub = parser.add_subparsers(dest="app_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--org", required=True, choices=sorted(ORGANIZATIONS),
                       help="the organization this app serves")
        p.add_argument("--config", help="a JSON configuration file (default: environment)")
        p.add_argument("--port", type=int, default=None, help="listen port")
        p.add_argument("--no-network", action="store_true",
                       help="do not take the peer and CA from the local network")

    init = sub.add_parser("init", help="create the app's database and its bootstrap admin")
    common(init)
    init.add_argument("--admin", default="admin", help="the bootstrap admin's username")
    init.set_defaults(func=_init)

    serve = sub.add_parser("serve", help="serve the app with waitress")
    common(serve)
    serve.add_argument("--threads", type=int, default=8, help="worker threads")
    serve.add_argument("--ingest-as", metavar="USER",
                       help="import the configured feeds on a schedule as this feed user "
                            "(one scheduler per database: a second one is refused)")
    serve.add_argument("--ingest-interval", type=float, default=3600.0, metavar="SECONDS",
                       help="seconds between scheduled imports")
    serve.set_defaults(func=_serve)

