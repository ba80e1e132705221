"""The host's inventory: what is installed, in the exact text or JSON the org app's feeds
parser (``app/feeds/inventory.py``) reads, a canonical digest of it, and "changed since the
last report" kept in a durable state file.

Sources, chosen by :func:`collect`:

- ``dpkg``: ``dpkg-query -W -f=<DPKG_FORMAT>``: status, package, version (with its epoch,
  ``1:2.3-4``), architecture, source package and source version, tab-separated. Debian
  advisories name source packages, so the source fields are what matching needs.
- ``rpm``: ``rpm -qa --qf <RPM_FORMAT>``: name, ``epoch:version-release`` (``%{EPOCHNUM}``, so
  0 when unset), architecture, source RPM, module stream.
- ``sbom``: a CycloneDX or SPDX JSON file, sent as it is.

The formats are the feeds parser's (a unit test checks they are equal; the agent does not
import the app). The distribution release comes from the root's ``etc/os-release``.

Digest: SHA-256 of a canonical form, so the same installed set gives the same digest however
the tool ordered its output: for query text, a header line ``<format> <release>`` then the
sorted, de-duplicated lines with trailing blanks removed; for an SBOM, its canonical JSON
(sorted keys, no spaces) without the fields that change on every generation (CycloneDX
``serialNumber`` and ``metadata.timestamp``, SPDX ``documentNamespace`` and
``creationInfo.created``). The digest is what ``UpdateInventoryDigest`` records.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from patchledger.agent.durable import write_json_durably
from patchledger.agent.errors import AgentError, ConfigError

__all__ = [
    "DPKG_FORMAT",
    "RPM_FORMAT",
    "InventoryError",
    "InventoryState",
    "Snapshot",
    "collect",
    "dpkg_snapshot",
    "rpm_snapshot",
    "sbom_snapshot",
]

#: ``dpkg-query -f`` format, equal to ``app.feeds.inventory.DPKG_FORMAT``.
DPKG_FORMAT = (
    "${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\t"
    "${source:Package}\\t${source:Version}\\n"
)
#: ``rpm --qf`` format, equal to ``app.feeds.inventory.RPM_FORMAT``.
RPM_FORMAT = (
    "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{MODULARITYLABEL}\\n"
)

Format = Literal["dpkg-query", "rpm", "cyclonedx", "spdx"]
#: Longest a query may take.
QUERY_TIMEOUT = 120.0
#: Largest SBOM file read.
MAX_SBOM_BYTES = 64 * 1024 * 1024

Runner = Callable[[Sequence[str]], str]


class InventoryError(AgentError):
    """The inventory could not be collected: the query failed, the SBOM is unreadable."""


@dataclass(frozen=True)
class Snapshot:
    """One inventory as sent to the app.

    Attributes:
        format: ``dpkg-query``, ``rpm``, ``cyclonedx`` or ``spdx``.
        release: the distribution release (``bookworm``, ``almalinux-9.3``), "" when unknown.
        content: the query output (text) or the SBOM document (JSON value).
        sha256: the canonical digest (module docstring).
    """

    format: Format
    release: str
    content: str | dict[str, Any]
    sha256: str

    def to_payload(self) -> dict[str, Any]:
        """The JSON body of ``PUT /api/v1/agent/inventory`` (docs/agent.md)."""
        return {"format": self.format, "release": self.release, "content": self.content,
                "sha256": self.sha256}


def _canonical_text(fmt: str, release: str, text: str) -> bytes:
    lines = sorted({line.rstrip() for line in text.splitlines() if line.strip()})
    return "\n".join([f"{fmt} {release}", *lines]).encode("utf-8")


_VOLATILE = {"cyclonedx": (("serialNumber",), ("metadata", "timestamp")),
             "spdx": (("documentNamespace",), ("creationInfo", "created"))}


def _canonical_sbom(fmt: str, doc: dict[str, Any]) -> bytes:
    stable = copy.deepcopy(doc)
    for path in _VOLATILE[fmt]:
        holder: Any = stable
        for key in path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(holder, dict):
            holder.pop(path[-1], None)
    return json.dumps(stable, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def text_snapshot(fmt: Literal["dpkg-query", "rpm"], release: str, text: str) -> Snapshot:
    """A snapshot of query output (pure)."""
    return Snapshot(fmt, release, text,
                    hashlib.sha256(_canonical_text(fmt, release, text)).hexdigest())


def os_release(root: Path) -> dict[str, str]:
    """``<root>/etc/os-release`` as a dict (empty when it is missing)."""
    try:
        text = (root / "etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip().strip('"')
    return values


def _run(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=QUERY_TIMEOUT,
                              check=False)
    except FileNotFoundError as exc:
        raise InventoryError(f"{argv[0]} is not installed on this host") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InventoryError(f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        raise InventoryError(
            f"{' '.join(argv[:3])} exited {done.returncode}: {done.stderr.strip()[:300]}"
        )
    return done.stdout


def dpkg_snapshot(root: Path = Path("/"), *, run: Runner = _run) -> Snapshot:
    """The dpkg inventory of ``root`` (its ``var/lib/dpkg`` database).

    Raises:
        InventoryError: the root has no dpkg database, dpkg-query is missing or failed.
    """
    admindir = root / "var/lib/dpkg"
    if not (admindir / "status").is_file():
        raise InventoryError(f"no dpkg database at {admindir} (dpkg-query has nothing to read)")
    out = run(["dpkg-query", f"--admindir={admindir}", "-W", f"-f={DPKG_FORMAT}"])
    info = os_release(root)
    return text_snapshot("dpkg-query", info.get("VERSION_CODENAME") or info.get("VERSION_ID", ""),
                         out)


def rpm_snapshot(root: Path = Path("/"), *, run: Runner = _run) -> Snapshot:
    """The rpm inventory of ``root``.

    Raises:
        InventoryError: rpm is missing or failed.
    """
    out = run(["rpm", f"--root={root}", "-qa", "--qf", RPM_FORMAT])
    info = os_release(root)
    release = f"{info['ID']}-{info['VERSION_ID']}" if info.get("ID") and info.get(
        "VERSION_ID") else ""
    return text_snapshot("rpm", release, out)


def sbom_snapshot(path: Path) -> Snapshot:
    """An SBOM file (CycloneDX or SPDX JSON) as the inventory.

    Raises:
        InventoryError: unreadable, too large, not JSON, or neither format.
    """
    try:
        if path.stat().st_size > MAX_SBOM_BYTES:
            raise InventoryError(f"SBOM {path} is larger than {MAX_SBOM_BYTES} bytes")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"SBOM {path} is unreadable: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InventoryError(f"SBOM {path} is not JSON (line {exc.lineno}: {exc.msg})") from exc
    if isinstance(doc, dict) and doc.get("bomFormat") == "CycloneDX":
        fmt: Literal["cyclonedx", "spdx"] = "cyclonedx"
    elif isinstance(doc, dict) and "spdxVersion" in doc:
        fmt = "spdx"
    else:
        raise InventoryError(f"SBOM {path} is neither CycloneDX nor SPDX JSON")
    return Snapshot(fmt, "", doc, hashlib.sha256(_canonical_sbom(fmt, doc)).hexdigest())


def collect(source: str, *, root: Path = Path("/"), sbom: Path | None = None,
            run: Runner = _run) -> Snapshot:
    """The inventory from ``source``: ``dpkg``, ``rpm``, ``sbom`` (the file ``sbom``) or
    ``auto`` (dpkg when the root has a dpkg database, else rpm).

    Raises:
        ConfigError: an unknown source, or ``sbom`` without a file.
        InventoryError: the query or the file failed.
    """
    if source == "auto":
        source = "dpkg" if (root / "var/lib/dpkg/status").exists() else "rpm"
    if source == "dpkg":
        return dpkg_snapshot(root, run=run)
    if source == "rpm":
        return rpm_snapshot(root, run=run)
    if source == "sbom":
        if sbom is None:
            raise ConfigError("inventory source 'sbom' needs the SBOM file (inventory_sbom)")
        return sbom_snapshot(sbom)
    raise ConfigError(f"inventory source must be auto, dpkg, rpm or sbom, not {source!r}")


class InventoryState:
    """The digest last acknowledged by the app, in a JSON file written durably."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def last(self) -> str:
        """The last reported digest ("" when none was, or the file is unreadable: then the
        inventory is sent again, which is harmless)."""
        try:
            value = json.loads(self.path.read_text(encoding="utf-8")).get("sha256", "")
        except (OSError, ValueError, AttributeError):
            return ""
        return value if isinstance(value, str) else ""

    def changed(self, snapshot: Snapshot) -> bool:
        """Whether ``snapshot`` differs from what was last reported."""
        return snapshot.sha256 != self.last()

    def mark_reported(self, snapshot: Snapshot, *, at: int) -> None:
        """Record that the app acknowledged ``snapshot`` (durably).

        Raises:
            OSError: the state directory cannot be written.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_durably(self.path, {"sha256": snapshot.sha256, "format": snapshot.format,
                                  "reported_at": at})
