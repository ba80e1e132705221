"""The organizations' root certificates: which CA may issue a certificate the core gets as data.

Fabric validates the transaction creator's certificate against the channel's MSP before the
chaincode runs, so a :class:`~chaincode.lifecycle.identity.Caller` is already trusted. A
certificate passed as an argument (the host certificate of ``EnrollHost``) is only data: the
core itself must check that the owner organization's CA issued it, or a compromised
organization app could register a certificate it minted and then sign that "host"'s reports.

Chaincode cannot read the channel's MSP configuration, so each organization's chaincode server
is given the channel organizations' root certificates when it is deployed (the contract reads
them at the process edge) and the core receives them as an :class:`OrgTrust`: plain data, no
I/O. An organization absent from it is not trusted at all (fail closed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from patchledger.chaincode.lifecycle.errors import SignatureError, ValidationError

__all__ = ["OrgTrust"]


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _valid_at(cert: x509.Certificate, moment: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc


@dataclass(frozen=True, eq=False)
class OrgTrust:
    """The root CA certificates of each organization, by MSP id.

    Attributes:
        roots: MSP id -> the certificates that may directly issue that organization's
            certificates (its CA root; more than one during a CA key rollover, or the
            intermediate CAs when the organization issues from intermediates).
    """

    roots: Mapping[str, tuple[x509.Certificate, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen = {msp: tuple(certs) for msp, certs in self.roots.items()}
        object.__setattr__(self, "roots", MappingProxyType(frozen))

    @classmethod
    def from_pem(cls, pems: Mapping[str, bytes | str]) -> OrgTrust:
        """Build the trust from PEM text per MSP id (one or more certificates each).

        Raises:
            ValidationError: an entry holds no PEM certificate or a malformed one.
        """
        roots: dict[str, tuple[x509.Certificate, ...]] = {}
        for msp_id, pem in pems.items():
            data = pem.encode("ascii") if isinstance(pem, str) else pem
            try:
                roots[msp_id] = tuple(x509.load_pem_x509_certificates(data))
            except ValueError as exc:
                raise ValidationError(
                    f"roots.{msp_id}", "is not a bundle of PEM X.509 certificates"
                ) from exc
        return cls(roots)

    @property
    def organizations(self) -> tuple[str, ...]:
        """The MSP ids with at least one root, sorted."""
        return tuple(sorted(msp for msp, certs in self.roots.items() if certs))

    def check_issued(
        self, cert: x509.Certificate, msp_id: str, *, now: int, argument: str, what: str
    ) -> None:
        """Refuse unless ``cert`` is valid at ``now`` and directly issued by a root of
        ``msp_id`` that is itself valid at ``now``.

        Args:
            cert: the certificate received as data.
            msp_id: the organization whose CA must have issued it.
            now: the transaction time, seconds since the epoch.
            argument: the argument that carried it (named in a ValidationError).
            what: how to name it in messages, e.g. ``certificate of host 'h1' (ITOpsMSP)``.

        Raises:
            SignatureError: no root of ``msp_id`` is configured (fail closed), or none of its
                roots issued ``cert``.
            ValidationError: ``cert`` is expired or not yet valid at ``now``.
        """
        roots = self.roots.get(msp_id, ())
        if not roots:
            raise SignatureError(
                f"the {what}: no root certificate of {msp_id} is configured on this chaincode"
                f" server, so it cannot check that {msp_id}'s CA issued it (refused)"
            )
        moment = _utc(now)
        if not _valid_at(cert, moment):
            raise ValidationError(
                argument,
                f"the {what} is not valid at the transaction time {moment.isoformat()} (valid"
                f" from {cert.not_valid_before_utc.isoformat()} until"
                f" {cert.not_valid_after_utc.isoformat()})",
            )
        for root in roots:
            if not _valid_at(root, moment):
                continue
            try:
                cert.verify_directly_issued_by(root)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return
        raise SignatureError(
            f"the {what} was not issued by a valid root certificate of {msp_id}"
            f" (its issuer: {cert.issuer.rfc4514_string() or '(empty)'})"
        )
