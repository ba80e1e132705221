"""Trusted certificate authorities per MSP, for ledger verification."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from patchledger.app.fabric.errors import IdentityError
from patchledger.app.fabric.identity import load_certificate


@dataclass(frozen=True)
class TrustAnchors:
    """The CA certificates trusted for each MSP and which MSPs are orderers.

    Attributes:
        msp_cas: MSP id -> CA certificates (roots and intermediates) that issue its identities.
        orderer_msp_ids: MSPs whose members may sign blocks.
        min_orderer_signatures: valid orderer signatures required on every non-genesis block.
    """

    msp_cas: Mapping[str, Sequence[x509.Certificate]]
    orderer_msp_ids: frozenset[str]
    min_orderer_signatures: int = 1
    _cache: dict[tuple[str, bytes], bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_msp_dirs(
        cls,
        msp_dirs: Mapping[str, str | Path],
        orderer_msp_ids: Iterable[str],
        *,
        min_orderer_signatures: int = 1,
    ) -> TrustAnchors:
        """Load ``cacerts/*`` and ``intermediatecerts/*`` of each MSP directory.

        Raises:
            IdentityError: an MSP directory holds no CA certificate or an invalid one.
        """
        cas: dict[str, list[x509.Certificate]] = {}
        for msp_id, directory in msp_dirs.items():
            certs: list[x509.Certificate] = []
            for sub in ("cacerts", "intermediatecerts"):
                for file in sorted((Path(directory) / sub).glob("*.pem")):
                    try:
                        certs.extend(x509.load_pem_x509_certificates(file.read_bytes()))
                    except (OSError, ValueError) as exc:
                        raise IdentityError(f"{file}: invalid CA certificate: {exc}") from exc
            if not certs:
                raise IdentityError(f"{directory}: no CA certificate in cacerts/")
            cas[msp_id] = certs
        return cls(cas, frozenset(orderer_msp_ids), min_orderer_signatures)

    def issued_by_msp(self, msp_id: str, cert_pem: bytes) -> bool:
        """Tell whether a certificate was issued by one of ``msp_id``'s CAs."""
        key = (msp_id, cert_pem)
        if key not in self._cache:
            self._cache[key] = self._check(msp_id, cert_pem)
        return self._cache[key]

    def _check(self, msp_id: str, cert_pem: bytes) -> bool:
        try:
            cert = load_certificate(cert_pem)
        except IdentityError:
            return False
        for ca in self.msp_cas.get(msp_id, ()):
            if ca.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return True
        return False
