"""A factory of real ``.deb`` packages, built with ``dpkg-deb --build`` in a temporary
directory: control fields, files and maintainer scripts as the test asks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

#: A postinst that records its call under the root it installs into ($DPKG_ROOT is set by
#: dpkg in chrootless mode; "" on the host) and succeeds.
RECORDING_POSTINST = """#!/bin/sh
set -e
mkdir -p "$DPKG_ROOT/var/log"
echo "postinst $* $DPKG_MAINTSCRIPT_PACKAGE" >> "$DPKG_ROOT/var/log/plhello.log"
"""

#: A postinst that fails (exit 1).
FAILING_POSTINST = """#!/bin/sh
echo "plhello postinst: configuration failed" >&2
exit 1
"""


def needs_dpkg() -> None:
    """Skip the calling test when dpkg-deb is missing (not a Debian machine)."""
    if shutil.which("dpkg-deb") is None or shutil.which("dpkg") is None:
        pytest.skip("dpkg and dpkg-deb are needed to build and install .deb packages")


def build_deb(
    out_dir: Path,
    version: str,
    *,
    package: str = "plhello",
    files: dict[str, bytes] | None = None,
    postinst: str | None = RECORDING_POSTINST,
    source: str | None = "plhello-src",
    architecture: str = "all",
) -> bytes:
    """Build ``<package>_<version>_<architecture>.deb`` in ``out_dir`` and return its bytes.

    The default payload is ``usr/share/<package>/version`` holding ``hello <version>``.
    """
    needs_dpkg()
    tree = out_dir / f"{package}-{version.replace(':', '_')}-tree"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "DEBIAN").mkdir(parents=True)
    payload = files if files is not None else {
        f"usr/share/{package}/version": f"hello {version}\n".encode()
    }
    for name, data in payload.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    control = [
        f"Package: {package}",
        f"Version: {version}",
        f"Architecture: {architecture}",
        "Maintainer: patchledger tests <tests@patchledger.invalid>",
        f"Description: {package} test package {version}",
    ]
    if source:
        control.append(f"Source: {source}")
    (tree / "DEBIAN/control").write_text("\n".join(control) + "\n", encoding="utf-8")
    if postinst is not None:
        script = tree / "DEBIAN/postinst"
        script.write_text(postinst, encoding="utf-8")
        script.chmod(0o755)
    deb = out_dir / f"{package}_{version.replace(':', '%3a')}_{architecture}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    shutil.rmtree(tree)
    return deb.read_bytes()
