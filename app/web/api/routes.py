"""The REST API under /api/v1: auth, users, tokens and the ledger's write operations.

Writes are transactions submitted with the calling user's own Fabric identity; the approval
bundle and the patch record an approver signs are read from the peer itself (authoritative);
every other read is served from the read model (app.web.api.reads).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from apiflask import APIBlueprint, APIFlask
from flask import Response, current_app, g, request, session
from sqlalchemy import select

from patchledger.app.web import auth
from patchledger.app.web.api import schemas as s
from patchledger.app.web.db import ApiToken, EnrollmentToken, User, utcnow
from patchledger.app.web.errors import RequestError
from patchledger.app.web.factory import csrf_token, current_user, state
from patchledger.app.web.ledger import Actor
from patchledger.app.web.rbac import PUBLIC, requires

V = TypeVar("V", bound=Callable[..., Any])

api = APIBlueprint("api", __name__, url_prefix="/api/v1", tag="api")
_ID = re.compile(r"^[\x21-\x2e\x30-\x7e]{1,256}$")
_ERRORS = {400: "Bad input, naming the field", 401: "Not authenticated",
           403: "Not allowed (the app's role table or the ledger's)",
           404: "No such record", 409: "The record's state refuses it (the ledger's message)",
           503: "The peer, orderer or CA is unreachable (names the endpoint)"}


def _doc(*statuses: int) -> dict[str, Any]:
    return {"responses": {code: {"description": _ERRORS[code], "content": {
        "application/json": {"schema": s.ErrorOut}}} for code in statuses}}


def _user_out(user: User) -> dict[str, Any]:
    locked = user.locked_until is not None and auth.as_aware(user.locked_until) > utcnow()
    return {"username": user.username, "role": user.role, "has_totp": bool(user.totp_secret),
            "locked": locked, "disabled": user.disabled, "enrollment_id": user.enrollment_id}


def _token_out(token: ApiToken, username: str) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {"id": token.id, "name": token.name, "prefix": token.prefix, "username": username,
            "created_at": iso(token.created_at), "last_used_at": iso(token.last_used_at),
            "revoked_at": iso(token.revoked_at)}


def _enrollment_out(token: EnrollmentToken) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {"id": token.id, "host_id": token.host_id, "created_by": token.created_by,
            "created_at": iso(token.created_at), "expires_at": iso(token.expires_at),
            "used_at": iso(token.used_at), "enrollment_id": token.enrollment_id}


def _record_id(value: str, name: str) -> str:
    if not _ID.match(value):
        raise RequestError(f"{name} {value!r} must be 1-256 printable ASCII characters "
                             "without space or '/'", status=400, field=name)
    return value


def _actor() -> Actor:
    """The calling user as a ledger actor, enrolled with the CA at their first ledger act."""
    return actor_of(current_user())


def actor_of(user: User) -> Actor:
    """``user`` as a ledger actor, enrolled with the CA at their first ledger act.

    Raises:
        LedgerError: the CA refused or is down (502/503).
    """
    st = state()
    if not user.enrollment_id:
        user.enrollment_id = st.ledger.enroll(user.username, user.role)
        st.db().commit()
    return Actor(user.enrollment_id, user.role)


def _etagged(doc: dict[str, Any], *, tag: str | None = None) -> Response | dict[str, Any]:
    """``doc`` with an ETag (``tag``, or a digest of ``doc``), or a 304 when the client's
    ``If-None-Match`` holds it."""
    tag = tag or hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]
    if tag in request.if_none_match:
        response = Response(status=304)
        response.set_etag(tag)
        return response
    g.etag = tag
    return doc


@api.after_request
def _set_etag(response: Response) -> Response:
    tag = g.pop("etag", None)
    if tag and response.status_code == 200:
        response.set_etag(tag)
    return response


def _fresh_totp(code: str) -> None:
    st = state()
    auth.check_totp(st.db(), st.config.security, current_user(), code)


# ---------------------------------------------------------------------------- auth


@api.post("/auth/login")
@api.input(s.LoginIn, arg_name="body")
@api.output(s.SessionOut)
@api.doc(summary="Log in (password, and TOTP for admins and approvers); sets the session",
         **_doc(400, 401, 403))
@requires(PUBLIC)
def login(body: dict[str, Any]) -> dict[str, Any]:
    st = state()
    user = auth.login(st.db(), st.config.security, body["username"], body["password"],
                      body["totp"])
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["ver"] = user.session_version
    return {"user": _user_out(user), "csrf_token": csrf_token()}


@api.post("/auth/logout")
@api.output(s.ResultOut)
@api.doc(summary="End the session", **_doc(401))
@requires("tokens.own")
def logout() -> dict[str, Any]:
    session.clear()
    return {"result": "logged out"}


@api.post("/auth/logout-everywhere")
@api.output(s.ResultOut)
@api.doc(summary="End every session of the caller (bumps the session version)", **_doc(401))
@requires("tokens.own")
def logout_everywhere() -> dict[str, Any]:
    user = current_user()
    user.session_version += 1
    state().db().commit()
    session.clear()
    return {"result": "every session ended"}


@api.get("/auth/me")
@api.output(s.SessionOut)
@api.doc(summary="The caller and a CSRF token for the session", **_doc(401))
@requires("tokens.own")
def me() -> dict[str, Any]:
    return {"user": _user_out(current_user()), "csrf_token": csrf_token()}


# ---------------------------------------------------------------------------- users, tokens


@api.post("/users")
@api.input(s.UserIn, arg_name="body")
@api.output(s.NewUserOut, status_code=201)
@api.doc(summary="Create a user; its password and TOTP secret are shown once",
         **_doc(400, 401, 403))
@requires("users.manage")
def create_user(body: dict[str, Any]) -> dict[str, Any]:
    st = state()
    new = auth.create_user(st.db(), st.config.security, body["username"], body["role"],
                           body["password"], issuer=f"patchledger {st.config.organization}")
    return {"user": _user_out(new.user), "password": new.password,
            "totp_secret": new.totp_secret, "totp_uri": new.totp_uri}


@api.get("/users")
@api.output(s.UsersOut)
@api.doc(summary="Every user of this organization's app", **_doc(401, 403))
@requires("users.manage")
def list_users() -> dict[str, Any]:
    users = state().db().scalars(select(User).order_by(User.username))
    return {"items": [_user_out(u) for u in users]}


@api.get("/users/<username>")
@api.output(s.UserDetailOut)
@api.doc(summary="One user", **_doc(401, 403, 404))
@requires("users.manage")
def get_user(username: str) -> dict[str, Any]:
    return _user_out(auth.find_user(state().db(), username))


@api.post("/users/<username>/unlock")
@api.output(s.UserDetailOut)
@api.doc(summary="Clear a lockout", **_doc(401, 403, 404))
@requires("users.manage")
def unlock_user(username: str) -> dict[str, Any]:
    db = state().db()
    user = auth.find_user(db, username)
    auth.unlock(db, user)
    return _user_out(user)


@api.post("/users/<username>/disable")
@api.output(s.UserDetailOut)
@api.doc(summary="Disable a user: sessions and tokens stop working at once",
         **_doc(401, 403, 404))
@requires("users.manage")
def disable_user(username: str) -> dict[str, Any]:
    db = state().db()
    user = auth.find_user(db, username)
    user.disabled = True
    user.session_version += 1
    db.commit()
    return _user_out(user)


@api.post("/users/<username>/enroll")
@api.output(s.UserDetailOut)
@api.doc(summary="Register and enroll the user's Fabric identity with the CA now",
         **_doc(401, 403, 404, 503))
@requires("users.manage")
def enroll_user(username: str) -> dict[str, Any]:
    st = state()
    db = st.db()
    user = auth.find_user(db, username)
    db.commit()  # no write transaction (lock) held during the call to the CA
    if user.enrollment_id:
        raise RequestError(f"user {username!r} has a Fabric identity already: "
                             f"{user.enrollment_id}", status=409, field="username")
    user.enrollment_id = st.ledger.enroll(user.username, user.role)
    db.commit()
    return _user_out(user)


@api.post("/tokens")
@api.input(s.TokenIn, arg_name="body")
@api.output(s.NewTokenOut, status_code=201)
@api.doc(summary="Create an API token for the caller; the secret is shown once",
         **_doc(400, 401))
@requires("tokens.own")
def create_token(body: dict[str, Any]) -> dict[str, Any]:
    user = current_user()
    new = auth.create_token(state().db(), user, body["name"])
    return {"token": _token_out(new.token, user.username), "secret": new.secret}


@api.get("/tokens")
@api.output(s.TokensOut)
@api.doc(summary="The caller's API tokens", **_doc(401))
@requires("tokens.own")
def list_tokens() -> dict[str, Any]:
    user = current_user()
    tokens = state().db().scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                  .order_by(ApiToken.id))
    return {"items": [_token_out(t, user.username) for t in tokens]}


@api.delete("/tokens/<int:token_id>")
@api.output(s.TokenDetailOut)
@api.doc(summary="Revoke an API token (an admin may revoke anyone's)", **_doc(401, 404, 409))
@requires("tokens.own")
def revoke_token(token_id: int) -> dict[str, Any]:
    db = state().db()
    user = current_user()
    auth.revoke_token(db, user, token_id, any_user=user.role == "admin")
    token = db.get(ApiToken, token_id)
    assert token is not None
    owner = db.get(User, token.user_id)
    return _token_out(token, owner.username if owner else "")


# ---------------------------------------------------------------------------- own account

#: Why an API token may not change the credentials of its user (docs/app.md, security.md).
_SESSION_ONLY_REASON = ("needs a signed-in session (password, and the TOTP code for roles "
                        "with a second factor): an API token may not change the password or "
                        "the second factor, so a leaked token cannot take the account over")


def session_only(view: V) -> V:
    """Mark an API view as open to session logins only (checked before its input is read:
    an API token gets 403 whatever it sends)."""
    view._session_only = True  # type: ignore[attr-defined]
    return view


@api.before_request
def _refuse_tokens_on_session_only_views() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "_session_only", False):
        session_user(request.path)


def session_user(action: str) -> User:
    """The request's user when signed in with a session (the API's and the UI's check for
    changes of the own credentials).

    Raises:
        RequestError: the request is authenticated by an API token (403, field
            ``Authorization``).
    """
    user = current_user()
    if g.get("via") != "session":
        raise RequestError(f"{action} {_SESSION_ONLY_REASON} (user {user.username!r} called "
                           "with an API token)", status=403, field="Authorization")
    return user


def _keep_session(user: User) -> None:
    """After a change that ended every session of ``user``: keep this one."""
    session["ver"] = user.session_version


def change_password(current: str, new: str) -> None:
    """Replace the session user's password (app.web.auth.change_password: the current one
    re-checked, a wrong one counting toward lockout); their other sessions end, this one
    stays. The API's and the UI's one path.

    Raises:
        RequestError: called with an API token (403).
        AuthError: wrong current password (400) or locked (423), field ``current_password``;
            a new password too short or equal to the current one (400, ``new_password``).
    """
    user = session_user("changing the password")
    st = state()
    auth.change_password(st.db(), st.config.security, user, current, new)
    _keep_session(user)


def start_totp_change(current_password: str, code: str) -> auth.PendingTotp:
    """Step 1 of re-enrolling the session user's second factor
    (app.web.auth.start_totp_change). The API's and the UI's one path.

    Raises:
        RequestError: called with an API token (403).
        AuthError: as app.web.auth.start_totp_change.
    """
    user = session_user("re-enrolling the second factor")
    st = state()
    return auth.start_totp_change(st.db(), st.config.security, user, current_password, code,
                                  secret_key=st.config.secret_key,
                                  issuer=f"patchledger {st.config.organization}")


def confirm_totp_change(pending: str, code: str) -> None:
    """Step 2 of re-enrolling the session user's second factor
    (app.web.auth.confirm_totp_change); their other sessions end, this one stays. The API's
    and the UI's one path.

    Raises:
        RequestError: called with an API token (403).
        AuthError: as app.web.auth.confirm_totp_change.
    """
    user = session_user("re-enrolling the second factor")
    st = state()
    auth.confirm_totp_change(st.db(), st.config.security, user, pending, code,
                             secret_key=st.config.secret_key)
    _keep_session(user)


_SESSION_DOC = ("Session logins only: an API token gets 403, because a leaked token must not "
                "be able to change the password or the second factor and so take the account "
                "over.")


@api.post("/account/password")
@api.input(s.PasswordChangeIn, arg_name="body")
@api.output(s.ResultOut)
@api.doc(summary="Change the own password (the current one re-checked; a wrong one counts "
                 "toward lockout); the caller's other sessions end",
         description=_SESSION_DOC, **_doc(400, 401, 403))
@requires("tokens.own")
@session_only
def change_own_password(body: dict[str, Any]) -> dict[str, Any]:
    change_password(body["current_password"], body["new_password"])
    return {"result": "password changed; your other sessions ended"}


@api.post("/account/totp")
@api.input(s.TotpStartIn, arg_name="body")
@api.output(s.PendingTotpOut)
@api.doc(summary="Re-enrol the second factor, step 1: the current password and a code of "
                 "the current factor give a new secret, which takes effect only when a code "
                 "from it confirms it (step 2) within 10 minutes",
         description=_SESSION_DOC + " Nothing is stored before the confirmation: `pending` "
                     "carries the new secret, signed and bound to the user and the session.",
         **_doc(400, 401, 403))
@requires("tokens.own")
@session_only
def start_own_totp(body: dict[str, Any]) -> dict[str, Any]:
    new = start_totp_change(body["current_password"], body["totp"])
    return {"secret": new.secret, "uri": new.uri, "pending": new.pending,
            "expires_in": auth.TOTP_ENROLMENT_SECONDS}


@api.post("/account/totp/confirm")
@api.input(s.TotpConfirmIn, arg_name="body")
@api.output(s.ResultOut)
@api.doc(summary="Re-enrol the second factor, step 2: a code of the new secret makes it the "
                 "second factor; codes of the old one are refused from now on and the "
                 "caller's other sessions end", description=_SESSION_DOC,
         **_doc(400, 401, 403))
@requires("tokens.own")
@session_only
def confirm_own_totp(body: dict[str, Any]) -> dict[str, Any]:
    confirm_totp_change(body["pending"], body["totp"])
    return {"result": "second factor replaced; your other sessions ended"}


# ---------------------------------------------------------------------------- ledger reads


@api.get("/patches/<patch_id>/bundle")
@api.output(s.RecordOut)
@api.doc(summary="The patch with every signed approval statement and its signer's certificate",
         **_doc(400, 401, 404, 503))
@requires("records.read")
def approval_bundle(patch_id: str) -> Response | dict[str, Any]:
    bundle = state().ledger.evaluate("GetApprovalBundle", _record_id(patch_id, "patch_id"))
    return _etagged({"record": bundle})


# ---------------------------------------------------------------------------- records (writes)


def _submit(function: str, *args: Any) -> dict[str, Any]:
    return {"result": state().ledger.submit(_actor(), function, *args)}


_WRITE_DOC = _doc(400, 401, 403, 404, 409, 503)


@api.post("/vulnerabilities")
@api.input(s.VulnerabilityIn, arg_name="body")
@api.output(s.ResultOut, status_code=201)
@api.doc(summary="Record a vulnerability on the ledger", **_WRITE_DOC)
@requires("vuln.record")
def record_vulnerability(body: dict[str, Any]) -> dict[str, Any]:
    return _submit("RecordVulnerability", body)


@api.post("/vulnerabilities/<vuln_id>/assessment")
@api.input(s.AssessmentIn, arg_name="body")
@api.output(s.ResultOut)
@api.doc(summary="Assess a vulnerability (e.g. NOT_AFFECTED)", **_WRITE_DOC)
@requires("vuln.assess")
def assess_vulnerability(vuln_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return _submit("AssessVulnerability", _record_id(vuln_id, "vuln_id"), body["status"])


@api.post("/patches")
@api.input(s.PatchIn, arg_name="body")
@api.output(s.ResultOut, status_code=201)
@api.doc(summary="Propose a patch (its artifact's digest and size)", **_WRITE_DOC)
@requires("patch.propose")
def propose_patch(body: dict[str, Any]) -> dict[str, Any]:
    document = {k: v for k, v in body.items() if v not in ("", None)}
    return _submit("ProposePatch", document)


@api.post("/patches/<patch_id>/evidence")
@api.input(s.EvidenceIn, arg_name="body")
@api.output(s.ResultOut)
@api.doc(summary="Attach test evidence (a passing report makes the patch TESTED)",
         **_WRITE_DOC)
@requires("patch.evidence")
def attach_evidence(patch_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return _submit("AttachTestEvidence", _record_id(patch_id, "patch_id"), body)


def _decide(patch_id: str, body: dict[str, Any], decision: str, *,
            expires_at: int | None = None, artifact_sha256: str | None = None
            ) -> tuple[dict[str, Any], Any]:
    """Sign and submit a decision on ``patch_id`` with the caller's own key, after a fresh
    TOTP code (``body["totp"]``), with ``body["comment"]``.

    Returns the signed statement and the submit result.
    ``expires_at``: the statement's expiry (seconds since the epoch); default now plus
    ``body["valid_days"]`` days. ``artifact_sha256``: the digest the caller reviewed; when
    given, the decision is refused (nothing signed) if the peer's patch now has another one.

    Raises:
        AuthError: the TOTP code is missing, wrong or replayed (401/400).
        RequestError: a bad patch id (400); the artifact changed since the review (409).
        LedgerError: the peer or CA refused or is down.
    """
    patch_id = _record_id(patch_id, "patch_id")
    _fresh_totp(body["totp"])
    st = state()
    patch = st.ledger.evaluate("GetRecord", "Patch", patch_id)
    if artifact_sha256 is not None and patch.get("artifact_sha256") != artifact_sha256:
        raise RequestError(f"patch {patch_id!r} now has artifact "
                           f"{patch.get('artifact_sha256')}, not the reviewed "
                           f"{artifact_sha256}: nothing was signed", status=409,
                           field="artifact_sha256")
    if expires_at is None:
        expires_at = int(time.time()) + int(body["valid_days"]) * 86400
    actor = _actor()
    statement = st.ledger.sign_statement(
        actor, patch_id, patch["artifact_sha256"], decision, body["comment"], expires_at)
    function = "Approve" if decision == "approve" else "Reject"
    return statement, st.ledger.submit(actor, function, statement)


@api.post("/patches/<patch_id>/approve")
@api.input(s.DecisionIn, arg_name="body")
@api.output(s.ResultOut)
@api.doc(summary="Approve: a fresh TOTP code, then a statement signed with your own key",
         **_WRITE_DOC)
@requires("patch.decide")
def approve_patch(patch_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"result": _decide(patch_id, body, "approve")[1]}


@api.post("/patches/<patch_id>/reject")
@api.input(s.DecisionIn, arg_name="body")
@api.output(s.ResultOut)
@api.doc(summary="Reject: a fresh TOTP code, then a statement signed with your own key",
         **_WRITE_DOC)
@requires("patch.decide")
def reject_patch(patch_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"result": _decide(patch_id, body, "reject")[1]}


@api.post("/patches/<patch_id>/revoke")
@api.input(s.RevokeIn, arg_name="body")
@api.output(s.ResultOut)
@api.doc(summary="Revoke a patch (a fresh TOTP code)", **_WRITE_DOC)
@requires("patch.revoke")
def revoke_patch(patch_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return revoke(patch_id, body["totp"], body["reason"])


def revoke(patch_id: str, totp: str, reason: str) -> dict[str, Any]:
    """Propose or agree to revoking ``patch_id`` (``RevokePatch``) after a fresh TOTP code,
    as the caller (the API's and the UI's one path).

    Raises:
        RequestError: a bad patch id or an empty reason (400).
        AuthError: the TOTP code is missing, wrong or replayed.
        LedgerError: the ledger refused (the patch's state, a repeated vote) or is down.
    """
    patch_id = _record_id(patch_id, "patch_id")
    if not reason.strip() or len(reason) > 4096:
        raise RequestError("reason must have 1 to 4096 characters", status=400, field="reason")
    _fresh_totp(totp)
    return _submit("RevokePatch", patch_id, reason)


@api.post("/policy-changes")
@api.input(s.PolicyProposalIn, arg_name="body")
@api.output(s.ResultOut, status_code=201)
@api.doc(summary="Propose a policy change (the contract validates the policy)", **_WRITE_DOC)
@requires("policy.change")
def propose_policy(body: dict[str, Any]) -> dict[str, Any]:
    return _submit("ProposePolicy", body["proposal_id"], body["policy"])


@api.post("/policy-changes/<proposal_id>/vote")
@api.output(s.ResultOut)
@api.doc(summary="Vote for a policy change as this organization", **_WRITE_DOC)
@requires("policy.change")
def vote_policy(proposal_id: str) -> dict[str, Any]:
    return _submit("ApprovePolicy", _record_id(proposal_id, "proposal_id"))


@api.post("/hosts")
@api.input(s.DocumentIn, arg_name="body")
@api.output(s.ResultOut, status_code=201)
@api.doc(summary="Enroll a host record (the contract validates the document)", **_WRITE_DOC)
@requires("host.manage")
def enroll_host(body: dict[str, Any]) -> dict[str, Any]:
    return _submit("EnrollHost", body["document"])


@api.post("/hosts/enrollment-tokens")
@api.input(s.EnrollmentTokenIn, arg_name="body")
@api.output(s.NewEnrollmentTokenOut, status_code=201)
@api.doc(summary="A one-time token for a host's agent to enroll with (shown once)",
         **_doc(400, 401, 403))
@requires("host.manage")
def create_enrollment_token(body: dict[str, Any]) -> dict[str, Any]:
    new = auth.create_enrollment_token(state().db(), current_user(), body["host_id"],
                                       body["valid_hours"])
    return {"token": _enrollment_out(new.token), "secret": new.secret}


@api.get("/hosts/enrollment-tokens")
@api.output(s.EnrollmentTokensOut)
@api.doc(summary="Host enrollment tokens (never their secrets)", **_doc(401, 403))
@requires("host.manage")
def list_enrollment_tokens() -> dict[str, Any]:
    tokens = state().db().scalars(select(EnrollmentToken).order_by(EnrollmentToken.id))
    return {"items": [_enrollment_out(t) for t in tokens]}


@api.delete("/hosts/enrollment-tokens/<int:token_id>")
@api.output(s.EnrollmentTokenDetailOut)
@api.doc(summary="Revoke a live host enrollment token: an agent's enrollment with it is "
                 "refused from now on (it stays listed, expired now)",
         **_doc(401, 403, 404, 409))
@requires("host.manage")
def revoke_enrollment_token(token_id: int) -> dict[str, Any]:
    return _enrollment_out(auth.revoke_enrollment_token(state().db(), token_id))


@api.post("/hosts/<host_id>/inventory")
@api.input(s.InventoryIn, arg_name="body")
@api.output(s.ResultOut)
@api.doc(summary="Record a host's inventory digest", **_WRITE_DOC)
@requires("host.manage")
def host_inventory(host_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return _submit("UpdateInventoryDigest", _record_id(host_id, "host_id"),
                   body["inventory_sha256"])


@api.post("/hosts/<host_id>/decommission")
@api.output(s.ResultOut)
@api.doc(summary="Decommission a host", **_WRITE_DOC)
@requires("host.manage")
def decommission_host(host_id: str) -> dict[str, Any]:
    return _submit("DecommissionHost", _record_id(host_id, "host_id"))


@api.post("/rollouts")
@api.input(s.DocumentIn, arg_name="body")
@api.output(s.ResultOut, status_code=201)
@api.doc(summary="Create a rollout (the contract validates the plan)", **_WRITE_DOC)
@requires("rollout.manage")
def create_rollout(body: dict[str, Any]) -> dict[str, Any]:
    return _submit("CreateRollout", body["document"])


_ROLLOUT_ACTIONS = {"advance": "AdvanceRollout", "pause": "PauseRollout",
                    "resume": "ResumeRollout", "halt": "HaltRollout",
                    "complete": "CompleteRollout", "roll-back": "RollBackRollout"}


def _make_rollout_action(action: str, function: str) -> None:
    def view(rollout_id: str) -> dict[str, Any]:
        return _submit(function, _record_id(rollout_id, "rollout_id"))

    view.__name__ = f"rollout_{action.replace('-', '_')}"
    api.post(f"/rollouts/<rollout_id>/{action}")(api.output(s.ResultOut)(api.doc(
        summary=f"{action.replace('-', ' ').capitalize()} a rollout", **_WRITE_DOC)(
        requires("rollout.manage")(view))))


for _action, _function in _ROLLOUT_ACTIONS.items():
    _make_rollout_action(_action, _function)


@api.post("/exceptions")
@api.input(s.DocumentIn, arg_name="body")
@api.output(s.ResultOut, status_code=201)
@api.doc(summary="Grant (vote for) a risk-acceptance exception", **_WRITE_DOC)
@requires("exception.grant")
def grant_exception(body: dict[str, Any]) -> dict[str, Any]:
    return _submit("GrantException", body["document"])


@api.post("/exceptions/<vuln_id>/<exception_id>/expire")
@api.output(s.ResultOut)
@api.doc(summary="Expire an exception whose time has come", **_WRITE_DOC)
@requires("exception.expire")
def expire_exception(vuln_id: str, exception_id: str) -> dict[str, Any]:
    return _submit("ExpireException", _record_id(vuln_id, "vuln_id"),
                   _record_id(exception_id, "exception_id"))


# ---------------------------------------------------------------------------- audit, health


@api.get("/health")
@api.output(s.ResultOut)
@api.doc(summary="Liveness of the app (not of the ledger)")
@requires(PUBLIC)
def health() -> dict[str, Any]:
    return {"result": {"organization": state().config.organization, "status": "ok"}}


def register(app: APIFlask) -> None:
    """Mount the API on ``app`` (the read endpoints of app.web.api.reads included)."""
    from patchledger.app.web.api import reads  # noqa: F401  (registers its views on api)

    app.register_blueprint(api)
