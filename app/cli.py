"""The ``patchledger`` command line.

Each area contributes a sub-command through a module-level ``add_parser(subparsers)`` function
that registers its parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace``
and returning an exit status). Errors that a user can act on are printed as one line, with exit
status 2: the app's own areas raise :class:`patchledger.app.errors.UserError`, caught here; the
libraries below the app, which may not import app modules, map their own error roots in their
sub-commands (:class:`~patchledger.network.errors.NetworkError` in
:mod:`patchledger.network.cli`, :class:`~patchledger.app.fabric.errors.FabricError` in
:mod:`patchledger.app.fabric.cli`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from importlib import import_module

from patchledger.app.errors import UserError

#: Modules that contribute sub-commands, in the order they appear in ``--help``.
_COMMAND_MODULES = (
    "patchledger.network.cli",
    "patchledger.app.fabric.cli",
    "patchledger.app.feeds.cli",
    "patchledger.app.web.cli",
    "patchledger.app.web.client_cli",
    "patchledger.app.dispatch.cli",
    "patchledger.app.fleet.cli",
    "patchledger.app.demo.cli",
    "patchledger.app.reports.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="patchledger",
        description="patchledger: the security-patch lifecycle on a multi-organization "
        "Hyperledger Fabric ledger",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # area not built yet
                continue
            raise
        add_parser: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
        add_parser = module.add_parser
        add_parser(subparsers)
    return parser


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``patchledger`` console command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # SIGTERM (a CI timeout, a service manager) unwinds like Ctrl-C, so cleanups run: a
    # half-started network is stopped rather than left running.
    signal.signal(signal.SIGTERM, _terminate)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except UserError as exc:
        print(f"patchledger {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
