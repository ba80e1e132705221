"""The automation CLI through the org app's API: ``patchledger vuln|patch|rollout|users|tokens``.

The app is named by ``--api URL`` or ``PATCHLEDGER_API_URL``; the API token comes from
``PATCHLEDGER_API_TOKEN`` only (never a command-line argument, which other users of the host
can read). ``--json`` prints the API's JSON answer as it is; otherwise a short text. A TOTP
code (approve, reject, revoke) is read from ``--totp`` or asked for on the terminal.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from patchledger.app.errors import UserError
from patchledger.app.web.client import ApiClient

Handler = Callable[[ApiClient, argparse.Namespace], Any]


def _client(args: argparse.Namespace) -> ApiClient:
    url = args.api or os.environ.get("PATCHLEDGER_API_URL", "")
    token = os.environ.get("PATCHLEDGER_API_TOKEN", "")
    if not url:
        raise UserError("name the app with --api URL or PATCHLEDGER_API_URL")
    if not token:
        raise UserError("set PATCHLEDGER_API_TOKEN to an API token (patchledger tokens create)")
    return ApiClient(url, token)


def _print(args: argparse.Namespace, answer: Any) -> None:
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return
    if isinstance(answer, dict) and "items" in answer:
        for item in answer["items"]:
            if "record_id" in item:
                record = item.get("record") or {}
                title = record.get("title", "")
                extra = record.get("severity", "")
                print(f"{item['record_id']}\t{item['state']}\t{extra}\t{title}".rstrip())
            else:
                print("\t".join(str(item.get(k, "")) for k in
                                ("id", "username", "name", "role", "revoked_at") if k in item))
        if answer.get("next_cursor"):
            print(f"(more: --cursor {answer['next_cursor']})")
        return
    print(json.dumps(answer, indent=2, sort_keys=True))


def _totp(args: argparse.Namespace) -> str:
    code: str = args.totp or getpass.getpass("TOTP code: ")
    return code.strip()


def _list(path: str) -> Handler:
    def run(api: ApiClient, args: argparse.Namespace) -> Any:
        query = {"limit": args.limit, "cursor": args.cursor, "state": args.state}
        for pair in args.filter or ():
            key, sep, value = pair.partition("=")
            if not sep:
                raise UserError(f"--filter {pair!r} must be FIELD=VALUE")
            query[key] = value
        return api.request("GET", path, query=query)

    return run


def _propose(api: ApiClient, args: argparse.Namespace) -> Any:
    artifact = Path(args.artifact)
    try:
        content = artifact.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the artifact {artifact}: {exc}") from exc
    digest = hashlib.sha256(content).hexdigest()
    stored = api.request("POST", "/artifacts", data=content,
                         headers={"X-Artifact-SHA256": digest,
                                  "Content-Type": "application/octet-stream"})
    return api.request("POST", "/patches", {
        "patch_id": args.id, "title": args.title, "vendor": args.vendor,
        "artifact_sha256": stored["sha256"], "artifact_size": stored["size"],
        "artifact_uri": args.uri or f"/api/v1/artifacts/{stored['sha256']}",
        "fixes": args.fixes, "targets": args.targets})


def _evidence(api: ApiClient, args: argparse.Namespace) -> Any:
    try:
        report = Path(args.report).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the test report {args.report}: {exc}") from exc
    return api.request("POST", f"/patches/{args.id}/evidence", {
        "report_sha256": hashlib.sha256(report).hexdigest(), "uri": args.uri,
        "summary": args.summary, "passed": not args.failed})


def _decide(decision: str) -> Handler:
    def run(api: ApiClient, args: argparse.Namespace) -> Any:
        return api.request("POST", f"/patches/{args.id}/{decision}",
                           {"totp": _totp(args), "comment": args.comment,
                            "valid_days": args.valid_days})

    return run


def _post_action(template: str, argument: str) -> Handler:
    """POST to ``template`` with the named argument in its ``{}``."""

    def run(api: ApiClient, args: argparse.Namespace) -> Any:
        return api.request("POST", template.format(getattr(args, argument)))

    return run


def _json_file(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the JSON document {path}: {exc}") from exc


def _add(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str,
         handler: Handler) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("--api", help="the app's URL (default: $PATCHLEDGER_API_URL)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")

    def run(args: argparse.Namespace) -> int:
        _print(args, handler(_client(args), args))
        return 0

    parser.set_defaults(func=run)
    return parser


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", help="only records in this state, e.g. OPEN")
    parser.add_argument("--filter", action="append", metavar="FIELD=VALUE",
                        help="filter on an indexed field (repeatable)")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--cursor", default="", help="the next page's cursor")


def _group(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
           help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = subparsers.add_parser(name, help=help_text)
    return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vuln``, ``patch``, ``rollout``, ``users`` and ``tokens``."""
    vuln = _group(subparsers, "vuln", "vulnerabilities, through the org app's API")
    _paging(_add(vuln, "list", "list vulnerabilities", _list("/vulnerabilities")))
    show = _add(vuln, "show", "one vulnerability",
                lambda api, a: api.request("GET", f"/vulnerabilities/{a.id}"))
    show.add_argument("id")

    patch = _group(subparsers, "patch", "patches, through the org app's API")
    _paging(_add(patch, "list", "list patches", _list("/patches")))
    show = _add(patch, "show", "one patch", lambda api, a: api.request("GET", f"/patches/{a.id}"))
    show.add_argument("id")
    propose = _add(patch, "propose", "upload the artifact and propose the patch", _propose)
    propose.add_argument("--id", required=True)
    propose.add_argument("--title", required=True)
    propose.add_argument("--vendor", required=True)
    propose.add_argument("--artifact", required=True, help="the artifact file")
    propose.add_argument("--uri", default="", help="where agents download it (default: app)")
    propose.add_argument("--fixes", nargs="+", required=True, metavar="VULN_ID")
    propose.add_argument("--targets", nargs="+", required=True, metavar="PURL")
    evidence = _add(patch, "evidence", "attach a test report's digest", _evidence)
    evidence.add_argument("id")
    evidence.add_argument("--report", required=True, help="the report file (its digest goes)")
    evidence.add_argument("--uri", required=True, help="where the report is kept")
    evidence.add_argument("--summary", required=True)
    evidence.add_argument("--failed", action="store_true", help="the tests failed")
    for decision in ("approve", "reject"):
        p = _add(patch, decision, f"{decision} (TOTP; signed with your own key)",
                 _decide(decision))
        p.add_argument("id")
        p.add_argument("--totp", help="the code (default: asked for)")
        p.add_argument("--comment", default="")
        p.add_argument("--valid-days", type=int, default=7)
    revoke = _add(patch, "revoke", "revoke a patch (TOTP)", lambda api, a: api.request(
        "POST", f"/patches/{a.id}/revoke", {"totp": _totp(a), "reason": a.reason}))
    revoke.add_argument("id")
    revoke.add_argument("--reason", required=True)
    revoke.add_argument("--totp")

    rollout = _group(subparsers, "rollout", "rollouts, through the org app's API")
    _paging(_add(rollout, "list", "list rollouts", _list("/rollouts")))
    create = _add(rollout, "create", "create a rollout from a JSON plan", lambda api, a:
                  api.request("POST", "/rollouts", {"document": _json_file(a.plan)}))
    create.add_argument("plan", help="the rollout document (JSON file)")
    for action in ("advance", "pause", "resume", "halt", "complete", "roll-back"):
        p = _add(rollout, action, f"{action.replace('-', ' ')} a rollout",
                 _post_action("/rollouts/{}/" + action, "id"))
        p.add_argument("id")

    users = _group(subparsers, "users", "the org app's users (admin)")
    create = _add(users, "create", "create a user; prints its password and TOTP secret once",
                  lambda api, a: api.request("POST", "/users",
                                             {"username": a.name, "role": a.role}))
    create.add_argument("name")
    create.add_argument("--role", required=True,
                        choices=["admin", "approver", "operator", "auditor", "feed"])
    _add(users, "list", "list users", lambda api, a: api.request("GET", "/users"))
    for action in ("unlock", "disable", "enroll"):
        p = _add(users, action, f"{action} a user", _post_action("/users/{}/" + action, "name"))
        p.add_argument("name")

    tokens = _group(subparsers, "tokens", "your API tokens")
    create = _add(tokens, "create", "create a token; prints its secret once",
                  lambda api, a: api.request("POST", "/tokens", {"name": a.name}))
    create.add_argument("name")
    _add(tokens, "list", "list your tokens", lambda api, a: api.request("GET", "/tokens"))
    revoke = _add(tokens, "revoke", "revoke a token",
                  lambda api, a: api.request("DELETE", f"/tokens/{a.token_id}"))
    revoke.add_argument("token_id", type=int)
