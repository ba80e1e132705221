"""The patchledger contract: the lifecycle core's actions and queries as transaction functions.

Served by ``python -m chaincode`` with
``CHAINCODE_CONTRACT=chaincode.patchledger.contract:contract`` (the network's main
chaincode). See docs/contract.md for the function list.
"""

from __future__ import annotations

from chaincode.patchledger import health, reads, transactions
from chaincode.runtime import Contract
from chaincode.runtime.contract import TxFunc

__all__ = ["VERSION", "contract"]

VERSION = "1.0.0"

contract = Contract("patchledger", version=VERSION, title="patchledger patch lifecycle")

_SUBMIT: tuple[TxFunc, ...] = (*transactions.SUBMIT, *health.SUBMIT)
_EVALUATE: tuple[TxFunc, ...] = (*reads.EVALUATE, *health.EVALUATE)
for _submit in _SUBMIT:
    contract.transaction(_submit)
for _evaluate in _EVALUATE:
    contract.transaction(read_only=True)(_evaluate)
