"""The patchledger contract: the lifecycle core's actions and queries as transaction functions.

Served by ``python -m patchledger.chaincode`` with
``CHAINCODE_CONTRACT=patchledger.chaincode.patchledger.contract:from_environment`` (the
network's main chaincode): :func:`from_environment` is a zero-argument factory that reads
the channel organizations' root certificates from ``PATCHLEDGER_ORG_ROOTS_DIR`` (see
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
from patchledger.chaincode.patchledger.execution import LedgerContext, Services
from patchledger.chaincode.patchledger.roots import trust_from_env
from patchledger.chaincode.runtime import ChaincodeStub, Contract
from patchledger.chaincode.runtime.contract import TxFunc

__all__ = ["VERSION", "PatchledgerContract", "build_contract", "contract", "from_environment"]

VERSION = "1.0.0"


class PatchledgerContract(Contract):
    """The patchledger contract: every call's context carries the contract's
    :class:`~chaincode.patchledger.execution.Services` (roots, channel organizations, worker
    pool), as fabric-contract-api's ``createContext`` gives a contract's own context."""

    def __init__(self, services: Services) -> None:
        super().__init__("patchledger", version=VERSION, title="patchledger patch lifecycle")
        self.services = services
        submit: tuple[TxFunc, ...] = (*transactions.SUBMIT, *health.SUBMIT)
        evaluate: tuple[TxFunc, ...] = (*reads.EVALUATE, *attest.EVALUATE, *health.EVALUATE)
        for func in submit:
            self.transaction(func)
        for func in evaluate:
            self.transaction(read_only=True)(func)

    def create_context(self, stub: ChaincodeStub) -> LedgerContext:
        """The call's context: the stub plus this contract's services."""
        return LedgerContext(stub, self.services)


def build_contract(trust: OrgTrust) -> PatchledgerContract:
    """The patchledger contract, checking host certificates against ``trust`` (whose MSP ids
    are the channel's peer organizations), with its own worker pool."""
    return PatchledgerContract(Services(trust=trust))


def from_environment(env: Mapping[str, str] | None = None) -> PatchledgerContract:
    """The contract over the roots named by ``PATCHLEDGER_ORG_ROOTS_DIR`` (process edge).

    Raises:
        ConfigError: the variable is unset, or its directory cannot be read or holds no valid
            ``<MSPID>.pem`` file (the server then exits with status 2).
    """
    return build_contract(trust_from_env(os.environ if env is None else env))


#: The contract without any organization's roots: ``EnrollHost`` refuses every certificate
#: and owned records cannot be written (no channel organizations).
contract = build_contract(OrgTrust())
