"""Signed consent to the first policy: the channel's organizations agree to the bootstrap.

The first policy decides who approves everything afterwards, so no one organization may set it
alone. An organization consents by its admin signing a :class:`PolicyConsent`: the canonical
digest of the exact first policy (:func:`policy_digest`), the channel, the organization and
admin, and an expiry. A consent travels as a :class:`SignedConsent`, the usual envelope
(:class:`~chaincode.lifecycle.envelope.Signed`) plus the admin's certificate:
``{"consent": {...}, "signature": "<base64 DER>", "certificate": "<PEM>"}``.

The certificate is data, not the transaction creator, so :func:`verify_consents` checks it the
way host certificates are checked: it must carry ``role=admin`` and the consent's enrollment id,
be valid at the transaction time and be directly issued by a root of the consent's
organization in the contract's :class:`~chaincode.lifecycle.trust.OrgTrust` (no root
configured for it: refused). Then the signature, the digest, the channel and the expiry. The
policy is written only when consents of :func:`consent_quorum` distinct channel organizations
are given (a majority of them, at least 2); a bad consent refuses the whole transaction, never
silently dropped, and a second consent of the same organization is refused too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from cryptography.hazmat.primitives.asymmetric import ec

from patchledger.chaincode.lifecycle.envelope import Signed
from patchledger.chaincode.lifecycle.errors import (
    AuthorizationError,
    ExpiredError,
    SignatureError,
    ValidationError,
)
from patchledger.chaincode.lifecycle.fields import identifier, integer, sha256_hex, text
from patchledger.chaincode.lifecycle.identity import (
    Role,
    caller_from_certificate,
    certificate_attributes,
    load_certificate,
)
from patchledger.chaincode.lifecycle.policy import DEFAULT_POLICY_ID, QUORUM_FLOOR, Policy
from patchledger.chaincode.lifecycle.record import Document
from patchledger.chaincode.lifecycle.signatures import sign
from patchledger.chaincode.lifecycle.trust import OrgTrust

__all__ = [
    "MAX_CONSENT_VALIDITY",
    "PolicyConsent",
    "SignedConsent",
    "consent_quorum",
    "initial_policy",
    "new_consent",
    "policy_digest",
    "verify_consents",
]

#: Longest time a consent may reach into the future: consents are collected for one bootstrap.
MAX_CONSENT_VALIDITY = 7 * 86_400


def initial_policy(data: Mapping[str, Any]) -> Policy:
    """The first policy as it will be written: ``data`` as policy ``default``, version 1.

    Raises:
        ValidationError: ``policy_id`` is given and is not ``default``, or the policy is
            malformed.
    """
    if data.get("policy_id", DEFAULT_POLICY_ID) != DEFAULT_POLICY_ID:
        raise ValidationError("policy_id", f"the ledger is initialized with {DEFAULT_POLICY_ID!r}")
    return Policy.from_dict({**data, "policy_id": DEFAULT_POLICY_ID, "version": 1})


def policy_digest(policy: Policy) -> str:
    """The SHA-256 (hex) of the policy's canonical JSON: what admins consent to."""
    return hashlib.sha256(policy.to_json()).hexdigest()


def consent_quorum(channel_orgs: Sequence[str]) -> int:
    """Consents needed for the first policy: a majority of the channel's organizations,
    at least :data:`~chaincode.lifecycle.policy.QUORUM_FLOOR` (2)."""
    return max(QUORUM_FLOOR, len(set(channel_orgs)) // 2 + 1)


@dataclass(frozen=True, kw_only=True)
class PolicyConsent(Document):
    """What an organization's admin signs to consent to the first policy."""

    RECORD_TYPE = "PolicyConsent"
    policy_id: str
    policy_sha256: str
    channel_id: str
    msp_id: str
    admin: str
    expires_at: int

    def validate(self) -> None:
        """Check the consent's fields.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("policy_id", self.policy_id)
        sha256_hex("policy_sha256", self.policy_sha256)
        text("channel_id", self.channel_id, limit=256)
        identifier("msp_id", self.msp_id)
        text("admin", self.admin, limit=256)
        integer("expires_at", self.expires_at, minimum=1)


@dataclass(frozen=True)
class SignedConsent(Signed[PolicyConsent]):
    """A consent, its signature and the signer's certificate (see the module docstring)."""

    BODY = "consent"
    DOCUMENT = PolicyConsent

    certificate: str = ""

    @property
    def consent(self) -> PolicyConsent:
        """The signed consent."""
        return self.body

    def to_dict(self) -> dict[str, Any]:
        """``{"consent": {...}, "signature": "...", "certificate": "<PEM>"}``."""
        return {**super().to_dict(), "certificate": self.certificate}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a consent envelope.

        Raises:
            ValidationError: not an object, the consent is missing or malformed, the signature
                is not a string, or the certificate is not an ASCII PEM string.
        """
        signed = super().from_dict(data)
        certificate = data.get("certificate")
        if not isinstance(certificate, str) or not certificate or not certificate.isascii():
            raise ValidationError("certificate", "must be the signing admin's PEM certificate")
        return cls(signed.body, signed.signature, certificate)


def new_consent(
    data: Mapping[str, Any],
    *,
    key: ec.EllipticCurvePrivateKey,
    cert_pem: bytes,
    msp_id: str,
    channel_id: str,
    expires_at: int,
) -> dict[str, Any]:
    """An admin's signed consent to the first policy ``data``, as ``InitLedger`` takes it.

    Raises:
        ValidationError: malformed policy or fields, or a certificate without a role.
        AuthorizationError: the certificate carries no known role.
    """
    admin = caller_from_certificate(msp_id, cert_pem).name
    body = PolicyConsent(
        policy_id=DEFAULT_POLICY_ID,
        policy_sha256=policy_digest(initial_policy(data)),
        channel_id=channel_id,
        msp_id=msp_id,
        admin=admin,
        expires_at=expires_at,
    )
    signature = SignedConsent.create(body, sign(key, body.to_json())).signature
    return SignedConsent(body, signature, cert_pem.decode("ascii")).to_dict()


def _verify_one(
    signed: SignedConsent,
    *,
    field: str,
    digest: str,
    channel_id: str,
    channel_orgs: frozenset[str],
    trust: OrgTrust,
    now: int,
) -> None:
    consent = signed.consent
    what = f"consent of admin {consent.admin!r} ({consent.msp_id})"
    if consent.msp_id not in channel_orgs:
        raise ValidationError(
            f"{field}.consent.msp_id",
            f"{consent.msp_id} is not an organization of the channel"
            f" ({', '.join(sorted(channel_orgs)) or 'none configured'})",
        )
    pem = signed.certificate.encode("ascii")
    cert = load_certificate(pem, f"{field}.certificate")
    attrs = certificate_attributes(cert)
    if attrs.get("role") != Role.ADMIN.value:
        raise AuthorizationError(
            f"{what}: signed with a certificate of role {attrs.get('role', '(none)')!r};"
            " only an organization's admin (role=admin) consents to the first policy"
        )
    if caller_from_certificate(consent.msp_id, pem).name != consent.admin:
        raise ValidationError(
            f"{field}.consent.admin", f"{what}: the certificate is not the admin's"
        )
    trust.check_issued(
        cert, consent.msp_id, now=now, argument=f"{field}.certificate",
        what=f"certificate of admin {consent.admin!r} ({consent.msp_id})",
    )
    signed.verify_signature(pem, what)
    if consent.policy_id != DEFAULT_POLICY_ID or consent.policy_sha256 != digest:
        raise SignatureError(
            f"{what}: given for policy {consent.policy_id!r} digest"
            f" {consent.policy_sha256[:12]}..., not for this policy (digest {digest[:12]}...)"
        )
    if consent.channel_id != channel_id:
        raise SignatureError(
            f"{what}: given for channel {consent.channel_id!r}, not {channel_id!r}"
        )
    if now >= consent.expires_at:
        raise ExpiredError(f"{what}: expired at {consent.expires_at} (now {now})")
    if consent.expires_at - now > MAX_CONSENT_VALIDITY:
        raise ExpiredError(f"{what}: valid for longer than {MAX_CONSENT_VALIDITY} s")


def verify_consents(
    consents: Any,
    policy: Policy,
    *,
    channel_id: str,
    channel_orgs: Sequence[str],
    trust: OrgTrust,
    now: int,
) -> tuple[str, ...]:
    """Check the consents to the first policy; return the consenting organizations, sorted.

    Args:
        consents: the list of :class:`SignedConsent` objects as the transaction carries it.
        policy: the first policy as it will be written (:func:`initial_policy`).
        channel_id: the transaction's channel.
        channel_orgs: the channel's organizations (those of ``trust``).
        trust: the organizations' root certificates.
        now: the transaction time.

    Raises:
        ValidationError: ``consents`` is not a list, a consent is malformed, names an
            organization outside the channel or an enrollment id not its certificate's, its
            certificate is expired or not yet valid, two consents of one organization, or
            fewer than :func:`consent_quorum` distinct organizations consent.
        AuthorizationError: a consent's certificate is not an admin's.
        SignatureError: forged or altered, a certificate not issued by its organization's
            root (or no root configured), given for another policy digest or channel.
        ExpiredError: expired, or reaching further than :data:`MAX_CONSENT_VALIDITY`.
    """
    if not isinstance(consents, list):
        raise ValidationError("consents", "must be a list of signed consents")
    digest = policy_digest(policy)
    orgs = frozenset(channel_orgs)
    seen: set[str] = set()
    for index, item in enumerate(consents):
        field = f"consents[{index}]"
        try:
            signed = SignedConsent.from_dict(item)
        except ValidationError as exc:
            raise ValidationError(f"{field}.{exc.field}", exc.problem) from exc
        _verify_one(signed, field=field, digest=digest, channel_id=channel_id,
                    channel_orgs=orgs, trust=trust, now=now)
        msp = signed.consent.msp_id
        if msp in seen:
            raise ValidationError(
                f"{field}.consent.msp_id",
                f"a second consent of {msp}: each organization consents once and counts once",
            )
        seen.add(msp)
    needed = consent_quorum(channel_orgs)
    if len(seen) < needed:
        raise ValidationError(
            "consents",
            f"the first policy needs the signed consent of {needed} of the channel's"
            f" {len(orgs)} organizations' admins; given {len(seen)}"
            f" ({', '.join(sorted(seen)) or 'none'})",
        )
    return tuple(sorted(seen))
