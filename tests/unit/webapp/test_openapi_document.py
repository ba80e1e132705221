"""docs/api/openapi.json is the document the app generates from its routes and schemas."""

from __future__ import annotations

from patchledger.app.web.openapi import DOCUMENT, openapi_document, render


def test_the_stored_openapi_document_is_current() -> None:
    generated = openapi_document()
    assert DOCUMENT.is_file(), f"{DOCUMENT} is missing: run .venv/bin/python scripts/openapi.py"
    assert DOCUMENT.read_text() == render(generated), \
        "docs/api/openapi.json is not current: run .venv/bin/python scripts/openapi.py"
    # the document covers the API a demo walks through (a sample of its operations)
    paths = generated["paths"]
    for path, method in (("/api/v1/auth/login", "post"), ("/api/v1/patches/{patch_id}/approve",
                                                          "post"),
                         ("/api/v1/feeds/import", "post"), ("/api/v1/rollouts", "post"),
                         ("/api/v1/audit/verify", "post")):
        assert method in paths.get(path, {}), (path, sorted(paths)[:10])
