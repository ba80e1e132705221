"""The agent's own distribution (issue 13, deliver point 8): ``patchledger-agent`` built from
``packaging/agent`` holds the agent and the only patchledger code it imports, declares only
cryptography and protobuf, and installed into a fresh virtual environment it runs (``--help``,
``status``, a real enrollment with attested roots and a cycle against the reference app
server) while the org app, Flask, SQLAlchemy, gRPC, the Fabric client and ``fabric_protos``
cannot be imported there."""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

from patchledger.agent._protos import MODULES
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from tests.support.wheels import ROOT, build_agent_wheel, clean_env, install_agent
from tests.unit.agent import app_server
from tests.unit.lifecycle.lifecycle_support import TRUST

DIST_INFO = "patchledger_agent-0.1.0.dist-info"
ABSENT = ("flask", "apiflask", "werkzeug", "sqlalchemy", "alembic", "grpc", "yaml",
          "fabric_protos", "waitress", "patchledger.app", "patchledger.app.fabric",
          "patchledger.network", "patchledger.chaincode.runtime",
          "patchledger.chaincode.patchledger")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_agent_wheel(tmp_path_factory.mktemp("agent-wheel"))


@pytest.fixture(scope="module")
def wheel(built: Path) -> zipfile.ZipFile:
    return zipfile.ZipFile(built)


@pytest.fixture(scope="module")
def venv(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_agent(built, tmp_path_factory.mktemp("agent-venv") / "venv")


def _packages(names: list[str]) -> set[str]:
    return {name.rsplit("/", 1)[0] for name in names if name.endswith(".py")}


def test_the_wheel_holds_the_agent_and_only_the_core_it_imports(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert {name.split("/", 1)[0] for name in names} == {"patchledger", DIST_INFO}
    packages = _packages(names)
    outside = {p for p in packages if not p.startswith(("patchledger/agent",
                                                        "patchledger/chaincode/lifecycle"))}
    assert outside == {"patchledger/chaincode", "patchledger/common"}
    assert [n for n in names if n.startswith("patchledger/chaincode/") and n.count("/") == 2] == [
        "patchledger/chaincode/__init__.py"]  # no runtime, contract, servers or testkit
    # every module of the source folders is there
    for folder, package in (("agent", "patchledger/agent"),
                            ("chaincode/lifecycle", "patchledger/chaincode/lifecycle"),
                            ("common", "patchledger/common")):
        for source in (ROOT / folder).rglob("*.py"):
            assert f"{package}/{source.relative_to(ROOT / folder).as_posix()}" in names
    assert "patchledger/agent/systemd/patchledger-agent.service" in names
    entry_points = wheel.read(f"{DIST_INFO}/entry_points.txt").decode()
    assert "patchledger-agent = patchledger.agent.cli:main" in entry_points
    assert "patchledger =" not in entry_points


def test_the_generated_protobuf_modules_are_copied_with_their_imports(
        wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for module in MODULES:
        assert f"patchledger/agent/_fabric_protos/{module.replace('.', '/')}.py" in names
    for name in names:
        if name.startswith("patchledger/agent/_fabric_protos/") and name.endswith("_pb2.py"):
            text = wheel.read(name).decode()
            assert "fabric_protos." not in text.replace("patchledger.agent._fabric_protos.", "")
            # what a copied module imports is copied too
            for pkg, mod in re.findall(r"^from patchledger\.agent\._fabric_protos\.([\w.]+) "
                                       r"import (\w+)", text, re.MULTILINE):
                assert f"patchledger/agent/_fabric_protos/{pkg.replace('.', '/')}/{mod}.py" in names


def test_only_cryptography_and_protobuf_are_required(wheel: zipfile.ZipFile) -> None:
    meta = wheel.read(f"{DIST_INFO}/METADATA").decode()
    requires = re.findall(r"^Requires-Dist: (.+)$", meta, re.MULTILINE)
    assert sorted(re.match(r"[\w-]+", r).group(0) for r in requires) == [  # type: ignore[union-attr]
        "cryptography", "protobuf"]
    repo = tomllib.loads((ROOT / "pyproject.toml").read_text())
    agent = tomllib.loads((ROOT / "packaging" / "agent" / "pyproject.toml").read_text())
    protos_pin = next(d for d in repo["project"]["dependencies"]
                      if d.startswith("hyperledger-fabric-protos"))
    assert protos_pin in agent["build-system"]["requires"]  # copied from the pinned version
    crypto = next(d for d in repo["project"]["dependencies"] if d.startswith("cryptography"))
    assert f"Requires-Dist: {crypto}" in meta


def _run(venv: Path, *argv: str, cwd: Path, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / argv[0]), *argv[1:]], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env or clean_env(), check=False)


PROBE = """
import importlib, json, pkgutil, sys
import patchledger.agent, patchledger.agent._protos as protos
loaded = [m.name for m in pkgutil.walk_packages(patchledger.agent.__path__, "patchledger.agent.")
          if importlib.import_module(m.name)]
absent = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        absent[name] = "imported"
    except ModuleNotFoundError as exc:
        absent[name] = "missing: " + str(exc.name)
print(json.dumps({"loaded": loaded, "absent": absent, "protos": protos._ROOT,
                  "file": patchledger.agent.__file__}))
"""


def test_the_fresh_environment_has_the_agent_and_nothing_of_the_app(
        venv: Path, tmp_path: Path) -> None:
    done = _run(venv, "python", "-c", PROBE, *ABSENT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["file"].startswith(str(venv.parent))  # the installed copy, not this checkout
    assert probe["protos"] == "patchledger.agent._fabric_protos"
    assert "patchledger.agent.daemon" in probe["loaded"]
    assert all(state.startswith("missing") for state in probe["absent"].values()), probe["absent"]
    pip_list = _run(venv, "python", "-m", "pip", "list", "--format=json", cwd=tmp_path)
    installed = {d["name"].lower() for d in json.loads(pip_list.stdout)}
    installed -= {"pip", "setuptools"}  # what venv itself puts there (setuptools up to 3.11)
    assert installed == {"patchledger-agent", "cryptography", "cffi", "pycparser",
                         "protobuf"}, installed
    assert _run(venv, "python", "-m", "pip", "check", cwd=tmp_path).returncode == 0


def test_the_console_script_enrolls_and_runs_a_cycle(venv: Path, tmp_path: Path) -> None:
    helped = _run(venv, "patchledger-agent", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "{enroll,run,once,status}" in helped.stdout
    sbom = tmp_path / "sbom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5",
                                "components": []}))
    config = tmp_path / "agent.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\ntarget = "{tmp_path / "srv"}"\n'
                      f'inventory_source = "sbom"\ninventory_sbom = "{sbom}"\n')
    env = {**clean_env(), "PATCHLEDGER_AGENT_CONFIG": str(config)}
    not_yet = _run(venv, "patchledger-agent", "status", cwd=tmp_path, env=env)
    assert not_yet.returncode == 2 and "not enrolled" in not_yet.stderr
    with app_server.running(tmp_path, app_server.ledger_pki()) as (srv, ca):
        srv.state.tokens["tok"] = time.time() + 600
        srv.state.attest_roots = app_server.roots_attestation  # the peers' endorsed roots
        enrolled = _run(venv, "patchledger-agent", "enroll", "--server", srv.url, "--token",
                        "tok", "--host-id", "venv-1", "--ca-file", str(ca),
                        "--roots-fingerprint", roots_fingerprint(TRUST), cwd=tmp_path, env=env)
        assert enrolled.returncode == 0, enrolled.stderr
        once = _run(venv, "patchledger-agent", "once", cwd=tmp_path, env=env)
        assert once.returncode == 0, once.stderr
        assert [i["host"] for i in srv.state.inventories] == ["venv-1"]
    status = _run(venv, "patchledger-agent", "status", "--json", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert (shown["host_id"], shown["last_error"]) == ("venv-1", "")
    assert sorted(shown["pinned_organizations"]) == sorted(TRUST.organizations)

