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

_USER = "$response.body#/user/username"
_PATCH = "$request.body#/patch_id"
_VULN = "$request.body#/vuln_id"
#: OpenAPI links: what an operation's answer names that a next operation takes (a client's
#: next step, and the sequences stateful fuzzing follows). ``(path, method, status)`` ->
#: ``{link name: (target path, target method, {parameter: runtime expression})}``.
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("/api/v1/users", "post", "201"): {
        "GetUser": ("/api/v1/users/{username}", "get", {"username": _USER}),
        "DisableUser": ("/api/v1/users/{username}/disable", "post", {"username": _USER}),
        "UnlockUser": ("/api/v1/users/{username}/unlock", "post", {"username": _USER}),
        "EnrollUser": ("/api/v1/users/{username}/enroll", "post", {"username": _USER}),
    },
    ("/api/v1/tokens", "post", "201"): {
        "RevokeToken": ("/api/v1/tokens/{token_id}", "delete",
                        {"token_id": "$response.body#/token/id"}),
    },
    ("/api/v1/artifacts", "post", "201"): {
        "GetArtifact": ("/api/v1/artifacts/{sha256}", "get",
                        {"sha256": "$response.body#/sha256"}),
    },
    ("/api/v1/patches", "post", "201"): {
        f"{name.title()}Patch": (f"/api/v1/patches/{{patch_id}}/{name}", method,
                                 {"patch_id": _PATCH})
        for name, method in (("approve", "post"), ("reject", "post"), ("revoke", "post"),
                             ("evidence", "post"), ("bundle", "get"))
    },
    ("/api/v1/vulnerabilities", "post", "201"): {
        "AssessVulnerability": ("/api/v1/vulnerabilities/{vuln_id}/assessment", "post",
                                {"vuln_id": _VULN}),
        "VulnerabilityFindings": ("/api/v1/vulnerabilities/{vuln_id}/findings", "get",
                                  {"vuln_id": _VULN}),
        "GetVulnerability": ("/api/v1/vulnerabilities/{record_id}", "get",
                             {"record_id": _VULN}),
    },
    ("/api/v1/policy-changes", "post", "201"): {
        "VoteOnPolicyChange": ("/api/v1/policy-changes/{proposal_id}/vote", "post",
                               {"proposal_id": "$request.body#/proposal_id"}),
    },
}


def _pointer(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def add_links(spec: dict[Any, Any] | str) -> dict[Any, Any] | str:
    """``spec`` with the :data:`LINKS` in its responses (the app's spec processor; a spec
    already rendered as text is returned as it is).

    Raises:
        KeyError: a link names an operation or response the document does not have (a
            route was renamed: the table must follow).
    """
    if isinstance(spec, str):
        return spec
    for (path, method, status), links in LINKS.items():
        response = spec["paths"][path][method]["responses"][status]
        out = response.setdefault("links", {})
        for name, (target, target_method, parameters) in sorted(links.items()):
            if target_method not in spec["paths"][target]:  # KeyError: the path is gone
                raise KeyError(f"link {name}: no operation {target_method} {target}")
            out[name] = {"operationRef": _pointer(target, target_method),
                         "parameters": dict(parameters)}
    return spec


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
