"""The built distribution claims one top-level name, ``patchledger`` (issue: one namespace)."""

from __future__ import annotations

import zipfile

import pytest

from tests.support.wheels import build_wheel, clean_source


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel that ``pip install .`` would install from a clean clone of this checkout."""
    source = clean_source(tmp_path_factory.mktemp("source"))
    return zipfile.ZipFile(build_wheel(source, tmp_path_factory.mktemp("wheel"),
                                       "patchledger-*.whl"))


def test_wheel_installs_only_the_patchledger_namespace(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert top_level == {"patchledger", "patchledger-0.1.0.dist-info"}
    for area in ("app", "agent", "chaincode", "network", "common"):
        assert f"patchledger/{area}/__init__.py" in names
    # package data travels with its package, and the builder scripts stay executable
    assert "patchledger/network/consortium-policy.json" in names
    info = wheel.getinfo("patchledger/network/builders/ccaas/bin/build")
    assert (info.external_attr >> 16) & 0o111
    # test support is not shipped: not tests/, and no test doubles inside the packages
    assert not [name for name in names if name.startswith("tests/")]
    modules = [name.removesuffix(".py") for name in names if name.endswith(".py")]
    assert not [name for name in modules if "testing" in name.split("/")]
    for moved in ("patchledger/network/testing", "patchledger/chaincode/runtime/testing",
                  "patchledger/app/fabric/testing/fake_gateway"):
        assert moved not in modules


def test_console_script_points_into_the_namespace(wheel: zipfile.ZipFile) -> None:
    entry_points = wheel.read("patchledger-0.1.0.dist-info/entry_points.txt").decode()
    assert "patchledger = patchledger.app.cli:main" in entry_points
    assert "patchledger-agent = patchledger.agent.cli:main" in entry_points


def test_the_agents_systemd_unit_is_shipped(wheel: zipfile.ZipFile) -> None:
    unit = wheel.read("patchledger/agent/systemd/patchledger-agent.service").decode()
    assert "patchledger-agent --config /etc/patchledger/agent.toml run" in unit
