"""The UI's management pages (blueprint ``ui`` of :mod:`patchledger.app.ui.views`): host
enrollment tokens, proposing a patch from an advisory's fixed version, revoking a patch,
policy proposals and votes, and the account's password and second factor.

Contracts (as for every UI view): each view declares its permission with :func:`requires`
(app.web.rbac's table; the app's request hook refuses other roles and checks CSRF); ledger
writes go through the API's own functions (``routes._submit``, ``routes.revoke``) with the
user's own Fabric identity; bad input is a 400 page naming the field and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import segno
from flask import request, url_for
from sqlalchemy import select

from patchledger.app.artifacts import ArtifactError
from patchledger.app.ingest import candidates as cand
from patchledger.app.readmodel import queries
from patchledger.app.ui.views import _REVOCABLE as REVOCABLE
from patchledger.app.ui.views import PageError, _record, page, ui
from patchledger.app.web import auth
from patchledger.app.web.api import reads, routes
from patchledger.app.web.db import EnrollmentToken, utcnow
from patchledger.app.web.factory import current_user, state
from patchledger.app.web.rbac import requires

#: Members of a policy record that a proposal does not carry (the ledger sets them).
_POLICY_BOOKKEEPING = frozenset({"record_type", "version", "schema_version", "updated_at",
                                 "updated_by", "created_at"})


def _qr(uri: str) -> str:
    return segno.make(uri, error="m").svg_data_uri(scale=5)


# ---------------------------------------------------------------------------- enrollment tokens


def _enrollment_tokens() -> list[tuple[EnrollmentToken, bool]]:
    """The newest 200 tokens, each with whether it is live (unused, unexpired)."""
    now = utcnow()
    tokens = state().db().scalars(select(EnrollmentToken).order_by(
        EnrollmentToken.id.desc()).limit(200))
    return [(t, t.used_at is None and auth.as_aware(t.expires_at) > now) for t in tokens]


def _valid_hours() -> int:
    raw = request.form.get("valid_hours", "24").strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 168:
        raise PageError("valid_hours must be a whole number from 1 to 168", status=400,
                        field="valid_hours")
    return int(raw)


@ui.get("/enrollment-tokens")
@requires("host.manage")
def enrollment_tokens() -> str:
    """The organization's host enrollment tokens (never their secrets) and the form to create
    one."""
    return page("enrollment_tokens.html", tokens=_enrollment_tokens(), created=None)


@ui.post("/enrollment-tokens")
@requires("host.manage")
def create_enrollment_token() -> str:
    """A one-time token for a host's agent; its secret is shown once, on this page only."""
    hours = _valid_hours()
    new = auth.create_enrollment_token(state().db(), current_user(),
                                       request.form.get("host_id", "").strip(), hours)
    return page("enrollment_tokens.html", tokens=_enrollment_tokens(), created=new)


@ui.post("/enrollment-tokens/<int:token_id>/revoke")
@requires("host.manage")
def revoke_enrollment_token(token_id: int) -> str:
    """End a live enrollment token now (the agent's enrollment with it is refused)."""
    revoked = auth.revoke_enrollment_token(state().db(), token_id)
    return page("enrollment_tokens.html", tokens=_enrollment_tokens(), created=None,
                revoked=revoked)


# ---------------------------------------------------------------------------- patch proposal


def _candidates(vuln_id: str) -> list[cand.Candidate]:
    return reads.candidate_page(vuln_id, status="PENDING").items


def _text(name: str, low: int, high: int) -> str:
    value = request.form.get(name, "").strip()
    if not low <= len(value) <= high:
        raise PageError(f"{name} must have {low} to {high} characters", status=400,
                        field=name)
    return value


@ui.get("/patch-proposal")
@requires("patch.propose")
def patch_proposal() -> str:
    """The pending patch candidates of a vulnerability (advisories' fixed versions matched
    against this organization's inventories) with the form to propose one as a patch."""
    vuln_id = request.args.get("vuln_id", "")
    row = _record("Vulnerability", vuln_id)
    return page("patch_proposal.html", row=row, candidates=_candidates(vuln_id))


@ui.post("/patch-proposal")
@requires("patch.propose")
def propose_patch() -> str:
    """Propose a patch for a pending candidate: the artifact uploaded here (or one already in
    this app's artifact store, by digest) becomes the patch's artifact; ``ProposePatch`` is
    submitted as the user, then the candidate is marked CONFIRMED with the patch id.

    Raises (as pages): 400 for a bad field, 404 for an unknown candidate or artifact, 409 for
    a candidate decided already or a patch id taken (the ledger's answer).
    """
    cid = request.form.get("candidate_id", "")
    reads.pending_candidate(cid)  # before anything is uploaded
    routes._record_id(request.form.get("patch_id", "").strip(), "patch_id")
    vendor = _text("vendor", 1, 256)
    upload = request.files.get("artifact")
    digest = request.form.get("artifact_sha256", "").strip().lower()
    if upload is not None and upload.filename:
        try:
            digest = reads.store().put(upload.stream).sha256
        except ArtifactError as exc:
            raise reads._artifact_error(exc) from exc
    elif not digest:
        raise PageError("upload the artifact or give the SHA-256 of one in this app's "
                        "artifact store", status=400, field="artifact")
    patch_id = request.form.get("patch_id", "").strip()
    result, _ = reads.propose_from_candidate(
        cid, patch_id=patch_id, vendor=vendor,
        title=request.form.get("title", "").strip()[:1024], artifact_sha256=digest,
        artifact_uri=request.form.get("artifact_uri", "").strip())
    return page("done.html", title=f"Patch {patch_id} proposed", result={"result": result},
                back=url_for("ui.patch", patch_id=patch_id))


# ---------------------------------------------------------------------------- revocation


@ui.post("/patches/<patch_id>/revoke")
@requires("patch.revoke")
def revoke_patch(patch_id: str) -> str:
    """Revoke a patch: a confirmation page (the patch, the revocation's votes so far, the
    reason and a fresh TOTP code), then ``RevokePatch`` as this organization's vote (the
    patch is REVOKED once the policy's revocation quorum agreed)."""
    row = _record("Patch", patch_id)
    if row.state not in REVOCABLE:
        raise PageError(f"patch {patch_id} is {row.state}: only "
                        f"{', '.join(sorted(REVOCABLE))} patches can be revoked", status=409,
                        field="patch_id")
    with state().engine.connect() as conn:
        revocation = queries.get_record(conn, "Revocation", patch_id)
    if request.form.get("confirm") != "yes":
        return page("revoke.html", row=row, revocation=revocation,
                    reason=request.form.get("reason", ""))
    result = routes.revoke(patch_id, request.form.get("totp", "").strip(),
                           request.form.get("reason", "").strip())
    return page("done.html", title=f"Revocation of {patch_id}: {state().config.msp_id}'s vote",
                result=result, back=url_for("ui.patch", patch_id=patch_id))


# ---------------------------------------------------------------------------- policy


def proposal_template(policy: dict[str, Any] | None) -> str:
    """The current policy as the JSON a proposal starts from (the ledger's bookkeeping
    members removed)."""
    doc = {k: v for k, v in (policy or {}).items() if k not in _POLICY_BOOKKEEPING}
    return json.dumps(doc, indent=2, sort_keys=True)


@ui.post("/policy/proposals")
@requires("policy.change")
def propose_policy() -> str:
    """Propose a replacement of the policy (``ProposePolicy``; this organization's vote is
    the first). The contract validates the document (quorum floors, organizations)."""
    proposal_id = routes._record_id(request.form.get("proposal_id", "").strip(),
                                    "proposal_id")
    text = request.form.get("policy", "")
    if len(text) > 64 * 1024:
        raise PageError("policy must be at most 64 KiB of JSON", status=400, field="policy")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise PageError(f"policy is not JSON: {exc}", status=400, field="policy") from None
    if not isinstance(document, dict):
        raise PageError("policy must be a JSON object", status=400, field="policy")
    result = routes._submit("ProposePolicy", proposal_id, document)
    return page("done.html", title=f"Policy change {proposal_id} proposed", result=result,
                back=url_for("ui.policy"))


@ui.post("/policy/proposals/<proposal_id>/vote")
@requires("policy.change")
def vote_policy(proposal_id: str) -> str:
    """Vote for a policy change as this organization (``ApprovePolicy``), confirmed first."""
    with state().engine.connect() as conn:
        change = queries.get_record(conn, "PolicyChange", proposal_id)
    if change is None:
        raise PageError(f"policy change {proposal_id!r} is not in the read model",
                        status=404, field="proposal_id")
    if change.state != "PROPOSED":
        raise PageError(f"policy change {proposal_id} is {change.state}: no vote possible",
                        status=409, field="proposal_id")
    if request.form.get("confirm") != "yes":
        return page("vote.html", change=change)
    result = routes._submit("ApprovePolicy", routes._record_id(proposal_id, "proposal_id"))
    return page("done.html", title=f"Vote for policy change {proposal_id}", result=result,
                back=url_for("ui.policy"))


# ---------------------------------------------------------------------------- account


@ui.post("/account/password")
@requires("tokens.own")
def change_password() -> str:
    """Change the own password: the current one, the new one twice. Other sessions end
    (``routes.change_password``, the API's path too)."""
    new = request.form.get("new_password", "")
    if new != request.form.get("new_password_again", ""):
        raise PageError("the new password and its repetition differ", status=400,
                        field="new_password_again")
    routes.change_password(request.form.get("current_password", ""), new)
    return page("account_done.html", message="Password changed. Your other sessions ended.")


@ui.post("/account/totp")
@requires("tokens.own")
def start_totp() -> str:
    """Re-enrol the second factor, step 1: the current password and a code of the current
    factor; then the new secret's QR code, which takes effect only once a code from it is
    entered (step 2). The pending secret travels signed (bound to the user and the session
    version, valid 10 minutes), never stored before it is confirmed
    (``routes.start_totp_change``, the API's path too)."""
    new = routes.start_totp_change(request.form.get("current_password", ""),
                                   request.form.get("totp", "").strip())
    return page("totp_enrol.html", pending=new.pending, secret=new.secret, qr=_qr(new.uri))


@ui.post("/account/totp/confirm")
@requires("tokens.own")
def confirm_totp() -> str:
    """Re-enrol the second factor, step 2: a code from the new authenticator entry makes it
    the user's second factor; other sessions end (``routes.confirm_totp_change``)."""
    routes.confirm_totp_change(request.form.get("pending", ""),
                               request.form.get("totp", "").strip())
    return page("account_done.html", message="Second factor replaced: sign in with codes "
                "from the new authenticator entry from now on. Your other sessions ended.")
