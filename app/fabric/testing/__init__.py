"""Test doubles for code that uses :mod:`app.fabric`: a throw-away PKI, an in-process fake
Gateway/Deliver gRPC server, and a builder of signed blocks. Never used in production paths."""

from __future__ import annotations

from patchledger.app.fabric.testing.pki import TestCA, TestIdentity

__all__ = ["TestCA", "TestIdentity"]
