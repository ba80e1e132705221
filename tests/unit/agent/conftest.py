"""Makes ``tests.unit.lifecycle.lifecycle_support`` importable under --import-mode=importlib
(which does not put the repository root on sys.path), however pytest is launched."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
