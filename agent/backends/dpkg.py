"""The dpkg installer backend: real ``.deb`` packages installed into a root directory by dpkg
itself, with the previous version kept for rollback and a durable checkpoint before every change.

Why dpkg and not ``dpkg-deb -x``: unpacking alone skips everything that makes a package
installed (the status database, conffile handling, maintainer scripts, file ownership between
packages, diversions, triggers), so the next ``apt`` or ``dpkg --verify`` would disagree with the
disk. The backend therefore runs ``dpkg --root=<root>`` (instdir ``<root>``, admindir
``<root>/var/lib/dpkg``), or plain ``dpkg`` when the root is ``/``.

Maintainer scripts: with ``--root`` dpkg ``chroot``\\ s into the root before running them, which
needs a complete system there (a ``/bin/sh``). ``scripts="chroot"`` (the default) is that mode
and is right for ``/`` and for full chroots. ``scripts="chrootless"`` adds
``--force-script-chrootless``: scripts run on the host with ``DPKG_ROOT`` set to the root, which
is only sound for packages whose scripts honour ``DPKG_ROOT`` (the tests' packages do; dpkg's
manual warns that other scripts can change the host).

Rollback needs the previous package, and dpkg keeps none. Reconstructing one from the installed
files (``dpkg-repack``) is not sound: it packs whatever is on disk now, so a modified or
tampered file, a locally edited conffile or a lost maintainer script becomes "the previous
version". The backend keeps instead the exact ``.deb`` files it installed, content-addressed
(``<state>/debs/<sha256>.deb`` with an index by package, version and architecture), and also
accepts apt's cache in the root (``var/cache/apt/archives``) when the fields of the file found
there match (staging copies it into the archive: apt may clean its cache). A package with no
installed version rolls back by ``dpkg --purge``. When a package's installed version has
neither, :meth:`DpkgBackend.stage` refuses before anything changes (``RollbackError``): the
backend never makes a change it could not undo.

Steps (each announced by a durable checkpoint, ``<state>/dpkg-checkpoint.json``, written
*before* it; the checkpoint records every package's previous version and its kept ``.deb``)::

    stage      read the .deb files, keep them in the archive, find the previous versions
    apply      dpkg --install <debs>                      (checkpoint apply/apply, then applied)
    verify     each package ii at the new version; dpkg --verify of its files
    commit     checkpoint removed
    rollback   checkpoint rollback/rollback; dpkg --install <previous debs>, dpkg --purge of
               the new packages, checked; checkpoint removed

Recovery after a crash (:meth:`DpkgBackend.recover`, run under the lock at the start of every
run): a checkpoint in ``stage`` means nothing was installed yet (it is dropped); in ``apply``,
``applied`` or ``rollback`` the previous versions are put back, whatever state dpkg was left in
(half-installed or half-configured packages are reinstalled from the kept ``.deb``).

The artifact is one ``.deb`` or a tar (optionally gzip-compressed) of ``.deb`` regular files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from patchledger.agent.backends.base import ApplyPlan, Recovery
from patchledger.agent.durable import fsync_dir, write_durably, write_json_durably
from patchledger.agent.errors import ArtifactFormatError, BackendError, RollbackError
from patchledger.agent.inventory import InventoryError, dpkg_snapshot
from patchledger.agent.lock import LockFile

__all__ = ["DebFile", "DpkgBackend", "DpkgPlan", "PackageChange", "ScriptMode",
           "split_artifact"]

ScriptMode = Literal["chroot", "chrootless"]

_AR_MAGIC = b"!<arch>\n"
_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_VERSION = re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$")
_ARCH = re.compile(r"^[a-z0-9-]+$")
#: Longest a single dpkg call may take.
DPKG_TIMEOUT = 600.0


@dataclass(frozen=True)
class DebFile:
    """One ``.deb`` of an artifact: its control fields and bytes."""

    package: str
    version: str
    architecture: str
    sha256: str
    data: bytes


@dataclass(frozen=True)
class PackageChange:
    """What installing one package changes, and how it would be undone.

    Attributes:
        package, version, architecture: the package being installed.
        sha256: the SHA-256 of its ``.deb``.
        action: ``install`` (not installed before), ``upgrade``, ``downgrade`` or
            ``reinstall``.
        previous_version: the version installed now ("" when none).
        previous_deb: the kept ``.deb`` of that version ("" when none, or none is needed).
    """

    package: str
    version: str
    architecture: str
    sha256: str
    action: str
    previous_version: str
    previous_deb: str

    @property
    def undoable(self) -> bool:
        """A rollback source exists (a kept ``.deb``, or purge for a new package)."""
        return not self.previous_version or bool(self.previous_deb)


@dataclass(frozen=True)
class DpkgPlan:
    """What applying an artifact changes (a dry run returns it without changing anything)."""

    target: str
    changes: tuple[PackageChange, ...]

    @property
    def undoable(self) -> bool:
        """Every change has a rollback source."""
        return all(change.undoable for change in self.changes)


def split_artifact(artifact: bytes) -> tuple[bytes, ...]:
    """The ``.deb`` files of an artifact: one ``.deb``, or a tar(.gz) of ``.deb`` files.

    Raises:
        ArtifactFormatError: neither, a tar member that is not a regular ``*.deb`` file with
            a plain name, or an empty tar.
    """
    if artifact.startswith(_AR_MAGIC):
        return (artifact,)
    debs: list[bytes] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:*") as tar:
            for member in tar.getmembers():
                if member.isdir():
                    continue
                name = member.name
                if not member.isreg() or not name.endswith(".deb") or ".." in name.split("/"):
                    raise ArtifactFormatError(
                        f"artifact member {name!r} is not a regular .deb file"
                    )
                handle = tar.extractfile(member)
                data = handle.read() if handle else b""
                if not data.startswith(_AR_MAGIC):
                    raise ArtifactFormatError(f"artifact member {name!r} is not a .deb archive")
                debs.append(data)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArtifactFormatError(
            f"artifact is neither a .deb nor a tar of .deb files: {exc}"
        ) from exc
    if not debs:
        raise ArtifactFormatError("artifact is a tar with no .deb file in it")
    return tuple(debs)


class DpkgBackend:
    """Install, verify, roll back and recover ``.deb`` packages in ``root`` (module
    docstring)."""

    def __init__(
        self,
        root: Path,
        state_dir: Path,
        *,
        scripts: ScriptMode = "chroot",
        dpkg: str = "dpkg",
        timeout: float = DPKG_TIMEOUT,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        """Args:
        root: the root directory packages are installed into (``/`` for the host itself).
        state_dir: the agent's directory for the kept ``.deb`` files, checkpoint and lock.
        scripts: how maintainer scripts run (module docstring).
        dpkg: the dpkg program (``dpkg-deb`` and ``dpkg-query`` are found next to it by name).
        timeout: seconds one dpkg call may take.
        on_step: called with a step name between the changes (a seam for crash tests).

        Raises:
            BackendError: an unknown script mode.
        """
        if scripts not in ("chroot", "chrootless"):
            raise BackendError(
                f"dpkg script mode must be 'chroot' or 'chrootless', not {scripts!r}"
            )
        self.target = root
        self.root = root
        self.state_dir = state_dir
        self.scripts: ScriptMode = scripts
        self.archive = state_dir / "debs"
        self.checkpoint_path = state_dir / "dpkg-checkpoint.json"
        self.lock_path = state_dir / "dpkg.lock"
        self.admindir = root / "var/lib/dpkg"
        self._dpkg = dpkg
        self._timeout = timeout
        self._on_step = on_step or (lambda step: None)

    # ------------------------------------------------------------------ dpkg calls

    @property
    def _is_host_root(self) -> bool:
        return self.root.resolve() == Path("/")

    def _options(self) -> list[str]:
        options = [] if self._is_host_root else [f"--root={self.root}"]
        if self.scripts == "chrootless":
            options.append("--force-script-chrootless")
        if os.geteuid() != 0:
            options.append("--force-not-root")
        return options

    def _run(self, argv: Sequence[str], what: str) -> str:
        env = {**os.environ, "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=self._timeout,
                check=False, env=env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"{what} in {self.root}: {argv[0]}: {exc}") from exc
        if done.returncode != 0:
            tail = (done.stderr.strip() or done.stdout.strip())[-800:]
            raise BackendError(f"{what} in {self.root} failed (exit {done.returncode}): {tail}")
        return done.stdout

    def _dpkg_call(self, *args: str, what: str) -> str:
        return self._run([self._dpkg, *self._options(), *args], what)

    def _query(self, package: str) -> tuple[str, str]:
        """(status abbreviation, version) of ``package``; ``("", "")`` when unknown."""
        argv = [f"{self._dpkg}-query", f"--admindir={self.admindir}", "-W",
                "-f=${db:Status-Abbrev}\\t${Version}\\n", package]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self._timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"dpkg-query of {package} in {self.root}: {exc}") from exc
        if done.returncode != 0:  # "no packages found matching"
            return "", ""
        status, _, version = done.stdout.rstrip("\n").partition("\t")
        return status.strip(), version

    def installed_version(self, package: str) -> str:
        """The version of ``package`` installed in the root ("" when it is not ``ii``/``hi``,
        that is: not installed, removed with its configuration kept, or left half-done)."""
        status, version = self._query(package)
        return version if status in ("ii", "hi") else ""

    def _fields(self, path: Path) -> tuple[str, str, str]:
        out = self._run([f"{self._dpkg}-deb", "--field", str(path), "Package", "Version",
                         "Architecture"], f"reading the control fields of {path.name}")
        values = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        package = values.get("Package", "")
        version = values.get("Version", "")
        arch = values.get("Architecture", "")
        if not _NAME.match(package) or not _VERSION.match(version) or not _ARCH.match(arch):
            raise ArtifactFormatError(
                f"{path.name}: control fields Package={package!r} Version={version!r}"
                f" Architecture={arch!r} are not a valid package"
            )
        return package, version, arch

    def read_debs(self, artifact: bytes) -> tuple[DebFile, ...]:
        """The artifact's packages with their control fields (reads only; a temporary file
        outside the state directory).

        Raises:
            ArtifactFormatError: not a .deb or a tar of .debs, unreadable control fields, or
                one package twice.
        """
        found: list[DebFile] = []
        with tempfile.TemporaryDirectory(prefix="patchledger-deb-") as tmp:
            for index, data in enumerate(split_artifact(artifact)):
                path = Path(tmp) / f"{index}.deb"
                path.write_bytes(data)
                try:
                    package, version, arch = self._fields(path)
                except ArtifactFormatError:
                    raise
                except BackendError as exc:
                    raise ArtifactFormatError(str(exc)) from exc
                found.append(DebFile(package, version, arch, hashlib.sha256(data).hexdigest(),
                                     data))
        names = [deb.package for deb in found]
        if len(set(names)) != len(names):
            raise ArtifactFormatError(f"artifact names a package twice: {sorted(names)}")
        return tuple(found)

    def _compare(self, a: str, op: str, b: str) -> bool:
        try:
            done = subprocess.run([self._dpkg, "--compare-versions", a, op, b],
                                  capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"dpkg --compare-versions {a} {op} {b}: {exc}") from exc
        return done.returncode == 0

    # ------------------------------------------------------------------ the archive

    def _index_path(self) -> Path:
        return self.archive / "index.json"

    def _index(self) -> dict[str, str]:
        path = self._index_path()
        if not path.exists():
            return {}
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackendError(f"archive index {path} is unreadable: {exc}") from exc
        if not isinstance(value, dict):
            raise BackendError(f"archive index {path} is not a JSON object")
        return {str(k): str(v) for k, v in value.items()}

    @staticmethod
    def _key(package: str, version: str, arch: str) -> str:
        return f"{package}_{version}_{arch}"

    def keep(self, deb: DebFile) -> Path:
        """Keep ``deb`` in the archive (durably) and index it; returns its path."""
        self.archive.mkdir(parents=True, exist_ok=True)
        path = self.archive / f"{deb.sha256}.deb"
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != deb.sha256:
            write_durably(path, deb.data, mode=0o644)
        index = self._index()
        key = self._key(deb.package, deb.version, deb.architecture)
        if index.get(key) != deb.sha256:
            index[key] = deb.sha256
            write_json_durably(self._index_path(), index)
        return path

    def kept_deb(self, package: str, version: str, arch: str) -> Path | None:
        """A ``.deb`` of exactly this package version: the archive's (its digest checked),
        else apt's cache in the root (its control fields checked)."""
        sha = self._index().get(self._key(package, version, arch))
        if sha:
            path = self.archive / f"{sha}.deb"
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha:
                return path
        cache = self.root / "var/cache/apt/archives"
        for candidate_arch in dict.fromkeys((arch, "all")):
            name = f"{package}_{version.replace(':', '%3a')}_{candidate_arch}.deb"
            path = cache / name
            if path.is_file():
                try:
                    if self._fields(path) == (package, version, candidate_arch):
                        return path
                except BackendError:
                    continue
        return None

    # ------------------------------------------------------------------ reading

    def lock(self) -> LockFile:
        """The lock against concurrent runs (entering raises ``LockError`` when held)."""
        return LockFile(self.lock_path)

    def packages(self, artifact: bytes) -> DpkgPlan:
        """The package changes installing ``artifact`` would make, and how each would be
        undone; changes nothing.

        Raises:
            ArtifactFormatError: the artifact is not a .deb or a tar of .deb files.
            BackendError: dpkg cannot be run.
        """
        return self._plan(self.read_debs(artifact))

    def plan(self, artifact: bytes) -> ApplyPlan:
        """The dry run in the interface's terms: new packages are ``added``, upgrades and
        downgrades ``replaced`` (``name old -> new``), reinstalls ``unchanged``.

        Raises:
            ArtifactFormatError, BackendError: as :meth:`packages`.
        """
        return _summary(self.packages(artifact))

    def _plan(self, debs: Sequence[DebFile]) -> DpkgPlan:
        changes = []
        for deb in debs:
            previous = self.installed_version(deb.package)
            if not previous:
                action = "install"
            elif previous == deb.version:
                action = "reinstall"
            elif self._compare(deb.version, "gt", previous):
                action = "upgrade"
            else:
                action = "downgrade"
            kept = self.kept_deb(deb.package, previous, deb.architecture) if previous else None
            changes.append(PackageChange(deb.package, deb.version, deb.architecture, deb.sha256,
                                         action, previous, str(kept) if kept else ""))
        return DpkgPlan(str(self.root), tuple(changes))

    def inventory_digest(self) -> str:
        """The root's inventory digest, the one :mod:`agent.inventory` reports
        (``UpdateInventoryDigest``), so reports and inventory agree.

        Raises:
            BackendError: the root has no dpkg database or dpkg-query failed.
        """
        try:
            return dpkg_snapshot(self.root).sha256
        except InventoryError as exc:
            raise BackendError(f"inventory of {self.root}: {exc}") from exc

    def checkpoint(self) -> dict[str, Any] | None:
        """The pending checkpoint, ``None`` when no change is unfinished.

        Raises:
            BackendError: it is unreadable.
        """
        if not self.checkpoint_path.exists():
            return None
        try:
            value = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackendError(f"checkpoint {self.checkpoint_path} is unreadable: {exc}") from exc
        if not isinstance(value, dict) or not isinstance(value.get("changes"), list):
            raise BackendError(f"checkpoint {self.checkpoint_path} is not a dpkg checkpoint")
        return value

    # ------------------------------------------------------------------ changing

    def init_root(self) -> None:
        """Create an empty dpkg database in the root when it has none (a fresh root
        directory); never for ``/``."""
        if self._is_host_root or (self.admindir / "status").exists():
            return
        for sub in ("info", "updates", "triggers"):
            (self.admindir / sub).mkdir(parents=True, exist_ok=True)
        (self.admindir / "status").touch()

    def stage(self, artifact: bytes, label: str) -> ApplyPlan:
        """Read the packages, keep them, record the previous versions: checkpoint
        ``apply/stage`` then ``apply/staged``. Installs nothing.

        Raises:
            BackendError: an unfinished change is pending (recover first).
            ArtifactFormatError: the artifact is not .deb packages (nothing changed).
            RollbackError: a package's installed version has no kept ``.deb`` (nothing
                changed): the change could not be undone.
        """
        if self.checkpoint() is not None:
            raise BackendError(f"an unfinished change is pending on {self.root}: recover first")
        debs = self.read_debs(artifact)
        self.init_root()
        plan = self._plan(debs)
        missing = [f"{c.package} {c.previous_version}" for c in plan.changes if not c.undoable]
        if missing:
            raise RollbackError(
                f"no kept .deb of the installed {', '.join(missing)} in {self.archive} or apt's"
                f" cache of {self.root}: a rollback would be impossible, refusing to change it"
            )
        plan = self._adopt_previous(plan)
        self._mark("apply", "stage", label, plan)
        new_paths = [str(self.keep(deb)) for deb in debs]
        self._on_step("staged")
        self._mark("apply", "staged", label, plan, new_debs=new_paths)
        return _summary(plan)

    def _adopt_previous(self, plan: DpkgPlan) -> DpkgPlan:
        """Copy previous versions found outside the archive (apt's cache, which apt may clean
        at any time) into it, so the rollback source cannot vanish."""
        changes = []
        for change in plan.changes:
            path = Path(change.previous_deb) if change.previous_deb else None
            if path is not None and path.parent != self.archive:
                data = path.read_bytes()
                package, version, arch = self._fields(path)
                kept = self.keep(DebFile(package, version, arch,
                                         hashlib.sha256(data).hexdigest(), data))
                change = replace(change, previous_deb=str(kept))
            changes.append(change)
        return DpkgPlan(plan.target, tuple(changes))

    def apply(self) -> None:
        """Install the staged packages (``dpkg --install``); checkpoint ``apply/apply``
        before, ``apply/applied`` after.

        Raises:
            BackendError: nothing is staged, or dpkg failed (the checkpoint stays at
                ``apply/apply``: roll back or recover).
        """
        point = self._expect(("staged",), "install")
        plan = self._plan_of(point)
        self._mark("apply", "apply", str(point.get("label", "")), plan,
                   new_debs=point["new_debs"])
        self._on_step("installing")
        self._dpkg_call("--install", *point["new_debs"], what="dpkg --install")
        self._on_step("installed")
        self._mark("apply", "applied", str(point.get("label", "")), plan,
                   new_debs=point["new_debs"])

    def install(self, artifact: bytes, label: str) -> ApplyPlan:
        """:meth:`stage`, :meth:`apply` and :meth:`verify` in one call.

        Raises:
            as the three steps.
        """
        plan = self.stage(artifact, label)
        self.apply()
        self.verify()
        return plan

    def pending(self) -> DpkgPlan | None:
        """The package changes of the unfinished change, ``None`` when there is none."""
        point = self.checkpoint()
        return self._plan_of(point) if point else None

    def verify(self) -> None:
        """Check the applied change: each package is ``ii`` at its new version and
        ``dpkg --verify`` finds its files as packaged. Changes nothing.

        Raises:
            BackendError: no applied change is pending, or the check failed (the message
                lists each problem).
        """
        point = self._expect(("applied",), "verify")
        problems = []
        for change in self._plan_of(point).changes:
            status, version = self._query(change.package)
            if status != "ii" or version != change.version:
                problems.append(
                    f"{change.package} is {status or 'not installed'} {version}, expected ii"
                    f" {change.version}"
                )
                continue
            try:  # dpkg 1.21 exits 0 and lists mismatches ("??5?????? /path")
                out = self._dpkg_call("--verify", change.package,
                                      what=f"dpkg --verify {change.package}")
            except BackendError as exc:
                problems.append(str(exc))
                continue
            if out.strip():
                listed = "; ".join(line.strip() for line in out.splitlines()[:5])
                problems.append(f"dpkg --verify {change.package}: {listed}")
        if problems:
            raise BackendError(f"verification in {self.root} failed: {'; '.join(problems)}")

    def commit(self) -> None:
        """Make the applied (and verified) change final (the kept ``.deb`` files stay).

        Raises:
            BackendError: no applied change is pending.
        """
        self._expect(("applied",), "commit")
        self._clear()

    def rollback(self) -> None:
        """Put every package back at its previous version (or purge it when it was not
        installed) and check that it is; checkpoint ``rollback/rollback`` first.

        Raises:
            RollbackError: no change is pending, a kept ``.deb`` is gone, or dpkg failed (the
                checkpoint stays: the next recovery retries).
        """
        point = self.checkpoint()
        if point is None:
            raise RollbackError(f"no change pending on {self.root} to roll back")
        plan = self._plan_of(point)
        self._mark("rollback", "rollback", str(point.get("label", "")), plan,
                   new_debs=point.get("new_debs", []))
        try:
            self._undo(plan)
        except BackendError as exc:
            raise RollbackError(f"rolling back {point.get('label', '')!r}: {exc}") from exc
        self._clear()

    def recover(self) -> Recovery:
        """Revert an unfinished change after a crash (module docstring); run under the lock.

        Raises:
            BackendError: the checkpoint is unreadable.
            RollbackError: the previous versions could not be put back (retried next run).
        """
        point = self.checkpoint()
        if point is None:
            return Recovery("none")
        step = (point.get("op"), point.get("step"))
        interrupted = f"{step[0]}/{step[1]} {point.get('label', '')}".strip()
        if step in (("apply", "stage"), ("apply", "staged")):
            self._clear()
            return Recovery("discarded-staging", interrupted)
        self.rollback()
        return Recovery("restored-previous", interrupted)

    # ------------------------------------------------------------------ internals

    def _undo(self, plan: DpkgPlan) -> None:
        reinstall = [c for c in plan.changes if c.previous_version]
        purge = [c.package for c in plan.changes if not c.previous_version]
        for change in reinstall:
            if not Path(change.previous_deb).is_file():
                raise BackendError(f"the kept {change.previous_deb} of {change.package} is gone")
        if reinstall:
            self._dpkg_call("--install", *(c.previous_deb for c in reinstall),
                            what="dpkg --install of the previous versions")
        self._on_step("rolled-back-installs")
        if purge:
            self._dpkg_call("--purge", *purge, what="dpkg --purge of the new packages")
        for change in plan.changes:
            status, version = self._query(change.package)
            if change.previous_version and (status, version) != ("ii", change.previous_version):
                raise BackendError(f"{change.package} is {status} {version} after the rollback,"
                                   f" not ii {change.previous_version}")
            if not change.previous_version and status not in ("", "un", "pn"):
                raise BackendError(f"{change.package} is {status} after its purge")

    def _expect(self, steps: tuple[str, ...], what: str) -> dict[str, Any]:
        point = self.checkpoint()
        if not point or point.get("op") != "apply" or point.get("step") not in steps:
            raise BackendError(f"nothing to {what} on {self.root} (checkpoint {point})")
        return point

    @staticmethod
    def _plan_of(point: dict[str, Any]) -> DpkgPlan:
        try:
            changes = tuple(PackageChange(**c) for c in point["changes"])
        except (TypeError, KeyError) as exc:
            raise BackendError(f"dpkg checkpoint has malformed changes: {exc}") from exc
        return DpkgPlan(str(point.get("target", "")), changes)

    def _mark(self, op: str, step: str, label: str, plan: DpkgPlan, *,
              new_debs: Sequence[str] = ()) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_json_durably(self.checkpoint_path, {
            "op": op, "step": step, "label": label, "target": plan.target,
            "changes": [asdict(c) for c in plan.changes], "new_debs": list(new_debs),
        })

    def _clear(self) -> None:
        self.checkpoint_path.unlink(missing_ok=True)
        fsync_dir(self.state_dir)



def _summary(plan: DpkgPlan) -> ApplyPlan:
    changes = plan.changes
    return ApplyPlan(
        plan.target,
        tuple(f"{c.package} {c.version}" for c in changes if c.action == "install"),
        tuple(f"{c.package} {c.previous_version} -> {c.version}" for c in changes
              if c.action in ("upgrade", "downgrade")),
        tuple(f"{c.package} {c.version}" for c in changes if c.action == "reinstall"),
    )
