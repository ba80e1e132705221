"""Enrollment: a one-time token turns this host into an enrolled one, with a key that never
leaves it, a certificate from its organization's CA and the organizations' roots pinned.

Order (docs/agent.md, "Enrollment")::

    1. GET  /api/v1/agent/enrollment-bundle      ?nonce=<fresh 64 hex>: the organization's MSP
                                                 id, the roots of every organization, and the
                                                 endorsed AttestChannelRoots(nonce) bundle
    2. verify the roots                          BEFORE the token is spent: the attested roots
                                                 whose fingerprint is the administrator's
                                                 (``--roots-fingerprint``, checked by
                                                 :func:`agent.attestation.verify_channel_roots`
                                                 through :func:`attested_roots`), and/or each
                                                 organization's root matching a fingerprint
                                                 given out of band
                                                 (``--fingerprint [MSP=]sha256:<hex>``)
    3. generate the key (P-256) here, mode 0600  (reused when an earlier attempt failed after
                                                 this step)
    4. POST /api/v1/agent/enroll                 {token, host_id, csr_pem}; the key stays here
    5. check the certificate                     our public key, CN = host id, Fabric CA
                                                 attributes role=host and host_id, directly
                                                 issued by the verified root of our
                                                 organization, valid now
    6. store (durably)                           host.key (0600), host.pem, roots.json,
                                                 tls-ca.pem, enrollment.json

The app's TLS certificate is checked against the CA file given to ``enroll`` (``--ca-file``,
the organization's TLS root, handed out with the token): the token never goes to an
unauthenticated server. Nothing is pinned on the app's word alone: a root with neither a
matching fingerprint nor an attestation refuses the enrollment, naming the organizations.

A per-root fingerprint is ``sha256:`` and the hex SHA-256 of the root certificate's DER
encoding (``openssl x509 -in root.pem -outform DER | sha256sum``); one without ``MSP=`` is for
the host's own organization. The channel roots fingerprint is
:func:`chaincode.lifecycle.attestation.roots_fingerprint` of all organizations' roots.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchledger.agent.attestation import DEFAULT_MIN_ENDORSERS, verify_channel_roots
from patchledger.agent.durable import fsync_dir, write_durably, write_json_durably
from patchledger.agent.errors import AgentError, AttestationError
from patchledger.agent.transport import ProtocolError, Transport, TransportError
from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.identity import certificate_attributes
from patchledger.chaincode.lifecycle.trust import OrgTrust

__all__ = [
    "Bundle",
    "Enrolled",
    "EnrollmentError",
    "RootsVerifier",
    "attested_roots",
    "build_csr",
    "enroll",
    "fingerprint",
    "load_enrollment",
    "load_or_create_key",
    "parse_fingerprints",
    "store_enrollment",
]

log = logging.getLogger("patchledger.agent.enroll")

KEY_FILE = "host.key"
CERT_FILE = "host.pem"
ROOTS_FILE = "roots.json"
TLS_CA_FILE = "tls-ca.pem"
RECORD_FILE = "enrollment.json"
_FINGERPRINT = re.compile(r"^sha256:([0-9a-f]{64})$")
_HOST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class EnrollmentError(AgentError):
    """Enrollment refused or failed; nothing is pinned (the key may stay for a retry)."""


@dataclass(frozen=True)
class Bundle:
    """The enrollment bundle as the app served it.

    Attributes:
        msp_id: the host's organization.
        roots: MSP id -> root certificates.
        nonce: the nonce the agent sent (the attestation must carry it).
        raw: the decoded JSON (for the attested-roots verifier: its ``attestation``).
    """

    msp_id: str
    roots: Mapping[str, tuple[x509.Certificate, ...]]
    nonce: str
    raw: Mapping[str, Any]


#: Verifies the roots attested by peers: given the bundle, the roots to pin (all organizations
#: the attestation covers), or raise EnrollmentError. :func:`attested_roots` makes one.
RootsVerifier = Callable[[Bundle], OrgTrust]


@dataclass(frozen=True)
class Enrolled:
    """An enrolled host's identity and trust, as stored in the state directory."""

    host_id: str
    msp_id: str
    server: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    roots: OrgTrust
    key_file: Path
    cert_file: Path
    tls_ca_file: Path


def fingerprint(cert: x509.Certificate) -> str:
    """``sha256:<hex>`` of the certificate's DER encoding."""
    return "sha256:" + hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def parse_fingerprints(values: Sequence[str]) -> dict[str, str]:
    """``[MSP=]sha256:<hex>`` options as MSP id -> fingerprint ("" is the host's own
    organization).

    Raises:
        EnrollmentError: a value of another shape, naming it.
    """
    out: dict[str, str] = {}
    for value in values:
        msp, _, fp = value.rpartition("=")
        fp = fp.strip().lower()
        if not _FINGERPRINT.match(fp):
            raise EnrollmentError(f"fingerprint {value!r} is not [MSP=]sha256:<64 hex digits>")
        out[msp.strip()] = fp
    return out


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The host key at ``path``, created (P-256, PKCS#8 PEM, mode 0600, fsynced) when absent.

    Raises:
        EnrollmentError: the file exists but is readable by others or is not an EC key.
    """
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise EnrollmentError(f"host key {path} has mode {mode:o}; it must be 0600")
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise EnrollmentError(f"host key {path} is not a PEM private key") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise EnrollmentError(f"host key {path} is not an EC key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_durably(path, pem, mode=0o600)
    return key


def build_csr(key: ec.EllipticCurvePrivateKey, host_id: str) -> bytes:
    """A PEM CSR with CN = ``host_id``, signed with ``key`` (SHA-256)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_id)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _load_roots(doc: Any, where: str) -> dict[str, tuple[x509.Certificate, ...]]:
    if not isinstance(doc, dict) or not doc:
        raise ProtocolError(where, "'roots' must be a non-empty object MSP id -> [PEM]")
    roots: dict[str, tuple[x509.Certificate, ...]] = {}
    for msp, pems in doc.items():
        if not isinstance(pems, list) or not pems or not all(isinstance(p, str) for p in pems):
            raise ProtocolError(where, f"roots.{msp} must be a non-empty list of PEM strings")
        try:
            roots[str(msp)] = tuple(x509.load_pem_x509_certificate(p.encode()) for p in pems)
        except ValueError as exc:
            raise ProtocolError(where, f"roots.{msp} holds a malformed certificate") from exc
    return roots


def fetch_bundle(transport: Transport, nonce: str) -> Bundle:
    """``GET /api/v1/agent/enrollment-bundle?nonce=<nonce>``.

    Raises:
        TransportError: the app is unreachable or refused.
        ProtocolError: the answer is malformed.
    """
    path = f"/api/v1/agent/enrollment-bundle?nonce={nonce}"
    where = transport.endpoint("GET", path)
    doc = transport.request("GET", path).json(where)
    if not isinstance(doc, dict) or not isinstance(doc.get("msp_id"), str):
        raise ProtocolError(where, "the bundle must be an object with 'msp_id' and 'roots'")
    roots = _load_roots(doc.get("roots"), where)
    if doc["msp_id"] not in roots:
        raise ProtocolError(where, f"the bundle has no root of the host's own {doc['msp_id']}")
    return Bundle(doc["msp_id"], roots, nonce, doc)


def attested_roots(*, fingerprint: str, channel: str, chaincode: str, now: int,
                   min_endorsers: int = DEFAULT_MIN_ENDORSERS) -> RootsVerifier:
    """A :data:`RootsVerifier` checking the bundle's ``attestation`` (an endorsed
    ``AttestChannelRoots(nonce)``) with :func:`agent.attestation.verify_channel_roots` against
    the administrator's channel roots ``fingerprint``.

    Raises (from the verifier):
        EnrollmentError: no attestation, or it does not verify (naming why).
    """
    def verify(bundle: Bundle) -> OrgTrust:
        attestation = bundle.raw.get("attestation")
        if not isinstance(attestation, Mapping):
            raise EnrollmentError("the app served no attestation of the channel roots, and"
                                  " --roots-fingerprint needs one")
        try:
            return verify_channel_roots(attestation, channel=channel, chaincode=chaincode,
                                        nonce=bundle.nonce, fingerprint=fingerprint.removeprefix(
                                            "sha256:"), now=now, min_endorsers=min_endorsers)
        except AttestationError as exc:
            raise EnrollmentError(f"the channel roots attestation does not verify: {exc}") \
                from exc
    return verify


def _ders(certs: Sequence[x509.Certificate]) -> set[bytes]:
    return {c.public_bytes(serialization.Encoding.DER) for c in certs}


def verify_roots(bundle: Bundle, fingerprints: Mapping[str, str],
                 verifier: RootsVerifier | None) -> OrgTrust:
    """The roots to pin: the attested ones (``verifier``), and served roots confirmed by a
    per-root fingerprint (module docstring).

    Raises:
        EnrollmentError: a fingerprint matches none of its organization's roots or names an
            organization the bundle lacks; the app served other roots than the attested ones;
            served organizations remain unconfirmed; the host's own organization is not among
            the pinned ones.
    """
    pinned: dict[str, tuple[x509.Certificate, ...]] = {}
    if verifier is not None:
        attested = verifier(bundle)
        for msp, certs in bundle.roots.items():
            if msp in attested.roots and _ders(certs) != _ders(attested.roots[msp]):
                raise EnrollmentError(
                    f"the app serves other roots of {msp} than the peers attest: refusing to"
                    " enroll (a forged bundle)"
                )
        pinned.update(attested.roots)
    wanted = {(bundle.msp_id if msp == "" else msp): fp for msp, fp in fingerprints.items()}
    for msp, fp in sorted(wanted.items()):
        offered = bundle.roots.get(msp)
        if not offered:
            raise EnrollmentError(f"a fingerprint was given for {msp}, the bundle has no root"
                                  " of it")
        served = [fingerprint(c) for c in offered]
        if fp not in served:
            raise EnrollmentError(
                f"{msp}'s root served by the app has fingerprint {', '.join(served)}, not the"
                f" {fp} given: refusing to enroll (a wrong server or a forged bundle)"
            )
        pinned.setdefault(msp, offered)
    missing = sorted(set(bundle.roots) - set(pinned))
    if missing:
        raise EnrollmentError(
            f"the roots of {', '.join(missing)} are confirmed neither by a fingerprint"
            " (--fingerprint MSP=sha256:...) nor by the attested channel roots"
            " (--roots-fingerprint): refusing to pin them on the app's word alone"
        )
    if bundle.msp_id not in pinned:
        raise EnrollmentError(f"the host's own organization {bundle.msp_id} is not among the"
                              " attested roots")
    return OrgTrust({msp: pinned[msp] for msp in sorted(pinned)})


def check_certificate(pem: str, *, key: ec.EllipticCurvePrivateKey, host_id: str,
                      msp_id: str, roots: OrgTrust, now: int) -> x509.Certificate:
    """Check the issued certificate (step 5 of the module docstring).

    Raises:
        EnrollmentError: naming what is wrong.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise EnrollmentError("the app returned a malformed certificate") from exc
    ours = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    theirs = cert.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    if ours != theirs:
        raise EnrollmentError("the certificate is for another key than this host's")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != host_id:
        raise EnrollmentError(f"the certificate's CN is not the host id {host_id!r}")
    try:
        attrs = certificate_attributes(cert)
    except ValidationError as exc:
        raise EnrollmentError("the certificate's Fabric CA attributes are malformed") from exc
    if attrs.get("role") != "host" or attrs.get("host_id") != host_id:
        raise EnrollmentError(
            f"the certificate has role={attrs.get('role')!r} host_id={attrs.get('host_id')!r},"
            f" not role='host' host_id={host_id!r}"
        )
    moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    for root in roots.roots.get(msp_id, ()):
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            return cert
        raise EnrollmentError("the issued certificate is not valid now")
    raise EnrollmentError(f"the certificate was not issued by {msp_id}'s verified root")


def enroll(
    transport: Transport,
    *,
    host_id: str,
    token: str,
    state_dir: Path,
    fingerprints: Mapping[str, str],
    tls_ca_pem: bytes,
    verifier: RootsVerifier | None = None,
    now: int,
) -> Enrolled:
    """Enroll this host (module docstring).

    Args:
        transport: to the app, checked against its TLS CA (no client certificate yet).
        host_id: the host's id (the certificate's CN and ``host_id``).
        token: the one-time enrollment token.
        state_dir: where the identity is stored.
        fingerprints: :func:`parse_fingerprints`' result.
        tls_ca_pem: the app's TLS CA (stored for later runs).
        verifier: the attested-roots verifier (:func:`attested_roots`), when the administrator
            gave the channel roots fingerprint.
        now: seconds since the epoch.

    Raises:
        EnrollmentError: already enrolled, a bad host id, roots not confirmed, the token
            refused, or a certificate that does not check; nothing is pinned.
        TransportError: the app is unreachable (retry later; the token is not spent if the
            request never arrived).
    """
    if not _HOST_ID.match(host_id):
        raise EnrollmentError(f"host id {host_id!r} must be 1-128 of A-Z a-z 0-9 . _ -,"
                              " starting with a letter or digit")
    if (state_dir / RECORD_FILE).exists():
        raise EnrollmentError(f"{state_dir} already holds an enrollment"
                              f" ({state_dir / RECORD_FILE}); remove it to enroll again")
    bundle = fetch_bundle(transport, secrets.token_hex(32))
    roots = verify_roots(bundle, fingerprints, verifier)
    key = load_or_create_key(state_dir / KEY_FILE)
    path = "/api/v1/agent/enroll"
    where = transport.endpoint("POST", path)
    try:
        answer = transport.request("POST", path, document={
            "token": token, "host_id": host_id, "csr_pem": build_csr(key, host_id).decode(),
        }).json(where)
    except TransportError as exc:
        if exc.status in (400, 401, 403, 409, 410):
            raise EnrollmentError(f"enrollment of {host_id!r} refused: {exc}") from exc
        raise
    if not isinstance(answer, dict) or not isinstance(answer.get("certificate_pem"), str):
        raise ProtocolError(where, "the answer must be an object with 'certificate_pem'")
    if answer.get("msp_id", bundle.msp_id) != bundle.msp_id:
        raise EnrollmentError(f"the certificate is for {answer.get('msp_id')!r}, the bundle"
                              f" said {bundle.msp_id!r}")
    cert = check_certificate(answer["certificate_pem"], key=key, host_id=host_id,
                             msp_id=bundle.msp_id, roots=roots, now=now)
    store_enrollment(state_dir, cert, roots, tls_ca_pem, {
        "host_id": host_id, "msp_id": bundle.msp_id, "server": transport.base_url,
        "enrolled_at": now, "certificate_fingerprint": fingerprint(cert),
        "poll_interval": answer.get("poll_interval"),
    })
    log.info("host %s enrolled with %s (%s); pinned roots of %s", host_id, transport.base_url,
             bundle.msp_id, ", ".join(roots.organizations))
    return load_enrollment(state_dir)


def store_enrollment(state_dir: Path, cert: x509.Certificate, roots: OrgTrust,
                     tls_ca_pem: bytes, record: dict[str, Any]) -> None:
    """Write an enrollment: the certificate, the TLS CA, the pinned roots, and last the record
    (``host_id``, ``msp_id``, ``server``, ...) whose presence means enrolled. The host key is
    already in ``state_dir`` (:func:`load_or_create_key`). Used by :func:`enroll`, and by
    whoever obtained the identity another way (a test with a CA-issued one).

    Raises:
        OSError: the state directory cannot be written.
    """
    write_durably(state_dir / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM),
                  mode=0o644)
    write_durably(state_dir / TLS_CA_FILE, tls_ca_pem, mode=0o644)
    write_json_durably(state_dir / ROOTS_FILE, {
        msp: [c.public_bytes(serialization.Encoding.PEM).decode() for c in certs]
        for msp, certs in roots.roots.items()
    })
    fsync_dir(state_dir)
    write_json_durably(state_dir / RECORD_FILE, record)  # last: its presence means enrolled


def load_enrollment(state_dir: Path) -> Enrolled:
    """The stored enrollment.

    Raises:
        EnrollmentError: not enrolled, or a file is missing or malformed.
    """
    record_path = state_dir / RECORD_FILE
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        roots_doc = json.loads((state_dir / ROOTS_FILE).read_text(encoding="utf-8"))
        cert = x509.load_pem_x509_certificate((state_dir / CERT_FILE).read_bytes())
        roots = OrgTrust.from_pem({m: "".join(p) for m, p in roots_doc.items()})
        host_id, msp_id, server = record["host_id"], record["msp_id"], record["server"]
    except FileNotFoundError as exc:
        raise EnrollmentError(f"this host is not enrolled ({exc.filename} is missing):"
                              " run 'patchledger-agent enroll'") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
        raise EnrollmentError(f"the enrollment in {state_dir} is unreadable: {exc}") from exc
    key = load_or_create_key(state_dir / KEY_FILE) if (state_dir / KEY_FILE).exists() else None
    if key is None:
        raise EnrollmentError(f"the host key {state_dir / KEY_FILE} is missing")
    return Enrolled(str(host_id), str(msp_id), str(server), key, cert, roots,
                    state_dir / KEY_FILE, state_dir / CERT_FILE, state_dir / TLS_CA_FILE)
