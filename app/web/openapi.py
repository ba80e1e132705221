"""The org app's OpenAPI document, as ``docs/api/openapi.json`` holds it.

:func:`openapi_document` builds the app without a network (a throw-away home in a temporary
directory) and returns the document APIFlask generates from the routes and schemas (the same
one a running app serves at ``/api/v1/openapi.json``, but for the title, which names no
organization). ``scripts/openapi.py`` writes it; a unit test checks that the file is current.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

#: Where the repository keeps the document.
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.json"


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI 3 document (every organization's app serves the same API)."""
    from patchledger.app.web.config import config_from_mapping
    from patchledger.app.web.factory import create_app, state

    with tempfile.TemporaryDirectory(prefix="patchledger-openapi-") as home:
        app = create_app(config_from_mapping({"org": "secops", "home": home}))
        with app.app_context():
            spec: dict[str, Any] = json.loads(json.dumps(app.spec))
            state().ledger.close()
            state().engine.dispose()
    spec["info"]["title"] = "patchledger organization app API"
    return spec


def render(spec: dict[str, Any]) -> str:
    """The document as the repository stores it (sorted keys, stable indentation)."""
    return json.dumps(spec, indent=1, sort_keys=True) + "\n"
