"""File-tree helpers of the file-tree backend: reading an artifact safely, writing it under a
root without ever leaving it, manifests.

An artifact is a gzip-compressed tar of regular files and directories with relative paths.
Anything else (absolute paths, ``..``, links, devices, FIFOs), the same path twice, a path
that is both a file and a directory, more than :attr:`ArtifactLimits.max_members` members or
more than :attr:`ArtifactLimits.max_total_bytes` of unpacked data is refused before a byte is
written, while the archive is read (the declared sizes are checked before any member's data is
read, so a small archive that unpacks to gigabytes is refused after reading at most the cap).

The tree the files are written into may hold symbolic links (the target is copied as it is).
:func:`check_paths` refuses, before anything is written, an artifact file whose path crosses a
link (or a file where a directory is needed) in that tree, and :func:`write_files` walks every
path component from the root with ``O_NOFOLLOW`` directory descriptors and creates files with
``O_NOFOLLOW | O_EXCL``, so no write can leave the root whatever links it holds, even if the
tree changes between the check and the write.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from patchledger.agent.errors import ArtifactFormatError, TargetLinkError

__all__ = [
    "DEFAULT_LIMITS",
    "ArtifactFile",
    "ArtifactLimits",
    "check_paths",
    "manifest",
    "read_artifact",
    "write_files",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


@dataclass(frozen=True)
class ArtifactFile:
    """One regular file of an artifact."""

    path: str
    data: bytes
    mode: int


@dataclass(frozen=True)
class ArtifactLimits:
    """Caps on what one artifact may unpack to.

    Attributes:
        max_members: members (files and directories) an artifact may hold.
        max_total_bytes: sum of the regular files' sizes.
    """

    max_members: int = 10_000
    max_total_bytes: int = 64 * 1024 * 1024


def _safe_name(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ArtifactFormatError(f"artifact member {name!r} is not a relative path inside it")
    return str(path)


#: The caps used unless a backend is given others.
DEFAULT_LIMITS = ArtifactLimits()


def read_artifact(
    artifact: bytes, limits: ArtifactLimits = DEFAULT_LIMITS
) -> tuple[ArtifactFile, ...]:
    """The regular files of a tar.gz artifact, checked (directories are implied by paths).

    Raises:
        ArtifactFormatError: not a tar.gz; a member that is not a safe regular file or
            directory; a path given twice or used both as a file and a directory; over the
            member or size cap.
    """
    files: list[ArtifactFile] = []
    dirs: set[str] = set()
    members = total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as tar:
            for member in tar:
                members += 1
                if members > limits.max_members:
                    raise ArtifactFormatError(
                        f"the artifact holds more than {limits.max_members} members (refused)"
                    )
                name = _safe_name(member.name)
                if member.isdir():
                    dirs.add(name)
                    continue
                if not member.isreg():
                    raise ArtifactFormatError(
                        f"artifact member {name!r} is not a regular file or directory"
                    )
                total += member.size
                if total > limits.max_total_bytes:
                    raise ArtifactFormatError(
                        f"the artifact unpacks to more than {limits.max_total_bytes} bytes"
                        " (refused)"
                    )
                handle = tar.extractfile(member)
                data = handle.read() if handle else b""
                files.append(ArtifactFile(name, data, member.mode & 0o755))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactFormatError(f"the artifact is not a readable tar.gz: {exc}") from exc
    _check_unique(files, dirs)
    return tuple(files)


def _check_unique(files: list[ArtifactFile], dirs: set[str]) -> None:
    seen: set[str] = set()
    for f in files:
        if f.path in seen:
            raise ArtifactFormatError(f"artifact member {f.path!r} is given twice (refused)")
        seen.add(f.path)
    parents = {str(p) for f in files for p in PurePosixPath(f.path).parents} | dirs
    clash = sorted(seen & parents)
    if clash:
        raise ArtifactFormatError(
            f"artifact member {clash[0]!r} is both a file and a directory (refused)"
        )


def check_paths(root: Path, files: tuple[ArtifactFile, ...]) -> None:
    """Refuse files whose path in the tree at ``root`` crosses a symbolic link or a non-directory,
    or would replace a directory (reads only; the dry run reports the same refusal).

    Raises:
        TargetLinkError: a directory component of a file's path is a symbolic link.
        ArtifactFormatError: a component is a file where a directory is needed, or the file
            would replace a directory.
    """
    for f in files:
        parts = PurePosixPath(f.path).parts
        current = root
        for i, part in enumerate(parts):
            current = current / part
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                break
            last = i == len(parts) - 1
            rel = "/".join(parts[: i + 1])
            if not last and stat.S_ISLNK(mode):
                raise TargetLinkError(str(root), rel, f.path)
            if not last and not stat.S_ISDIR(mode):
                raise ArtifactFormatError(
                    f"artifact file {f.path!r} needs {rel!r} to be a directory; it is a file"
                )
            if last and stat.S_ISDIR(mode):
                raise ArtifactFormatError(f"artifact file {f.path!r} would replace a directory")


def _open_dir(parent_fd: int, name: str, root: Path, rel: str, path: str) -> int:
    """The descriptor of directory ``name`` under ``parent_fd`` (created when missing),
    never following a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if stat.S_ISLNK(os.lstat(name, dir_fd=parent_fd).st_mode):
            raise TargetLinkError(str(root), rel, path) from exc
        raise


def write_files(root: Path, files: tuple[ArtifactFile, ...]) -> None:
    """Write ``files`` under ``root`` (replacing existing files), flushed to disk, never
    outside ``root`` (module docstring).

    Raises:
        TargetLinkError: a directory component is a symbolic link (nothing written through it).
        ArtifactFormatError: a file would replace a directory.
        OSError: the file system failed.
    """
    check_paths(root, files)
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        for f in files:
            parts = PurePosixPath(f.path).parts
            fds = [root_fd]
            try:
                for i, part in enumerate(parts[:-1]):
                    rel = "/".join(parts[: i + 1])
                    fds.append(_open_dir(fds[-1], part, root, rel, f.path))
                _write_file(fds[-1], parts[-1], f)
            finally:
                for fd in fds[1:]:
                    os.close(fd)
    finally:
        os.close(root_fd)


def _write_file(dir_fd: int, name: str, f: ArtifactFile) -> None:
    try:
        if stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode):
            raise ArtifactFormatError(f"artifact file {f.path!r} would replace a directory")
        os.unlink(name, dir_fd=dir_fd)  # a link here is replaced, never followed
    except FileNotFoundError:
        pass
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = os.open(name, flags, f.mode or 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "wb") as out:
        out.write(f.data)
        out.flush()
        os.fsync(out.fileno())
        os.fchmod(out.fileno(), f.mode or 0o644)


def manifest(root: Path) -> dict[str, str]:
    """``relative path -> SHA-256`` of every regular file under ``root`` (symlinks by their
    target text, never followed), empty when ``root`` does not exist."""
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into links
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = "symlink:" + str(path.readlink())
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(out.items()))
