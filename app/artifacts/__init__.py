"""The artifact store: content-addressed (SHA-256) patch artifacts that agents download.

:class:`ArtifactStore` is the interface (an object store can implement it);
:class:`FilesystemStore` the default implementation. No Flask here."""

from __future__ import annotations

from patchledger.app.artifacts.store import (
    ArtifactError,
    ArtifactNotFound,
    ArtifactStore,
    ArtifactTooLarge,
    ByteRange,
    DigestMismatch,
    FilesystemStore,
    InvalidDigest,
    RangeNotSatisfiable,
    StoredArtifact,
    parse_range_header,
)

__all__ = [
    "ArtifactError",
    "ArtifactNotFound",
    "ArtifactStore",
    "ArtifactTooLarge",
    "ByteRange",
    "DigestMismatch",
    "FilesystemStore",
    "InvalidDigest",
    "RangeNotSatisfiable",
    "StoredArtifact",
    "parse_range_header",
]
