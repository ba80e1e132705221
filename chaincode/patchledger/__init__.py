"""The patchledger chaincode contract over the lifecycle core (see docs/contract.md).

Modules: ``contract`` (the registered :class:`~chaincode.runtime.Contract`), ``transactions``
(one state-changing function per lifecycle action), ``reads`` (queries), ``health`` (Ping /
GetPing), ``execution`` (one operation as one transaction: caller, time, event, errors),
``bridge`` (the synchronous core over the asynchronous stub), ``arguments`` (object arguments).
"""
