"""The dependency rules between the areas (pyproject.toml ``[tool.importlinter]``) hold on the
tree, and the checker fails on each kind of violation.

A violation is shown on a copy of the source tree: each test writes one module with one
offending import into the copy and runs ``lint-imports`` with the project's configuration on
it (the copy comes first on ``PYTHONPATH``, so ``patchledger.*`` names resolve to it). The
real tree is never written to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "pyproject.toml"
AREAS = ("app", "agent", "chaincode", "network", "common")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

#: (contract id, module written into the copy, its offending import)
VIOLATIONS = [
    ("common-is-a-leaf", "common/probe.py", "import patchledger.app.fabric"),
    ("chaincode-stands-alone", "chaincode/patchledger/probe.py",
     "from patchledger.common.durable import write_atomic"),
    ("chaincode-stands-alone", "chaincode/runtime/probe.py",
     "from patchledger.app.fabric import connect"),
    ("lifecycle-is-pure", "chaincode/lifecycle/probe.py",
     "from patchledger.chaincode.runtime import stub"),
    ("lifecycle-is-pure", "chaincode/lifecycle/probe.py", "import grpc"),
    ("libraries-below-the-app", "app/fabric/probe.py",
     "from patchledger.app.errors import UserError"),
    ("libraries-below-the-app", "app/fabric/probe.py", "from patchledger.app import errors"),
    ("libraries-below-the-app", "app/fabric/probe.py", "from flask import Flask"),
    ("libraries-below-the-app", "app/feeds/connectors/probe.py", "import sqlalchemy"),
    ("libraries-below-the-app", "app/fabric/probe.py", "from patchledger.network import cli"),
    ("app-libraries-without-flask", "app/readmodel/probe.py", "from flask import Flask"),
    ("app-libraries-without-flask", "app/ingest/probe.py", "import flask"),
    ("fabric-and-feeds-independent", "app/feeds/probe.py",
     "from patchledger.app.fabric import connect"),
    ("network-uses-only-the-fabric-client", "network/probe.py",
     "from patchledger.app.errors import UserError"),
    ("agent-uses-only-the-lifecycle-core", "agent/probe.py",
     "from patchledger.app.fabric import connect"),
    ("agent-uses-only-the-lifecycle-core", "agent/backends/probe.py",
     "from patchledger.chaincode.runtime.stub import PeerFeatures"),
    ("agent-uses-only-the-lifecycle-core", "agent/probe.py", "import patchledger.network.manager"),
]

#: Imports the rules allow, next to the ones they forbid.
ALLOWED = [
    ("network/probe.py", "from patchledger.app.fabric import connect"),
    ("agent/probe.py", "from patchledger.chaincode.lifecycle import Role"),
    ("app/fabric/probe.py", "from patchledger.common.durable import write_atomic"),
    ("network/probe.py", "from patchledger.common.durable import write_atomic"),
    ("chaincode/lifecycle/probe.py", "from cryptography import x509"),
]


def _contract_ids() -> set[str]:
    config = tomllib.loads(CONFIG.read_text())
    return {contract["id"] for contract in config["tool"]["importlinter"]["contracts"]}


def _lint(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    selected = [arg for contract in contracts for arg in ("--contract", contract)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(CONFIG), "--no-cache", *selected],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the Python sources laid out as the installed ``patchledger`` namespace."""
    copy = tmp_path_factory.mktemp("tree")
    for area in AREAS:
        shutil.copytree(ROOT / area, copy / "patchledger" / area,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


@pytest.fixture
def probe(tree: Path) -> Iterator[Path]:
    """The copy, with whatever ``probe.py`` a test writes removed again afterwards."""
    yield tree
    for written in (tree / "patchledger").rglob("probe.py"):
        written.unlink()


def test_the_tree_keeps_every_contract() -> None:
    result = subprocess.run([str(LINT_IMPORTS), "--config", str(CONFIG), "--no-cache"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(_contract_ids())} kept, 0 broken." in result.stdout


def test_the_copy_resolves_before_the_installed_tree(probe: Path) -> None:
    """Without this, the violation tests below would check the real tree and prove nothing."""
    (probe / "patchledger" / "common" / "probe.py").write_text("import patchledger.network\n")
    result = _lint(probe, "common-is-a-leaf")
    assert "patchledger.common.probe -> patchledger.network" in result.stdout


def test_every_contract_has_a_violation_case() -> None:
    assert {contract for contract, _, _ in VIOLATIONS} == _contract_ids()


@pytest.mark.parametrize(("contract", "module", "line"), VIOLATIONS,
                         ids=[f"{c}:{m}:{line}" for c, m, line in VIOLATIONS])
def test_a_violation_breaks_its_contract(probe: Path, contract: str, module: str,
                                         line: str) -> None:
    (probe / "patchledger" / module).write_text(f"{line}\n")
    result = _lint(probe, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 0 kept, 1 broken." in result.stdout
    importer = "patchledger." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> " in result.stdout  # the report names the offending import


@pytest.mark.parametrize(("module", "line"), ALLOWED, ids=[f"{m}:{line}" for m, line in ALLOWED])
def test_an_allowed_import_keeps_every_contract(probe: Path, module: str, line: str) -> None:
    (probe / "patchledger" / module).write_text(f"{line}\n")
    result = _lint(probe)
    assert result.returncode == 0, result.stdout + result.stderr
