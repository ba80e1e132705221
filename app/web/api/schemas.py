"""Input and output schemas of the REST API (marshmallow, via APIFlask): they validate the
input, naming each bad field, and they are the OpenAPI document's schemas."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, Dict, Integer, List, Nested, Raw, String
from apiflask.validators import Length, OneOf, Range, Regexp

from patchledger.app.web.db import Role

#: A ledger record id: printable ASCII without space or "/" (the chaincode's rule).
RECORD_ID = Regexp(r"^[\x21-\x2e\x30-\x7e]{1,256}$",
                   error="must be 1-256 printable ASCII characters without space or '/'")
SHA256 = Regexp(r"^[0-9a-f]{64}$", error="must be 64 lower-case hex digits (SHA-256)")
TOTP = Regexp(r"^\d{6}$", error="must be the 6-digit code of the authenticator")
SEVERITIES = ("critical", "high", "medium", "low")


class ErrorDetail(Schema):
    status = Integer(required=True)
    message = String(required=True)
    field = String()
    field_errors = Dict(keys=String(), values=Raw(), data_key="fields")
    endpoint = String()
    function = String()
    transaction_id = String()


class ErrorOut(Schema):
    error = Nested(ErrorDetail, required=True)


class LoginIn(Schema):
    username = String(required=True, validate=Length(1, 64))
    password = String(required=True, validate=Length(1, 1024))
    totp = String(load_default=None, validate=TOTP)


class UserOut(Schema):
    username = String()
    role = String()
    has_totp = Boolean()
    locked = Boolean()
    disabled = Boolean()
    enrollment_id = String(allow_none=True)


class SessionOut(Schema):
    user = Nested(UserOut)
    csrf_token = String()


class CsrfOut(Schema):
    csrf_token = String()


class UserIn(Schema):
    username = String(required=True, validate=Regexp(r"^[a-z][a-z0-9._-]{1,63}$"))
    role = String(required=True, validate=OneOf([r.value for r in Role]))
    password = String(load_default=None, validate=Length(12, 1024))


class NewUserOut(Schema):
    user = Nested(UserOut)
    password = String()
    totp_secret = String(allow_none=True)
    totp_uri = String(allow_none=True)


class UsersOut(Schema):
    items = List(Nested(UserOut))


class TokenIn(Schema):
    name = String(required=True, validate=Length(1, 64))


class TokenOut(Schema):
    id = Integer()
    name = String()
    prefix = String()
    username = String()
    created_at = String()
    last_used_at = String(allow_none=True)
    revoked_at = String(allow_none=True)


class NewTokenOut(Schema):
    token = Nested(TokenOut)
    secret = String()


class TokensOut(Schema):
    items = List(Nested(TokenOut))


class CursorQuery(Schema):
    limit = Integer(load_default=50, validate=Range(1, 500))
    cursor = String(load_default="", validate=Length(0, 4096))


class ListQuery(CursorQuery):
    """Paging and sorting; any indexed field of the record type is a filter as well."""

    state = String(validate=Regexp(r"^[A-Z_]{1,32}$", error="must be a record state, "
                                                            "e.g. OPEN"))
    sort = String(load_default="record_id", validate=Regexp(r"^[a-z_]{1,64}$"))
    descending = Boolean(load_default=False)


class TransactionQuery(CursorQuery):
    block_number = Integer(validate=Range(0, 2**62))
    function = String(validate=Length(1, 128))
    creator_msp = String(validate=Length(1, 128))
    valid = Boolean()


class PageOut(Schema):
    items = List(Dict())
    next_cursor = String()


class RecordRowOut(Schema):
    record_type = String()
    record_id = String()
    state = String()
    record = Dict()
    updated_at = Integer()
    updated_by = String()
    versions = Integer()
    tx_id = String()
    block_number = Integer()
    tx_time = String()


class RecordPageOut(Schema):
    items = List(Nested(RecordRowOut))
    next_cursor = String()


class RecordOut(Schema):
    record = Dict()


class BlockOut(Schema):
    block = Dict()
    transactions = List(Dict())


class TransactionOut(Schema):
    transaction = Dict()
    writes = List(Dict())


class VerifyIn(Schema):
    start = Integer(load_default=0, validate=Range(0, 2**62))
    stop = Integer(load_default=None, allow_none=True, validate=Range(0, 2**62))


class VerifyOut(Schema):
    ok = Boolean()
    start = Integer()
    stop = Integer()
    height = Integer()
    blocks_checked = Integer()
    transactions_checked = Integer()
    last_block_hash = String()
    inconsistency = Dict(allow_none=True)


class LagOut(Schema):
    projected = Integer()
    peer_height = Integer(allow_none=True)
    behind = Integer(allow_none=True)
    checked_at = Raw()


class FeedsOut(Schema):
    sources = List(String())
    last_import = Dict(allow_none=True)


class ArtifactOut(Schema):
    sha256 = String()
    size = Integer()
    created = Boolean()


class ResultOut(Schema):
    result = Raw(allow_none=True)


class SourceIn(Schema):
    name = String(required=True, validate=Length(1, 64))
    reference = String(required=True, validate=Length(1, 1024))


class VulnerabilityIn(Schema):
    vuln_id = String(required=True, validate=RECORD_ID)
    severity = String(required=True, validate=OneOf(SEVERITIES))
    title = String(load_default="", validate=Length(0, 1024))
    cvss_score = String(load_default="", validate=Regexp(r"^(\d{1,2}(\.\d)?)?$"))
    aliases = List(String(validate=RECORD_ID), load_default=list)
    known_exploited = Boolean(load_default=False)
    kev_due_date = String(load_default="", validate=Regexp(r"^(\d{4}-\d{2}-\d{2})?$",
                                                           error="must be YYYY-MM-DD"))
    sources = List(Nested(SourceIn), load_default=list)


class AssessmentIn(Schema):
    status = String(required=True, validate=OneOf(["NOT_AFFECTED", "OPEN", "MITIGATED"]))


class PatchIn(Schema):
    patch_id = String(required=True, validate=RECORD_ID)
    title = String(required=True, validate=Length(1, 1024))
    vendor = String(required=True, validate=Length(1, 256))
    artifact_sha256 = String(required=True, validate=SHA256)
    artifact_size = Integer(required=True, validate=Range(1, 2**40))
    artifact_uri = String(required=True, validate=Length(1, 2048))
    fixes = List(String(validate=RECORD_ID), required=True, validate=Length(1, 100))
    targets = List(String(validate=Length(1, 1024)), required=True, validate=Length(1, 100))
    supersedes = String(load_default="", validate=Regexp(r"^[\x21-\x2e\x30-\x7e]{0,256}$"))


class EvidenceIn(Schema):
    report_sha256 = String(required=True, validate=SHA256)
    uri = String(required=True, validate=Length(1, 2048))
    summary = String(required=True, validate=Length(1, 4096))
    passed = Boolean(required=True)


class DecisionIn(Schema):
    totp = String(required=True, validate=TOTP)
    comment = String(load_default="", validate=Length(0, 4096))
    valid_days = Integer(load_default=7, validate=Range(1, 30))


class RevokeIn(Schema):
    totp = String(required=True, validate=TOTP)
    reason = String(required=True, validate=Length(1, 4096))


class DocumentIn(Schema):
    """A record document passed to the contract, which validates every field of it."""

    document = Dict(required=True, keys=String(), values=Raw())


class PolicyProposalIn(Schema):
    proposal_id = String(required=True, validate=RECORD_ID)
    policy = Dict(required=True, keys=String(), values=Raw())


class InventoryIn(Schema):
    inventory_sha256 = String(required=True, validate=SHA256)


class HistoryOut(Schema):
    items = List(Dict())


class UserDetailOut(UserOut):
    """One user (a class of its own: apispec registers the nested UserOut by itself)."""


class TokenDetailOut(TokenOut):
    """One token (a class of its own: apispec registers the nested TokenOut by itself)."""


class RecordDetailOut(RecordRowOut):
    """One record (a class of its own: apispec registers the nested RecordRowOut itself)."""


class ProgressOut(Schema):
    rollout_id = String()
    state = String()
    current_wave = Raw(allow_none=True)
    waves = List(Dict())


class EnrollmentTokenIn(Schema):
    host_id = String(required=True, validate=Regexp(r"^[\x21-\x2e\x30-\x7e]{1,200}$"))
    valid_hours = Integer(load_default=24, validate=Range(1, 168))


class EnrollmentTokenOut(Schema):
    id = Integer()
    host_id = String()
    created_by = String()
    created_at = String()
    expires_at = String()
    used_at = String(allow_none=True)
    enrollment_id = String(allow_none=True)


class EnrollmentTokenDetailOut(EnrollmentTokenOut):
    """One enrollment token (a class of its own: apispec registers the nested one itself)."""


class NewEnrollmentTokenOut(Schema):
    token = Nested(EnrollmentTokenOut)
    secret = String()


class EnrollmentTokensOut(Schema):
    items = List(Nested(EnrollmentTokenOut))


class PackagesIn(Schema):
    format = String(required=True, validate=OneOf(["dpkg", "rpm", "sbom"]))
    content = Raw(required=True, metadata={"description": "dpkg/rpm query text, or the SBOM "
                                                         "(CycloneDX or SPDX JSON object)"})
    release = String(load_default=None, validate=Length(1, 64),
                     metadata={"description": "distribution release, e.g. bookworm"})
    criticality = String(load_default="medium",
                         validate=OneOf(["low", "medium", "high", "critical"]))


class StoredInventoryOut(Schema):
    host_id = String()
    inventory_sha256 = String()
    package_count = Integer()
    criticality = String()


class ImportOut(Schema):
    report = Dict()


class PasswordChangeIn(Schema):
    current_password = String(required=True, validate=Length(1, 1024))
    new_password = String(required=True, validate=Length(12, 1024))


class TotpStartIn(Schema):
    current_password = String(required=True, validate=Length(1, 1024))
    totp = String(required=True, validate=TOTP)


class PendingTotpOut(Schema):
    secret = String(metadata={"description": "the new base32 TOTP secret (shown once)"})
    uri = String(metadata={"description": "its otpauth:// URI, the QR code's content"})
    pending = String(metadata={"description": "the signed enrolment step 2 presents"})
    expires_in = Integer(metadata={"description": "seconds step 2 may wait"})


class TotpConfirmIn(Schema):
    pending = String(required=True, validate=Length(1, 4096))
    totp = String(required=True, validate=TOTP)


class CandidateQuery(CursorQuery):
    status = String(load_default="PENDING",
                    validate=OneOf(["PENDING", "CONFIRMED", "DISMISSED", "ANY"]),
                    metadata={"description": "PENDING (default), CONFIRMED, DISMISSED or ANY"})


class CandidatesQuery(CandidateQuery):
    vuln_id = String(validate=RECORD_ID,
                     metadata={"description": "the candidates whose most severe "
                                              "vulnerability this is"})


class CandidateOut(Schema):
    candidate_id = String()
    vuln_id = String()
    vuln_ids = List(String())
    package = String()
    fixed_version = String()
    advisory_ids = List(String())
    host_ids = List(String())
    severity = String()
    status = String()
    created_at = String()
    updated_at = String()
    decided_by = String()
    patch_id = String()


class CandidateDetailOut(CandidateOut):
    """One candidate (a class of its own: apispec registers the nested one itself)."""


class CandidatePageOut(Schema):
    items = List(Nested(CandidateOut))
    next_cursor = String()


class CandidateProposalIn(Schema):
    patch_id = String(required=True, validate=RECORD_ID)
    vendor = String(required=True, validate=Length(1, 256))
    title = String(load_default="", validate=Length(0, 1024),
                   metadata={"description": "default: the package, version and what it "
                                            "fixes"})
    artifact_sha256 = String(required=True, validate=SHA256)
    artifact_uri = String(load_default="", validate=Length(0, 2048),
                          metadata={"description": "default: this app's artifact URL"})


class CandidateProposalOut(Schema):
    result = Raw(allow_none=True)
    candidate = Nested(CandidateOut)
