"""The patchledger contract: the lifecycle core's actions and queries as transaction functions.

Served by ``python -m patchledger.chaincode`` with
``CHAINCODE_CONTRACT=chaincode.patchledger.contract:from_environment`` (the network's main
chaincode): :func:`from_environment` is a zero-argument factory that reads the channel
organizations' root certificates from ``PATCHLEDGER_ORG_ROOTS_DIR`` (see
:mod:`chaincode.patchledger.roots`) and builds the contract over them with
:func:`build_contract`. See docs/contract.md for the function list.

The module-level :data:`contract` trusts no organization's CA: it serves every function, but
``EnrollHost`` refuses every host certificate (fail closed). Tests build a contract with an
explicit :class:`~chaincode.lifecycle.OrgTrust` instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from patchledger.chaincode.lifecycle import OrgTrust
from patchledger.chaincode.patchledger import attest, health, reads, transactions
from patchledger.chaincode.patchledger.roots import trust_from_env
from patchledger.chaincode.runtime import Contract
from patchledger.chaincode.runtime.contract import TxFunc

__all__ = ["VERSION", "build_contract", "contract", "from_environment"]

VERSION = "1.0.0"


def build_contract(trust: OrgTrust) -> Contract:
    """The patchledger contract, checking host certificates against ``trust``."""
    built = Contract("patchledger", version=VERSION, title="patchledger patch lifecycle")
    submit: tuple[TxFunc, ...] = (*transactions.submit_functions(trust), *health.SUBMIT)
    evaluate: tuple[TxFunc, ...] = (
        *reads.EVALUATE, *attest.evaluate_functions(trust), *health.EVALUATE
    )
    for func in submit:
        built.transaction(func)
    for func in evaluate:
        built.transaction(read_only=True)(func)
    return built


def from_environment(env: Mapping[str, str] | None = None) -> Contract:
    """The contract over the roots named by ``PATCHLEDGER_ORG_ROOTS_DIR`` (process edge).

    Raises:
        ConfigError: the variable is unset, or its directory cannot be read or holds no valid
            ``<MSPID>.pem`` file (the server then exits with status 2).
    """
    return build_contract(trust_from_env(os.environ if env is None else env))


#: The contract without any organization's roots: ``EnrollHost`` refuses every certificate.
contract = build_contract(OrgTrust())
