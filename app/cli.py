"""The ``patchledger`` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``patchledger`` console command; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    print("patchledger: nothing here yet", args)
    return 0
