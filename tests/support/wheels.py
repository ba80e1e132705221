"""The agent as a host installs it: the ``patchledger-agent`` wheel built from
``packaging/agent`` and installed into a fresh virtual environment that holds nothing else.

The dependencies (cryptography, protobuf and theirs) come from a wheelhouse,
``$PATCHLEDGER_WHEELHOUSE`` or ``~/.cache/patchledger/wheelhouse``, filled by ``pip download``
from the package index the first time; where neither the wheelhouse nor the index has them, the
tests that need the environment are skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIP = ("-m", "pip", "--disable-pip-version-check", "--no-input")


def clean_source(dest: Path) -> Path:
    """A copy of this checkout's tracked and untracked-but-not-ignored files in ``dest``, so
    that a stale build/ directory or leftover __pycache__ folders cannot leak into a wheel."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def build_wheel(project: Path, out: Path, pattern: str) -> Path:
    """The wheel of the project folder ``project`` built into ``out`` (no build isolation: the
    build requirements are those of this environment); the one file matching ``pattern``."""
    subprocess.run([sys.executable, *PIP, "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(project)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob(pattern)
    return built


def build_agent_wheel(tmp: Path) -> Path:
    """The ``patchledger_agent-*.whl`` of a clean copy of this checkout."""
    source = clean_source(tmp / "source")
    return build_wheel(source / "packaging" / "agent", tmp / "wheel", "patchledger_agent-*.whl")


def wheelhouse() -> Path:
    default = Path.home() / ".cache" / "patchledger" / "wheelhouse"
    return Path(os.environ.get("PATCHLEDGER_WHEELHOUSE", default))


def clean_env() -> dict[str, str]:
    """This process's environment without what would let a child see this checkout or this
    virtual environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def install_agent(wheel: Path, venv: Path) -> Path:
    """A fresh virtual environment at ``venv`` with ``wheel`` and its dependencies installed,
    from the wheelhouse only (filled from the index when it lacks them); its ``bin`` folder.

    Skips the calling test when the dependencies can be had from neither.
    """
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True,
                   timeout=300, env=clean_env())
    python = venv / "bin" / "python"
    house = wheelhouse()
    offline = [str(python), *PIP, "install", "-q", "--no-index", "--find-links", str(house),
               str(wheel)]
    done = subprocess.run(offline, capture_output=True, text=True, timeout=600, env=clean_env(),
                          check=False)
    if done.returncode != 0:
        house.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run([str(python), *PIP, "download", "-q", "-d", str(house),
                                  str(wheel)], capture_output=True, text=True, timeout=600,
                                 env=clean_env(), check=False)
        if fetched.returncode != 0:
            pytest.skip(f"the agent's dependencies are neither in the wheelhouse {house} nor "
                        f"to be had from the package index: {fetched.stderr.strip()[-400:]}")
        (house / wheel.name).unlink(missing_ok=True)  # pip download copies the wheel itself too
        subprocess.run(offline, check=True, capture_output=True, timeout=600, env=clean_env())
    return venv / "bin"
