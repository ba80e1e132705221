"""Process entry of the chaincode server (``python -m patchledger.chaincode``).

Settings come from the environment, read only here:

* ``CHAINCODE_ID`` (required): the installed package id, e.g. ``patchledger_1.0:ab12...``.
* ``CHAINCODE_SERVER_ADDRESS`` (required): ``host:port`` to listen on.
* ``CHAINCODE_TLS_CERT_FILE``, ``CHAINCODE_TLS_KEY_FILE``: PEM files; TLS is on when set
  (without them the server serves plaintext and logs a WARNING naming them).
* ``CHAINCODE_TLS_CLIENT_CA_FILE``: PEM; when set, clients must present a certificate it
  issued (mutual TLS; TLS without it logs a WARNING).
* ``CHAINCODE_LOG_LEVEL``: default ``WARNING``.
* ``CHAINCODE_CONTRACT`` (required): ``module:attribute`` naming the contract (or a
  zero-argument factory of one); there is no default (serving some contract silently, such
  as the smoke one whose ``Put`` writes any key, would be worse than not starting).

Invalid settings print one error line and exit with status 2.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping

from patchledger.chaincode.runtime.errors import ConfigError
from patchledger.chaincode.runtime.server import ServerConfig, load_chaincode, serve

__all__ = ["main"]

EXIT_CONFIG = 2


def main(env: Mapping[str, str] | None = None) -> int:
    """Read the settings, serve until SIGTERM/SIGINT, and return the exit status.

    Returns 0 after a graceful shutdown, 2 for invalid settings, 1 if serving failed.
    """
    try:
        config = ServerConfig.from_env(os.environ if env is None else env)
        chaincode = load_chaincode(config.contract)
    except ConfigError as exc:
        print(f"chaincode: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve(config, chaincode))
    except RuntimeError as exc:
        print(f"chaincode: error: {exc}", file=sys.stderr)
        return 1
    return 0
