"""Package layout: the top-level folders are installed under one ``patchledger`` namespace.

``app/`` becomes ``patchledger.app``, ``agent/`` ``patchledger.agent``, ``chaincode/``
``patchledger.chaincode``, ``network/`` ``patchledger.network`` and ``common/`` (the helpers
below every area) ``patchledger.common``, so the distribution claims no
generic top-level module name (docs/architecture.md, "One namespace"). setuptools' declarative
configuration cannot map folders and discover their sub-packages at once; this file does only
that, everything else is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

AREAS = ("app", "agent", "chaincode", "network", "common")


def _packages() -> list[str]:
    found = []
    for area in AREAS:
        found.append(f"patchledger.{area}")
        found += [f"patchledger.{area}.{sub}"
                  for sub in find_namespace_packages(area, exclude=["*__pycache__*"])]
    return found


setup(packages=_packages(), package_dir={f"patchledger.{area}": area for area in AREAS})
