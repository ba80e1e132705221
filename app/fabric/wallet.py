"""A directory wallet that keeps identities encrypted at rest.

Each identity is one JSON file ``<label>.id`` holding the MSP id, the certificate (public) and
the private key encrypted with AES-256-GCM. The key-encryption key is derived from the wallet's
passphrase with scrypt and a random salt per entry; the label and MSP id are bound to the
ciphertext as associated data, so an entry cannot be renamed or moved to another MSP unnoticed.
Files are written atomically (temp file, fsync, rename) with mode 0600.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from patchledger.app.fabric.errors import FabricError, WalletError
from patchledger.app.fabric.identity import Identity
from patchledger.app.fabric.signing import EcdsaSigner
from patchledger.common.durable import write_atomic

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_FORMAT = "patchledger-wallet/1"


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters (defaults: 2**15, 8, 1, about 32 MiB and 0.1 s per unlock)."""

    n: int = 2**15
    r: int = 8
    p: int = 1


class Wallet:
    """Identities stored encrypted in a directory.

    Args:
        path: the wallet directory (created with mode 0700 if missing).
        passphrase: the secret from which entry keys are derived.
        scrypt: cost parameters for new entries (stored entries keep their own).
    """

    def __init__(
        self, path: str | Path, passphrase: str | bytes, *, scrypt: ScryptParams | None = None
    ) -> None:
        if not passphrase:
            raise WalletError("a wallet needs a non-empty passphrase")
        self._path = Path(path)
        self._passphrase = passphrase.encode() if isinstance(passphrase, str) else passphrase
        self._scrypt = scrypt or ScryptParams()

    @property
    def path(self) -> Path:
        """The wallet directory."""
        return self._path

    def put(self, label: str, identity: Identity, signer: EcdsaSigner) -> None:
        """Store (or replace) an identity and its key under ``label``.

        Raises:
            WalletError: invalid label, key not matching the certificate, or write failure.
        """
        file = self._file(label)
        if not signer.matches(identity.certificate):
            raise WalletError(f"wallet entry {label!r}: the key does not match the certificate")
        salt, nonce = os.urandom(16), os.urandom(12)
        params = self._scrypt
        key = self._derive(salt, params)
        ciphertext = AESGCM(key).encrypt(
            nonce, signer.private_key_pem(), self._aad(label, identity.msp_id)
        )
        doc = {
            "format": _FORMAT,
            "label": label,
            "msp_id": identity.msp_id,
            "certificate": identity.credentials.decode("ascii"),
            "kdf": {
                "name": "scrypt",
                "n": params.n,
                "r": params.r,
                "p": params.p,
                "salt": _b64(salt),
            },
            "cipher": {"name": "AES-256-GCM", "nonce": _b64(nonce)},
            "private_key": _b64(ciphertext),
        }
        self._write(file, json.dumps(doc, indent=2, sort_keys=True).encode())

    def get(self, label: str) -> tuple[Identity, EcdsaSigner]:
        """Load and decrypt the identity stored under ``label``.

        Raises:
            WalletError: no such entry, a corrupt entry, or a wrong passphrase.
        """
        file = self._file(label)
        try:
            doc = json.loads(file.read_bytes())
        except FileNotFoundError:
            raise WalletError(f"no identity {label!r} in wallet {self._path}") from None
        except (OSError, ValueError) as exc:
            raise WalletError(f"wallet entry {file}: unreadable: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise WalletError(f"wallet entry {file}: not a {_FORMAT} entry")
        try:
            kdf = doc["kdf"]
            params = ScryptParams(int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
            key = self._derive(_unb64(kdf["salt"]), params)
            identity = Identity(str(doc["msp_id"]), str(doc["certificate"]).encode("ascii"))
            pem = AESGCM(key).decrypt(
                _unb64(doc["cipher"]["nonce"]),
                _unb64(doc["private_key"]),
                self._aad(label, identity.msp_id),
            )
        except InvalidTag:
            raise WalletError(
                f"wallet entry {label!r}: wrong passphrase or tampered entry"
            ) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise WalletError(f"wallet entry {file}: malformed: {exc}") from exc
        except FabricError as exc:
            raise WalletError(f"wallet entry {file}: {exc}") from exc
        try:
            return identity, EcdsaSigner.from_pem(pem)
        except FabricError as exc:
            raise WalletError(f"wallet entry {file}: {exc}") from exc

    def labels(self) -> list[str]:
        """Return the labels of the stored identities, sorted."""
        if not self._path.is_dir():
            return []
        return sorted(p.name[:-3] for p in self._path.glob("*.id") if _LABEL.match(p.name[:-3]))

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and bool(_LABEL.match(label)) and self._file(label).exists()

    def remove(self, label: str) -> None:
        """Delete an entry.

        Raises:
            WalletError: no such entry, or it cannot be deleted (a read-only wallet directory;
                the entry is kept).
        """
        file = self._file(label)
        try:
            file.unlink()
        except FileNotFoundError:
            raise WalletError(f"no identity {label!r} in wallet {self._path}") from None
        except OSError as exc:
            raise WalletError(f"cannot delete wallet entry {file}: {exc}") from exc

    def _file(self, label: str) -> Path:
        if not _LABEL.match(label):
            raise WalletError(f"invalid wallet label {label!r}")
        return self._path / f"{label}.id"

    def _derive(self, salt: bytes, params: ScryptParams) -> bytes:
        try:
            kdf = Scrypt(salt=salt, length=32, n=params.n, r=params.r, p=params.p)
            return kdf.derive(self._passphrase)
        except (ValueError, MemoryError) as exc:
            raise WalletError(f"invalid scrypt parameters {params}: {exc}") from exc

    @staticmethod
    def _aad(label: str, msp_id: str) -> bytes:
        return json.dumps([_FORMAT, label, msp_id]).encode()

    def _write(self, file: Path, data: bytes) -> None:
        try:
            self._path.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(file, data)
        except OSError as exc:
            raise WalletError(f"cannot write wallet entry {file}: {exc}") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
