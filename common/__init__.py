"""Helpers below every area: standard library only, importing no other patchledger module.

Everything may import it except the chaincode, which stands alone (docs/architecture.md,
"Dependency rules"). Today it holds one thing: :func:`patchledger.common.durable.write_atomic`.
"""
