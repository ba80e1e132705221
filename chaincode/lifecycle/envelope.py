"""Signed envelopes: a document of the core and the signature of its canonical bytes.

Approval statements and host reports travel the same way: ``{"<body>": {...}, "signature":
"<base64 DER>"}``, where the signer signed ``body.to_json()`` (canonical JSON, ``record_type``
and ``schema_version`` included) with ECDSA P-256/SHA-256, low S. :class:`Signed` is that
envelope once; :class:`~chaincode.lifecycle.statement.SignedStatement` and
:class:`~chaincode.lifecycle.host_report.SignedReport` only name their body member and type.
What a signature must additionally be bound to (a patch and artifact, a replay counter) is
checked by each document's own ``verify_*`` function after :meth:`Signed.verify_signature`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.record import Document
from patchledger.chaincode.lifecycle.signatures import decode_b64, encode_b64, verify

D = TypeVar("D", bound=Document)


@dataclass(frozen=True)
class Signed(Generic[D]):
    """A document and its base64 DER signature.

    Subclasses set ``BODY`` (the member holding the document) and ``DOCUMENT`` (its type).
    """

    BODY: ClassVar[str] = ""
    DOCUMENT: ClassVar[type[Document]] = Document

    body: D
    signature: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``{BODY: {...}, "signature": "..."}``."""
        return {self.BODY: self.body.to_dict(), "signature": self.signature}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse an envelope.

        Raises:
            ValidationError: not an object, the body is missing or not of ``DOCUMENT``'s
                record type or malformed, or the signature is not a non-empty string.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(cls.BODY, "must be an object")
        kind = cls.DOCUMENT.RECORD_TYPE
        body = data.get(cls.BODY)
        if not isinstance(body, Mapping) or body.get("record_type") != kind:
            article = "an" if kind[:1] in "AEIOU" else "a"
            raise ValidationError(cls.BODY, f"must be {article} {kind} object")
        signature = data.get("signature")
        if not isinstance(signature, str) or not signature:
            raise ValidationError("signature", "must be a base64 string")
        return cls(cast(D, cls.DOCUMENT.from_dict(body)), signature)

    @classmethod
    def create(cls, body: D, signature_der: bytes) -> Self:
        """Wrap a document and its DER signature."""
        return cls(body, encode_b64(signature_der))

    def verify_signature(self, cert_pem: bytes, what: str) -> None:
        """Check that the key of ``cert_pem`` signed the body's canonical bytes.

        Raises:
            ValidationError: the certificate is not PEM.
            SignatureError: not base64, malformed DER, high S, wrong key or altered body.
        """
        verify(cert_pem, self.body.to_json(), decode_b64(self.signature, what), what)
