"""Ecosystems: OSV ecosystem names, purl types, distribution releases and version schemes.

This is the single table that says which version comparison applies to which package type
(``univers`` classes) and how a distribution release is spelled in a purl ``distro``
qualifier. A type that is not listed here has no version scheme: matching reports it as
"no data" instead of guessing.
"""

from __future__ import annotations

from univers import versions

#: purl type -> univers version class used to compare versions of that type.
VERSION_SCHEMES: dict[str, type[versions.Version]] = {
    "deb": versions.DebianVersion,
    "rpm": versions.RpmVersion,
    "maven": versions.MavenVersion,
    "npm": versions.SemverVersion,
    "pypi": versions.PypiVersion,
    "golang": versions.GolangVersion,
    "gem": versions.RubygemsVersion,
    "nuget": versions.NugetVersion,
    "composer": versions.ComposerVersion,
    "cargo": versions.SemverVersion,
    "apk": versions.AlpineLinuxVersion,
}

#: Debian release numbers -> codenames (the DSA/DLA lists and purls use codenames).
DEBIAN_CODENAMES: dict[str, str] = {
    "3.0": "woody",
    "3.1": "sarge",
    "4": "etch",
    "5": "lenny",
    "6": "squeeze",
    "7": "wheezy",
    "8": "jessie",
    "9": "stretch",
    "10": "buster",
    "11": "bullseye",
    "12": "bookworm",
    "13": "trixie",
}

#: OSV ecosystem (before any ``:release``) -> (purl type, purl namespace).
_OSV_ECOSYSTEMS: dict[str, tuple[str, str | None]] = {
    "PyPI": ("pypi", None),
    "npm": ("npm", None),
    "Maven": ("maven", None),
    "Go": ("golang", None),
    "crates.io": ("cargo", None),
    "RubyGems": ("gem", None),
    "NuGet": ("nuget", None),
    "Packagist": ("composer", None),
    "Debian": ("deb", "debian"),
    "Ubuntu": ("deb", "ubuntu"),
    "AlmaLinux": ("rpm", "almalinux"),
    "Rocky Linux": ("rpm", "rocky-linux"),
    "Red Hat": ("rpm", "redhat"),
    "openSUSE": ("rpm", "opensuse"),
    "SUSE": ("rpm", "suse"),
    "Alpine": ("apk", "alpine"),
}

#: rpm distributions whose releases are identified by their major version only.
_RPM_MAJOR_ONLY = {"almalinux", "rocky-linux", "rhel", "centos", "redhat", "ol", "fedora"}


def osv_package(ecosystem: str, name: str) -> tuple[str, str | None, str, str | None] | None:
    """Map an OSV ``(ecosystem, name)`` to ``(purl type, namespace, name, distro)``.

    Returns ``None`` for an ecosystem this table does not know (the caller keeps the raw
    ecosystem so that matching can report "no data" for it).
    """
    base, _, release = ecosystem.partition(":")
    mapped = _OSV_ECOSYSTEMS.get(base)
    if mapped is None:
        return None
    ptype, namespace = mapped
    if ptype == "maven" and ":" in name:
        group, _, artifact = name.partition(":")
        return ptype, group, artifact, None
    if ptype == "golang" and "/" in name:
        head, _, tail = name.rpartition("/")
        return ptype, head, tail, None
    if ptype == "npm" and name.startswith("@") and "/" in name:
        scope, _, pkg = name.partition("/")
        return ptype, scope, pkg, None
    distro = distro_release(ptype, namespace, release) if release else None
    return ptype, namespace, name, distro


def distro_release(ptype: str, namespace: str | None, release: str) -> str:
    """Normalize a distribution release for the ``distro`` qualifier.

    Debian releases become codenames (``11`` -> ``bullseye``); rpm distributions that are
    versioned by major release become ``<namespace>-<major>`` (``AlmaLinux:9.3`` ->
    ``almalinux-9``); other releases are kept, lower-cased.
    """
    release = release.strip().lower()
    if ptype == "deb" and namespace == "debian":
        if release in DEBIAN_CODENAMES:
            return DEBIAN_CODENAMES[release]
        return DEBIAN_CODENAMES.get(release.split(".")[0], release)
    if ptype == "rpm" and namespace in _RPM_MAJOR_ONLY:
        if release.startswith(f"{namespace}-"):
            release = release[len(namespace) + 1 :]
        return f"{namespace}-{release.split('.')[0]}"
    return release
