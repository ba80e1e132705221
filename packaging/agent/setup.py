"""Build of the agent's own distribution from the repository's folders (see pyproject.toml).

Packages: ``patchledger.agent`` (agent/, with its systemd unit), ``patchledger.chaincode`` with
``patchledger.chaincode.lifecycle`` only (chaincode/__init__.py and chaincode/lifecycle/; the
runtime, contract and servers stay out), ``patchledger.common`` (common/), and
``patchledger.agent._fabric_protos``: copies of the generated Fabric protobuf modules the agent
parses attestations with (``patchledger.agent._protos.MODULES``) and those they import, taken
from the ``hyperledger-fabric-protos`` installed in the build environment with their imports
rewritten to the new package. Dependencies: ``cryptography`` as the repository pins it and
``protobuf`` as ``hyperledger-fabric-protos`` requires it (its generated code checks the protobuf
runtime's version); nothing else.

Raises (at build time): ``SystemExit`` naming what is missing when the build environment lacks
``hyperledger-fabric-protos`` or a module named in ``MODULES``.
"""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENDORED = "patchledger.agent._fabric_protos"
PROTOS_DIST = "hyperledger-fabric-protos"
_IMPORT = re.compile(r"^from fabric_protos((?:\.\w+)*) import (\w+)", re.MULTILINE)


def _repo_project() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _requirement(name: str, requirements: list[str]) -> str:
    for req in requirements:
        if re.match(rf"{re.escape(name)}\b", req) and ";" not in req:
            return req.replace(" ", "")
    raise SystemExit(f"agent build: no requirement for {name!r} in {requirements}")


def _dependencies() -> list[str]:
    project = _repo_project()
    try:
        protos_requires = metadata.requires(PROTOS_DIST) or []
    except metadata.PackageNotFoundError:
        raise SystemExit(f"agent build: {PROTOS_DIST} is not installed in the build "
                         "environment (it is a build requirement)") from None
    dependencies = project["dependencies"]
    assert isinstance(dependencies, list)
    return [_requirement("cryptography", dependencies), _requirement("protobuf", protos_requires)]


def _agent_modules() -> tuple[str, ...]:
    """``MODULES`` of agent/_protos.py, read without importing the agent."""
    tree = ast.parse((REPO / "agent" / "_protos.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "MODULES" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise SystemExit("agent build: agent/_protos.py defines no MODULES")


def _source_root() -> Path:
    spec = find_spec("fabric_protos")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"agent build: fabric_protos ({PROTOS_DIST}) cannot be imported")
    return Path(next(iter(spec.submodule_search_locations)))


def vendored_protos() -> dict[str, str]:
    """Relative path (below the vendored package) -> text of each copied module: the closure
    of ``MODULES`` under ``from fabric_protos... import ...``, with those imports and the
    builder's module names rewritten to :data:`VENDORED`."""
    source = _source_root()
    todo, files = list(_agent_modules()), {}
    while todo:
        name = todo.pop()
        rel = name.replace(".", "/") + ".py"
        if rel in files:
            continue
        path = source / rel
        if not path.is_file():
            raise SystemExit(f"agent build: fabric_protos.{name} not found at {path}")
        text = path.read_text()
        todo += [f"{pkg.lstrip('.')}.{mod}".lstrip(".") for pkg, mod in _IMPORT.findall(text)]
        files[rel] = re.sub(r"\bfabric_protos\.", f"{VENDORED}.", text)
    version = metadata.version(PROTOS_DIST)
    for rel in list(files):
        parts = Path(rel).parts[:-1]
        for depth in range(len(parts) + 1):
            init = "/".join([*parts[:depth], "__init__.py"])
            files.setdefault(init, f'"""Generated Fabric protobuf modules copied from '
                                   f'{PROTOS_DIST} {version} (Apache-2.0) for the agent."""\n')
    return files


class BuildAgent(build_py):
    """setuptools' build_py, plus chaincode/__init__.py and the vendored protobuf modules."""

    def run(self) -> None:
        out = Path(self.build_lib) / "patchledger"
        # setuptools' build folder keeps files of earlier builds: start from nothing, so a
        # module removed from the source cannot linger in the wheel
        shutil.rmtree(out, ignore_errors=True)
        super().run()
        (out / "chaincode").mkdir(parents=True, exist_ok=True)
        (out / "chaincode" / "__init__.py").write_text(
            (REPO / "chaincode" / "__init__.py").read_text())
        target = out / Path(*VENDORED.split(".")[1:])
        for rel, text in vendored_protos().items():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            (target / rel).write_text(text)


def _packages() -> tuple[list[str], dict[str, str]]:
    areas = {"patchledger.agent": "agent", "patchledger.chaincode.lifecycle": "chaincode/lifecycle",
             "patchledger.common": "common"}
    packages, dirs = [], {}
    for package, folder in areas.items():
        dirs[package] = f"../../{folder}"
        packages.append(package)
        packages += [f"{package}.{sub}" for sub in find_packages(str(REPO / folder))]
    return packages, dirs


PACKAGES, DIRS = _packages()
setup(
    version=str(_repo_project()["version"]),
    install_requires=_dependencies(),
    packages=PACKAGES,
    package_dir=DIRS,
    package_data={"patchledger.agent": ["systemd/*.service"]},
    cmdclass={"build_py": BuildAgent},
)
