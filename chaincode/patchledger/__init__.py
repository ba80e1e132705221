"""The patchledger chaincode contract over the lifecycle core (see docs/contract.md).

Modules: ``contract`` (:func:`~chaincode.patchledger.contract.build_contract` over the
organizations' roots, and the served factory ``from_environment``), ``roots`` (reading those
roots from ``PATCHLEDGER_ORG_ROOTS_DIR``), ``transactions``
(one state-changing function per lifecycle action), ``reads`` (queries), ``health`` (Ping /
GetPing), ``execution`` (one operation as one transaction: caller, time, event, errors),
``bridge`` (the synchronous core over the asynchronous stub), ``arguments`` (object arguments).
"""
