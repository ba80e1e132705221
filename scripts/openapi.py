"""Write (or, with --check, compare) docs/api/openapi.json from the org app's routes.

    .venv/bin/python scripts/openapi.py          # regenerate
    .venv/bin/python scripts/openapi.py --check  # exit 1 if the file is not current
"""

from __future__ import annotations

import argparse
import sys

from patchledger.app.web.openapi import DOCUMENT, openapi_document, render


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    text = render(openapi_document())
    if args.check:
        current = DOCUMENT.read_text() if DOCUMENT.is_file() else ""
        if current != text:
            print(f"{DOCUMENT} is not current: run .venv/bin/python scripts/openapi.py",
                  file=sys.stderr)
            return 1
        print(f"{DOCUMENT} is current")
        return 0
    DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT.write_text(text)
    print(f"wrote {DOCUMENT} ({len(text)} bytes, {len(openapi_document()['paths'])} paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
