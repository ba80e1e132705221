"""File-tree helpers of the file-tree backend: reading an artifact safely, manifests.

An artifact is a gzip-compressed tar of regular files and directories with relative paths.
Anything else (absolute paths, ``..``, links, devices, FIFOs) is refused before a byte is
written, so an artifact can never write outside the staging directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from patchledger.agent.errors import ArtifactFormatError

__all__ = ["ArtifactFile", "manifest", "read_artifact", "write_files"]


@dataclass(frozen=True)
class ArtifactFile:
    """One regular file of an artifact."""

    path: str
    data: bytes
    mode: int


def _safe_name(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ArtifactFormatError(f"artifact member {name!r} is not a relative path inside it")
    return str(path)


def read_artifact(artifact: bytes) -> tuple[ArtifactFile, ...]:
    """The regular files of a tar.gz artifact, checked (directories are implied by paths).

    Raises:
        ArtifactFormatError: not a tar.gz, or a member that is not a safe regular file or
            directory.
    """
    files: list[ArtifactFile] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as tar:
            for member in tar.getmembers():
                name = _safe_name(member.name)
                if member.isdir():
                    continue
                if not member.isreg():
                    raise ArtifactFormatError(
                        f"artifact member {name!r} is not a regular file or directory"
                    )
                handle = tar.extractfile(member)
                data = handle.read() if handle else b""
                files.append(ArtifactFile(name, data, member.mode & 0o755))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactFormatError(f"the artifact is not a readable tar.gz: {exc}") from exc
    return tuple(files)


def write_files(root: Path, files: tuple[ArtifactFile, ...]) -> None:
    """Write ``files`` under ``root`` (replacing existing files), flushed to disk."""
    for f in files:
        dest = root / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir() and not dest.is_symlink():
            raise ArtifactFormatError(f"artifact file {f.path!r} would replace a directory")
        dest.unlink(missing_ok=True)
        with dest.open("wb") as out:
            out.write(f.data)
            out.flush()
            os.fsync(out.fileno())
        dest.chmod(f.mode or 0o644)


def manifest(root: Path) -> dict[str, str]:
    """``relative path -> SHA-256`` of every regular file under ``root`` (symlinks by their
    target text), empty when ``root`` does not exist."""
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "symlink:" + str(path.readlink())
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
