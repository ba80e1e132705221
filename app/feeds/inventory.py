"""Host inventories as package URLs: dpkg-query and rpm output, CycloneDX and SPDX JSON SBOMs.

Parsers are pure (text or decoded JSON in, :class:`Inventory` out); the subprocess calls
(:func:`local_inventory`) and file reading (:func:`read_inventory`) sit at the edge. A Debian
or RPM inventory carries its distribution release (``debian``/``bookworm``,
``almalinux``/``almalinux-9``), which decides which advisories apply to it.

The query formats used by :func:`local_inventory` are :data:`DPKG_FORMAT` and
:data:`RPM_FORMAT` (tab-separated, with the source package and, for rpm, the module stream).
The parsers also accept plain two-column ``name version`` lines and, for rpm, bare
``rpm -qa`` NEVRA lines. rpm lines without an epoch (bare ``rpm -qa`` prints none) are kept
with ``epoch_known=False``: the matcher answers "no data: epoch unknown" for fixes that carry
an epoch rather than taking the missing epoch as 0.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from patchledger.app.feeds.ecosystems import distro_release
from patchledger.app.feeds.errors import InventoryError
from patchledger.app.feeds.jsontext import MalformedJSON, load_json

DPKG_FORMAT = (
    "${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\t"
    "${source:Package}\\t${source:Version}\\n"
)
RPM_FORMAT = (
    "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{MODULARITYLABEL}\\n"
)
CRITICALITIES = ("low", "medium", "high", "critical")
_RPM_ARCHES = ("x86_64", "noarch", "aarch64", "i686", "ppc64le", "s390x", "armv7hl", "src")
_EPOCH_PREFIX = re.compile(r"^\d+:")
_RHEL_STREAM = re.compile(r"^(\d+)\.(\d+)-(eus|aus|e4s|tus)$")
_SRPM = re.compile(r"^(?P<name>.+)-[^-]+-[^-]+\.src\.rpm$")


@dataclass(frozen=True, slots=True)
class Distro:
    """A distribution release: purl type, namespace and normalized release (``distro``)."""

    type: str
    namespace: str
    release: str


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """One installed package. ``source_*`` is the Debian source package or the source rpm.

    ``module`` is the rpm module stream (``postgresql:15``) from ``%{MODULARITYLABEL}``;
    ``epoch_known`` is false for rpm lines that give no epoch (bare ``rpm -qa``), whose
    version cannot be compared with a fix that has one.
    """

    type: str
    name: str
    version: str
    namespace: str | None = None
    arch: str | None = None
    source_name: str | None = None
    source_version: str | None = None
    module: str | None = None
    cpes: tuple[str, ...] = ()
    epoch_known: bool = True

    @property
    def purl(self) -> str:
        """The package URL with version and arch."""
        quals = {"arch": self.arch} if self.arch else None
        return PackageURL(
            type=self.type,
            namespace=self.namespace,
            name=self.name,
            version=self.version,
            qualifiers=quals,
        ).to_string()


@dataclass(frozen=True, slots=True)
class Inventory:
    """What is installed on one host, and how much that host matters (``criticality``)."""

    host: str
    packages: tuple[InstalledPackage, ...]
    distro: Distro | None = None
    criticality: str = "medium"


def parse_dpkg(
    text: str, *, host: str, release: str | None, origin: str = "dpkg-query"
) -> Inventory:
    """Parse dpkg-query output (see :data:`DPKG_FORMAT`, or ``name version`` lines).

    Packages whose status is not installed (``ii``/``hi``) are left out.

    Raises:
        InventoryError: a line with fewer than two fields, naming the line.
    """
    packages = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) == 6:
            status, name, version, arch, source, source_version = fields
            if status.strip() not in ("ii", "hi"):
                continue
        elif len(fields) >= 2:
            name, version = fields[0], fields[1]
            arch, source, source_version = None, None, None
            if ":" in name and not name.startswith(":"):
                name, arch = name.split(":", 1)
        else:
            raise InventoryError(
                origin, f"expected 'name version', got {line[:60]!r}", f"line {number}"
            )
        package = InstalledPackage(
            "deb",
            name,
            version,
            "debian",
            arch or None,
            source.split(" ")[0] if source else None,
            source_version or None,
        )
        try:
            packages.append(_checked(package))
        except ValueError as exc:
            raise InventoryError(origin, str(exc), f"line {number}") from exc
    distro = Distro("deb", "debian", distro_release("deb", "debian", release)) if release else None
    return Inventory(host, tuple(packages), distro)


def parse_rpm(text: str, *, host: str, distro: str | None, origin: str = "rpm") -> Inventory:
    """Parse rpm query output (:data:`RPM_FORMAT`, ``name version`` or NEVRA lines).

    ``distro`` is ``<id>-<release>`` as in os-release (``almalinux-9.3``, ``rhel-8``); a Red
    Hat host on an extended update stream says so (``rhel-9.2-eus``), as its fixes differ.

    Raises:
        InventoryError: a line that is none of the accepted shapes, naming the line.
    """
    packages = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        try:
            packages.append(_checked(_rpm_package(fields)))
        except ValueError as exc:
            raise InventoryError(origin, str(exc), f"line {number}") from exc
    parsed = None
    if distro:
        namespace, _, release = distro.partition("-")
        namespace = {"rhel": "redhat"}.get(namespace, namespace)
        if namespace == "redhat":
            parsed = Distro("rpm", "redhat", _rhel_release(release))
        else:
            parsed = Distro("rpm", namespace, distro_release("rpm", namespace, release or distro))
    return Inventory(host, tuple(packages), parsed)


def _checked(package: InstalledPackage, *, need_version: bool = True) -> InstalledPackage:
    """``package`` when it has a name and (when ``need_version``) a version and forms a
    package URL.

    Raises:
        ValueError: saying which.
    """
    if not package.name.strip() or (need_version and not package.version.strip()):
        raise ValueError(f"package {package.name!r} version {package.version!r}: a package needs"
                         " a name and a version")
    try:
        package.purl  # noqa: B018 (built to check it can be)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ValueError(f"package {package.name!r}: not a valid package URL: {exc}") from exc
    return package


def _rhel_release(release: str) -> str:
    """``9.3`` -> ``rhel-9``; an update stream keeps its minor release: ``9.2-eus``."""
    match = _RHEL_STREAM.match(release.strip().lower())
    if match is not None:
        major, minor, stream = match.groups()
        return f"rhel-{major}.{minor}-{stream}"
    return f"rhel-{release.split('.')[0].split('-')[0]}"


def _rpm_package(fields: list[str]) -> InstalledPackage:
    if len(fields) >= 2:
        name, evr = fields[0], fields[1]
        if "(none)" in evr or "-" not in evr:
            raise ValueError(f"{evr!r} is not an [epoch:]version-release")
        epoch_known = _EPOCH_PREFIX.match(evr) is not None
        evr = evr.removeprefix("0:")
        arch = fields[2] if len(fields) > 2 and fields[2] else None
        source = _SRPM.match(fields[3]) if len(fields) > 3 else None
        module = fields[4] if len(fields) > 4 and fields[4] not in ("", "(none)") else None
        return InstalledPackage(
            "rpm",
            name,
            evr,
            None,
            arch,
            source.group("name") if source else None,
            module=":".join(module.split(":")[:2]) if module else None,
            epoch_known=epoch_known,
        )
    nevra = fields[0]
    base, dot, arch = nevra.rpartition(".")
    if not dot or arch not in _RPM_ARCHES:
        raise ValueError(f"{nevra!r} is not name-version-release.arch")
    name_version, _, release = base.rpartition("-")
    name, _, version = name_version.rpartition("-")
    if not name or not version or not release:
        raise ValueError(f"{nevra!r} is not name-version-release.arch")
    # rpm -qa prints no epoch; %{NEVRA} prints one when the package has it
    epoch_known = _EPOCH_PREFIX.match(version) is not None
    evr = f"{version}-{release}".removeprefix("0:")
    return InstalledPackage("rpm", name, evr, None, arch, epoch_known=epoch_known)


def parse_sbom(doc: Any, *, host: str, origin: str) -> Inventory:
    """Read a CycloneDX (1.x JSON) or SPDX (2.x JSON) SBOM; components need a purl or a CPE.

    Components without a purl keep only their explicit CPEs (for NVD matching); components
    with neither are left out: nothing is guessed from names. Components that cannot be read
    are never dropped silently: each is named in the error.

    Raises:
        InventoryError: not a CycloneDX/SPDX JSON document, or components that cannot be read
            (a ``components``/``packages`` value that is not an array, an entry that is not
            an object, a purl that is not a string or does not parse, a CPE that is not a
            string); the error names every such component (``problems``).
    """
    problems: list[str] = []
    if isinstance(doc, dict) and doc.get("bomFormat") == "CycloneDX":
        entries = [
            (label, c.get("purl"), _cyclonedx_cpes(c, label, problems), c)
            for label, c in _cyclonedx_components(doc.get("components"), "components", problems)
        ]
    elif isinstance(doc, dict) and "spdxVersion" in doc:
        entries = [
            _spdx_entry(label, p, problems)
            for label, p in _objects(doc.get("packages"), "packages", problems)
        ]
    else:
        raise InventoryError(origin, "not a CycloneDX or SPDX JSON SBOM")
    packages = []
    for label, purl_text, cpes, raw in entries:
        if purl_text is not None and not isinstance(purl_text, str):
            problems.append(f"{label}: purl is {_json_type(purl_text)}, expected a string")
            continue
        if isinstance(purl_text, str):
            try:
                purl = PackageURL.from_string(purl_text)
            except ValueError as exc:
                problems.append(f"{label}: bad purl {purl_text!r}: {exc}")
                continue
            if not purl.version:
                continue
            quals = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
            package = InstalledPackage(
                purl.type,
                purl.name,
                purl.version,
                purl.namespace,
                quals.get("arch"),
                cpes=tuple(cpes),
            )
        elif cpes:
            version = str(raw.get("version") or raw.get("versionInfo") or "")
            package = InstalledPackage("cpe", str(raw.get("name")), version, cpes=tuple(cpes))
        else:
            continue
        try:
            packages.append(_checked(package, need_version=package.type != "cpe"))
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
    if problems:
        raise InventoryError.listing(origin, "component", problems)
    return Inventory(host, tuple(packages))


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "?")


def _objects(value: Any, where: str, problems: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The JSON objects of an array at ``where``, each with a label; the rest to ``problems``."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{where} is {_json_type(value)}, expected an array")
        return []
    found = []
    for index, item in enumerate(value):
        if isinstance(item, dict):
            name = item.get("bom-ref") or item.get("SPDXID") or item.get("name")
            label = f"{where}[{index}]" + (f" ({name})" if isinstance(name, str) else "")
            found.append((label, item))
        else:
            problems.append(f"{where}[{index}] is {_json_type(item)}, expected an object")
    return found


def _cyclonedx_components(
    value: Any, where: str, problems: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for label, component in _objects(value, where, problems):
        found.append((label, component))
        nested = label.split(" ")[0] + ".components"
        found.extend(_cyclonedx_components(component.get("components"), nested, problems))
    return found


def _cyclonedx_cpes(component: dict[str, Any], label: str, problems: list[str]) -> list[str]:
    cpe = component.get("cpe")
    if cpe is None:
        return []
    if not isinstance(cpe, str):
        problems.append(f"{label}: cpe is {_json_type(cpe)}, expected a string")
        return []
    return [cpe]


def _spdx_entry(
    label: str, package: dict[str, Any], problems: list[str]
) -> tuple[str, Any, list[str], dict[str, Any]]:
    purl: Any = None
    cpes = []
    for ref_label, ref in _objects(package.get("externalRefs"), f"{label}.externalRefs", problems):
        kind, locator = ref.get("referenceType"), ref.get("referenceLocator")
        if kind == "purl":
            purl = locator
        elif kind in ("cpe23Type", "cpe22Type"):
            if isinstance(locator, str):
                cpes.append(locator)
            else:
                problems.append(f"{ref_label}: CPE is {_json_type(locator)}, expected a string")
    return label, purl, cpes, package


# --- edges: files and this machine ----------------------------------------------------------


def read_inventory(
    path: Path,
    *,
    host: str | None = None,
    kind: str | None = None,
    release: str | None = None,
    criticality: str = "medium",
) -> Inventory:
    """Read an inventory file: SBOM (JSON), dpkg or rpm query output (text).

    ``kind`` (``deb``/``rpm``) overrides detection; text inventories default to ``deb``
    unless their lines are rpm NEVRAs. ``release`` is the Debian codename/number or the rpm
    ``<id>-<version>``.

    Raises:
        InventoryError: unreadable, malformed, or an unknown criticality.
    """
    if criticality not in CRITICALITIES:
        raise InventoryError(
            str(path), f"criticality {criticality!r} is not one of {', '.join(CRITICALITIES)}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(str(path), f"cannot read: {exc}") from exc
    name = host or path.stem
    if text.lstrip().startswith("{"):
        try:
            doc = load_json(text)
        except MalformedJSON as exc:
            raise InventoryError(str(path), f"malformed JSON{exc.where}: {exc.reason}") from exc
        inv = parse_sbom(doc, host=name, origin=str(path))
    elif (kind or _guess_kind(text)) == "rpm":
        inv = parse_rpm(text, host=name, distro=release, origin=str(path))
    else:
        inv = parse_dpkg(text, host=name, release=release, origin=str(path))
    return Inventory(inv.host, inv.packages, inv.distro, criticality)


def _guess_kind(text: str) -> str:
    """``rpm`` when the first entry is a bare NEVRA line, else ``deb`` (also for no entry)."""
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    words = first.split()
    return "rpm" if len(words) == 1 and words[0].rsplit(".", 1)[-1] in _RPM_ARCHES else "deb"


def os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    """Parse an os-release file into a dict (empty if it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


def local_inventory(host: str, *, os_release_path: Path = Path("/etc/os-release")) -> Inventory:
    """Query this machine's package manager (dpkg-query or rpm) and its os-release.

    Raises:
        InventoryError: no dpkg-query or rpm, or the query failed.
    """
    info = os_release(os_release_path)
    family = f"{info.get('ID', '')} {info.get('ID_LIKE', '')}"
    if "debian" in family:
        out = _run(["dpkg-query", "-W", "-f", DPKG_FORMAT])
        release = info.get("VERSION_CODENAME") or info.get("VERSION_ID")
        return parse_dpkg(out, host=host, release=release)
    out = _run(["rpm", "-qa", "--qf", RPM_FORMAT])
    return parse_rpm(out, host=host, distro=f"{info.get('ID', '')}-{info.get('VERSION_ID', '')}")


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    except FileNotFoundError as exc:
        raise InventoryError(command[0], "not installed on this machine") from exc
    except subprocess.CalledProcessError as exc:
        raise InventoryError(
            command[0], f"exited {exc.returncode}: {exc.stderr.strip()[:200]}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise InventoryError(command[0], "timed out") from exc
    return done.stdout
