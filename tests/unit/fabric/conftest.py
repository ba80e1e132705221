"""Shared fixtures for the Fabric client tests."""

from __future__ import annotations

import pytest

from app.fabric.testing import TestCA, TestIdentity


@pytest.fixture(scope="session")
def secops_ca() -> TestCA:
    return TestCA("SecOpsMSP")


@pytest.fixture(scope="session")
def orderer_ca() -> TestCA:
    return TestCA("OrdererMSP")


@pytest.fixture(scope="session")
def alice(secops_ca: TestCA) -> TestIdentity:
    return secops_ca.issue("alice", attrs={"role": "approver"})
